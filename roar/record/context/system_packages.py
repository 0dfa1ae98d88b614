"""System packages (dpkg, rpm) owning the files a job executed or read.

dpkg: the path -> package index is built once from /var/lib/dpkg/info/*.list
and /var/lib/dpkg/status into an SQLite file in the cache directory, and
rebuilt only when the mtime of either changes (every dpkg run changes both).
A lookup is then one indexed query per used path; the machine's package list
is never copied into a record, only the packages owning used files.

/usr-merge: dpkg's lists may say /bin/sort or /lib/x86_64-linux-gnu/libc.so.6
while the kernel reports /usr/bin/sort and /usr/lib/...: when /bin, /lib, ...
are symlinks, list paths are stored under their target (/usr/...), and looked
up paths are mapped the same way.

rpm (where an rpm database exists): `rpm -qf` per path not owned by a dpkg
package, answers cached keyed by the rpm database's mtime.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterable

from roar.record.context import cache

DPKG_DIR = Path("/var/lib/dpkg")
DPKG_INDEX = "dpkg-index.sqlite"
RPM_DBS = (Path("/var/lib/rpm"), Path("/usr/lib/sysimage/rpm"))
RPM_CACHE = "rpm-owners.json"
RPM_TIMEOUT_S = 5.0
MERGED_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SKIP_PREFIXES = ("/proc/", "/sys/", "/dev/", "/tmp/", "/run/")


def capture(paths: Iterable[str], cache_dir: Path, dpkg_dir: Path = DPKG_DIR) -> list[dict[str, Any]]:
    """[{manager, name, version, arch, files}], sorted by name: the packages
    owning at least one of `paths` (`files` counts how many)."""
    merge = usr_merge_map()
    wanted = sorted({canonical(p, merge) for p in paths if not p.startswith(SKIP_PREFIXES)})
    owners: dict[tuple[str, str, str | None, str | None], int] = {}
    unowned = wanted
    if (dpkg_dir / "status").exists():
        found, unowned = dpkg_owners(wanted, cache_dir, dpkg_dir, merge)
        _count(owners, found.values(), "dpkg")
    rpm_db = next((d for d in RPM_DBS if d.is_dir()), None)
    if rpm_db is not None and shutil.which("rpm") and unowned:
        _count(owners, rpm_owners(unowned, cache_dir, rpm_db).values(), "rpm")
    return [{"manager": manager, "name": name, "version": version, "arch": arch, "files": n}
            for (manager, name, version, arch), n in sorted(owners.items(), key=lambda kv: kv[0][1])]


def _count(owners: dict, found: Iterable[tuple[str, str | None, str | None]], manager: str) -> None:
    for name, version, arch in found:
        key = (manager, name, version, arch)
        owners[key] = owners.get(key, 0) + 1


def usr_merge_map() -> dict[str, str]:
    """{"/bin/": "/usr/bin/", ...} for the top-level directories that are symlinks."""
    merge = {}
    for d in MERGED_DIRS:
        if os.path.islink(d):
            merge[d + "/"] = os.path.realpath(d) + "/"
    return merge


def canonical(path: str, merge: dict[str, str]) -> str:
    for prefix, target in merge.items():
        if path.startswith(prefix):
            return target + path[len(prefix):]
    return path


def dpkg_owners(paths: list[str], cache_dir: Path, dpkg_dir: Path,
                merge: dict[str, str]) -> tuple[dict[str, tuple[str, str | None, str | None]], list[str]]:
    """({path: (package, version, arch)}, paths no package owns)."""
    db = cache_dir / DPKG_INDEX
    key = f"{_mtime_ns(dpkg_dir / 'info')}:{_mtime_ns(dpkg_dir / 'status')}:{sorted(merge.items())}"
    conn = _open_index(db, key)
    if conn is None:
        build_dpkg_index(db, key, dpkg_dir, merge)
        conn = _open_index(db, key)
    if conn is None:
        raise OSError(f"cannot build the dpkg index in {cache_dir}")
    try:
        found = {}
        for path in paths:
            row = conn.execute("SELECT p.name, p.version, p.arch FROM files f JOIN packages p "
                               "ON p.key = f.package WHERE f.path = ?", (path,)).fetchone()
            if row:
                found[path] = tuple(row)
    finally:
        conn.close()
    return found, [p for p in paths if p not in found]


def _open_index(db: Path, key: str) -> sqlite3.Connection | None:
    from roar.record.context import readfile

    if not readfile.is_regular(db):   # a FIFO there would block SQLite's first read
        return None
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        row = conn.execute("SELECT value FROM meta WHERE name = 'key'").fetchone()
    except sqlite3.DatabaseError:
        return None
    if row is None or row[0] != key:
        conn.close()
        return None
    return conn


def build_dpkg_index(db: Path, key: str, dpkg_dir: Path, merge: dict[str, str]) -> None:
    """Write the index to a temporary file and rename it into place, so that
    concurrent runs never see half of it."""
    fd, tmp = tempfile.mkstemp(dir=db.parent, prefix=f".{db.name}.", suffix=".tmp")
    os.close(fd)
    try:
        conn = sqlite3.connect(tmp)
        conn.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
            "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT);"
            "CREATE TABLE packages (key TEXT PRIMARY KEY, name TEXT, version TEXT, arch TEXT);"
            "CREATE TABLE files (path TEXT PRIMARY KEY, package TEXT) WITHOUT ROWID;")
        conn.executemany("INSERT OR REPLACE INTO packages VALUES (?, ?, ?, ?)", _status_rows(dpkg_dir))
        conn.executemany("INSERT OR IGNORE INTO files VALUES (?, ?)", _list_rows(dpkg_dir, merge))
        conn.execute("INSERT INTO meta VALUES ('key', ?)", (key,))
        conn.commit()
        conn.close()
        os.replace(tmp, db)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _status_rows(dpkg_dir: Path) -> Iterable[tuple[str, str, str | None, str | None]]:
    """Installed packages from dpkg's status file, keyed both "name" and "name:arch"
    (list files are named either way)."""
    text = (dpkg_dir / "status").read_text(encoding="utf-8", errors="replace")
    for stanza in text.split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if line and not line[0].isspace():
                name, _, value = line.partition(":")
                fields[name] = value.strip()
        if "Package" not in fields or not fields.get("Status", "").endswith(" installed"):
            continue
        name, arch = fields["Package"], fields.get("Architecture")
        row = (name, fields.get("Version"), arch)
        yield (name, *row)
        if arch:
            yield (f"{name}:{arch}", *row)


def _list_rows(dpkg_dir: Path, merge: dict[str, str]) -> Iterable[tuple[str, str]]:
    info = dpkg_dir / "info"
    for entry in os.scandir(info):
        if not entry.name.endswith(".list"):
            continue
        package = entry.name[:-len(".list")]
        with open(entry.path, encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                path = line.rstrip("\n")
                if path and path != "/.":
                    yield canonical(path, merge), package


def rpm_owners(paths: list[str], cache_dir: Path,
               rpm_db: Path) -> dict[str, tuple[str, str | None, str | None]]:
    store = cache_dir / RPM_CACHE
    key = _mtime_ns(rpm_db)
    known: dict[str, list | None] = cache.load(store, key) or {}
    asked = False
    for path in paths:
        if path in known:
            continue
        asked = True
        try:
            out = subprocess.run(["rpm", "-qf", "--queryformat", r"%{NAME}\t%{VERSION}-%{RELEASE}\t%{ARCH}\n",
                                  path], capture_output=True, timeout=RPM_TIMEOUT_S, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            known[path] = None
            continue
        fields = out.stdout.decode(errors="replace").splitlines()[0].split("\t") if out.stdout else []
        known[path] = fields if out.returncode == 0 and len(fields) == 3 else None
    if asked:
        cache.store(store, key, known)
    return {p: tuple(known[p]) for p in paths if known.get(p)}


def _mtime_ns(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None
