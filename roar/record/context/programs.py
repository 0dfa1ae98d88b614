"""Programs and libraries a job ran: lineage inputs or context (docs/lineage-rules.md, "Programs").

A program the job exec'd (a binary or a `#!` script) or a shared library it mapped is a
lineage input when it lies inside the workspace or was produced by a recorded job (a binary
built by @2 and run by @3). Otherwise it is the job's context, `context.programs`: path,
hash, package where known. The same holds for what belongs to a program rather than to the
data: an interpreter's `pyvenv.cfg`, and the files of a toolchain wrapper (a pyenv shim and
its helpers) read while the wrapper ran, under the wrapper's own installation.
"""

from __future__ import annotations

import os
from typing import Any, Iterable

ELF_MAGIC = b"\x7fELF"
STARTUP_FILES = ("pyvenv.cfg",)   # read by an interpreter to find its own prefix


def is_elf(path: str) -> bool:
    """A mapped file that starts as an ELF object is a library, not mapped data."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        import stat

        return stat.S_ISREG(os.fstat(fd).st_mode) and os.read(fd, 4) == ELF_MAGIC
    except OSError:
        return False
    finally:
        os.close(fd)


def role_of(seen: Any, wrapper_roots: Iterable[str], wrapper_only: bool) -> str | None:
    """'program', 'library', 'startup' or 'wrapper' for a file that can be context, else None
    (a data input). `seen` is a roar.record.filesets.Seen."""
    if seen.executed:
        return "program"
    if os.path.basename(seen.path) in STARTUP_FILES:
        return "startup"
    if seen.mapped and is_elf(seen.path):
        return "library"
    if wrapper_only and any(_under(seen.path, root) for root in wrapper_roots):
        return "wrapper"
    return None


def _under(path: str, root: str) -> bool:
    return path.startswith(root.rstrip("/") + "/")


def install_root(program: str) -> str | None:
    """The installation a wrapper program belongs to: /root/.pyenv for .../shims/python3 and
    .../libexec/pyenv. None when that would be too broad to stand for one tool."""
    parent = os.path.dirname(os.path.dirname(program))
    if parent.count("/") < 2 and not os.path.basename(parent).startswith("."):
        return None    # "/", "/opt", "/home": a whole tree, not one tool
    return parent


def produced_paths(conn, paths: list[str]) -> set[str]:
    """The paths among `paths` that a recorded job wrote: one indexed query."""
    if not paths or conn is None:
        return set()
    from roar.store.index import db_path, from_db_path

    found: set[str] = set()
    for start in range(0, len(paths), 500):   # SQLite's variable limit
        chunk = [db_path(p) for p in paths[start:start + 500]]
        rows = conn.execute("SELECT DISTINCT path FROM job_files WHERE role = 'output' AND path IN "
                            f"({','.join('?' * len(chunk))})", chunk).fetchall()
        found.update(from_db_path(r[0]) for r in rows)
    return found


def package_names(paths: Iterable[str], cache_dir) -> dict[str, str]:
    """{path: "dpkg:name"} for the paths a system package owns (the dpkg index of context.md)."""
    from roar.record.context import cache, system_packages

    merge = system_packages.usr_merge_map()
    wanted = {system_packages.canonical(p, merge): p for p in paths}
    dpkg = system_packages.DPKG_DIR
    if not (dpkg / "status").exists() or not wanted:
        return {}
    found, _ = system_packages.dpkg_owners(sorted(wanted), cache.machine_dir() or cache_dir, dpkg, merge)
    return {wanted[p]: f"dpkg:{name}" for p, (name, _v, _a) in found.items()}


def classify(files: Any, collector: Any, workspace_root: str, conn) -> dict[str, str]:
    """{path: role} for the files read that are context, not lineage inputs. `files` is the
    job's FileSets, `collector` its Collector, `conn` the workspace index (or None)."""
    root = workspace_root.rstrip("/") + "/"
    outside = [p for p in files.inputs if not p.startswith(root)]
    candidates = [p for p in outside if files.inputs[p].executed or files.inputs[p].mapped
                  or os.path.basename(p) in STARTUP_FILES] + [
        s for s in collector.stage_exes.values() if s and not s.startswith(root)]
    produced = produced_paths(conn, sorted(set(candidates)))
    lineage = set(produced)

    def is_context(path: str | None) -> bool:
        return bool(path) and not path.startswith(root) and path not in lineage

    inside = collector.wrapper_stages(is_context)
    wrapper_progs = {collector.stage_program(s) for s in inside if collector.stage_program(s)}
    roots = [r for r in {install_root(p) for p in wrapper_progs if is_context(p)}
             if r and not (root.startswith(r.rstrip("/") + "/"))]
    roles = {}
    for path in outside:
        if path in produced:
            continue
        seen = files.inputs[path]
        role = role_of(seen, roots, bool(seen.stages) and seen.stages <= inside)
        if role:
            roles[path] = role
    return roles


def entries(roles: dict[str, str], hashes: dict[str, dict[str, str]], system_programs: Iterable[str],
            cache_dir) -> list[dict[str, Any]]:
    """context.programs: [{path, role, hash, hashes, package}], sorted by path."""
    paths = sorted(set(roles) | set(system_programs))
    try:
        packages = package_names(paths, cache_dir)
    except Exception:  # context is best effort: no package names, never a failed job
        packages = {}
    return [{"path": p, "role": roles.get(p, "program"), "hash": (hashes.get(p) or {}).get("blake3"),
             "hashes": hashes.get(p) or {}, "package": packages.get(p)} for p in paths]
