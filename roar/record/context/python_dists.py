"""Python interpreters a job ran and the distributions whose files it read.

A read path under a `site-packages` or `dist-packages` directory is mapped to
the distribution that installed it through that directory's
`*.dist-info/RECORD` (or `*.egg-info` `installed-files.txt`/`top_level.txt`)
files. The per-directory index maps a top-level name (`msgpack`, `six.py`) to
its distribution, or a two-level prefix where several distributions share a
top level (namespace packages, `__pycache__`); it is cached keyed by the
directory's mtime, which changes whenever a distribution is added or removed.

Reads of the metadata directories themselves (`*.dist-info/`) are not counted:
`importlib.metadata` scans them all without using the distributions.

An interpreter's version comes from running it once (`-I -S -c`, as the user
behind sudo, 2 s timeout), cached by executable path and mtime; when that is
not possible, from its file name (`python3.11` -> "3.11") with a note.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

from roar import privilege
from roar.record.context import cache, readfile

SITE_PATH = re.compile(r"^(?P<site>.*/(?:site|dist)-packages)/(?P<rel>.+)$")
PYTHON_EXE = re.compile(r"python3(?:\.\d+)?[a-z]?")
VERSION_TIMEOUT_S = 2.0
VERSIONS_FILE = "python-versions.json"
METADATA_SUFFIXES = (".dist-info", ".egg-info")


def capture(processes: list[dict[str, Any]], paths: Iterable[str], cache_dir: Path) -> list[dict[str, Any]]:
    """[{exe, version, distributions: [{name, version, site, files}]}], one per
    interpreter; distributions in a site directory no interpreter matches are
    listed under exe None."""
    exes = sorted({p["exe"] for p in processes if p.get("exe") and is_python(p["exe"])})
    interpreters = [{"exe": exe, **interpreter_version(exe, cache_dir)} for exe in exes]
    by_site: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        m = SITE_PATH.match(path)
        if m:
            by_site[m["site"]].append(m["rel"])
    unmatched: list[dict[str, Any]] = []
    for interp in interpreters:
        interp["distributions"] = []
    for site, rels in sorted(by_site.items()):
        dists = distributions_used(site, rels, cache_dir)
        owners = [i for i in interpreters if _site_matches(site, i.get("version"))]
        for owner in owners:
            owner["distributions"].extend(dists)
        if not owners:
            unmatched.extend(dists)
    if unmatched:
        interpreters.append({"exe": None, "version": None, "distributions": unmatched})
    return interpreters


def is_python(exe: str) -> bool:
    return PYTHON_EXE.fullmatch(os.path.basename(exe)) is not None


def _site_matches(site: str, version: str | None) -> bool:
    """/usr/lib/python3.11/site-packages belongs to 3.11.x; python3/dist-packages to any 3.x."""
    m = re.search(r"/python(\d+(?:\.\d+)?)/", site + "/")
    if m is None or version is None:
        return True
    return version == m[1] or version.startswith(m[1] + ".")


def distributions_used(site: str, rels: Iterable[str], cache_dir: Path) -> list[dict[str, Any]]:
    index = site_index(site, cache_dir)
    files: dict[tuple[str, str], int] = defaultdict(int)
    for rel in rels:
        parts = rel.split("/")
        owner = index.get("/".join(parts[:2])) or index.get(parts[0])
        if owner:
            files[(owner[0], owner[1])] += 1
    return [{"name": name, "version": version, "site": site, "files": n}
            for (name, version), n in sorted(files.items())]


def site_index(site: str, cache_dir: Path) -> dict[str, list[str]]:
    """{top level or two-level prefix: [name, version]} for one site directory."""
    try:
        key = [site, os.stat(site).st_mtime_ns]
    except OSError:
        return {}
    import hashlib  # here: loading OpenSSL costs ~4 ms, and only a Python job gets this far

    digest = hashlib.sha1(site.encode(errors="surrogateescape")).hexdigest()[:16]
    path = cache_dir / f"python-site-{digest}.json"
    index = cache.load(path, key)
    if index is None:
        index = build_site_index(site)
        cache.store(path, key, index)
    return index


def build_site_index(site: str) -> dict[str, list[str]]:
    owned: dict[tuple[str, str], set[str]] = {}
    try:
        entries = sorted(os.listdir(site))
    except OSError:
        return {}
    for entry in entries:
        meta = os.path.join(site, entry)
        if entry.endswith(METADATA_SUFFIXES) and os.path.isdir(meta):
            dist = _name_version(meta, entry)
            owned.setdefault(dist, set()).update(_installed_files(meta, entry))
    top_owners: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for dist, rels in owned.items():
        for rel in rels:
            top_owners[rel.split("/")[0]].add(dist)
    index: dict[str, list[str]] = {}
    for dist, rels in owned.items():
        for rel in rels:
            parts = rel.split("/")
            if len(top_owners[parts[0]]) == 1:
                index[parts[0]] = list(dist)
            else:
                index.setdefault("/".join(parts[:2]), list(dist))
    return index


def _name_version(meta: str, entry: str) -> tuple[str, str]:
    """(Name, Version) from METADATA / PKG-INFO headers, else from the directory name."""
    stem = entry.rsplit(".", 1)[0]
    name, _, version = stem.partition("-")
    fields: dict[str, str] = {}
    for header in ("METADATA", "PKG-INFO"):
        try:
            with readfile.open_text(os.path.join(meta, header)) as f:
                for line in f:
                    if not line.strip():
                        break
                    key, sep, value = line.partition(":")
                    if sep and key in ("Name", "Version"):
                        fields.setdefault(key, value.strip())
            break
        except OSError:
            continue
    return fields.get("Name", name), fields.get("Version", version.partition("-")[0])


def _installed_files(meta: str, entry: str) -> set[str]:
    """Paths relative to the site directory that the distribution installed,
    without its own metadata directory."""
    import csv

    rels: set[str] = set()
    if entry.endswith(".dist-info"):
        try:
            with readfile.open_text(os.path.join(meta, "RECORD"), newline="") as f:
                rels.update(row[0] for row in csv.reader(f) if row)
        except OSError:
            pass
    else:
        for name in ("installed-files.txt", "top_level.txt"):
            try:
                with readfile.open_text(os.path.join(meta, name)) as f:
                    lines = [line.strip() for line in f if line.strip()]
            except OSError:
                continue
            base = entry if name == "installed-files.txt" else ""
            rels.update(os.path.normpath(os.path.join(base, line)) for line in lines)
    return {r for r in rels if not r.startswith(("../", "/")) and r.split("/")[0] != entry
            and not r.split("/")[0].endswith(METADATA_SUFFIXES)}


def interpreter_version(exe: str, cache_dir: Path) -> dict[str, Any]:
    """{"version": "3.11.7"} (or with a "note" when guessed from the name)."""
    try:
        mtime = os.stat(exe).st_mtime_ns
    except OSError:
        return {"version": _version_from_name(exe), "note": f"{exe} no longer exists: version from its name"}
    path = cache_dir / VERSIONS_FILE
    known = cache.load(path, "v1") or {}
    entry = known.get(exe)
    if entry and entry[0] == mtime:
        return {"version": entry[1]}
    if not _safe_to_run(exe):
        return {"version": _version_from_name(exe), "note": f"{exe} is not root's own: roar does not run "
                                                              "it as root; version from its name"}
    version = _run_for_version(exe)
    if version is None:
        return {"version": _version_from_name(exe), "note": f"{exe} did not report its version: "
                                                              "version from its name"}
    known[exe] = [mtime, version]
    cache.store(path, "v1", known)
    return {"version": version}


def _safe_to_run(exe: str) -> bool:
    """Running a traced interpreter to ask its version runs its code as whoever roar is.
    Under sudo roar is the user by then; as root only a binary that root alone could
    have written runs (the traced tree may have run another user's `python3`)."""
    if os.geteuid() != 0:
        return True
    path = Path(os.path.realpath(exe))
    for p in (path, *path.parents):
        try:
            st = os.stat(p)
        except OSError:
            return False
        if st.st_uid != 0 or st.st_mode & 0o022:
            return False
    return True


def _run_for_version(exe: str) -> str | None:
    code = "import sys; print('%d.%d.%d' % sys.version_info[:3])"
    try:
        out = subprocess.run([exe, "-I", "-S", "-c", code], capture_output=True, timeout=VERSION_TIMEOUT_S,
                             stdin=subprocess.DEVNULL, env={"PATH": os.defpath}, **privilege.child_ids())
    except (OSError, subprocess.SubprocessError):
        return None
    text = out.stdout.decode(errors="replace").strip()
    return text if out.returncode == 0 and re.fullmatch(r"\d+\.\d+\.\d+", text) else None


def _version_from_name(exe: str) -> str | None:
    m = re.search(r"python(\d+(?:\.\d+)?)", os.path.basename(exe))
    return m[1] if m else None
