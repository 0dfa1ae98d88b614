"""`roar diff A B`: what differs between two jobs, or between the jobs that made two
artifacts, or (`lineages`) between two artifacts' whole lineages step by step (docs/diff.md).

Compared: the command (type, argv, cwd), the exit, inputs and outputs by path with
their hashes, the variables read (`env_read`), the interpreters, Python distributions,
system packages and programs, and the git state. Not compared: uids, step numbers,
sessions and times, which differ between any two jobs. The result is plain data; the
CLI renders it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from roar.errors import RefNotFound, UsageError

SECTIONS = ("command", "exit", "inputs", "outputs", "env_read", "packages", "programs", "git")


@dataclass
class Side:
    ref: str                  # as typed
    record: dict[str, Any]
    via: str | None = None    # the artifact hash when the ref named an artifact


def load(ref_a: str, ref_b: str) -> tuple[Side, Side]:
    """The two jobs, from the current workspace: a job ref as it is, an artifact by the
    job that made it (its latest producer, the one `roar show` names)."""
    from roar.store.workspace import Workspace

    ws = Workspace.find()
    conn = ws.index()
    try:
        sides = [_side(conn, ref) for ref in (ref_a, ref_b)]
    finally:
        conn.close()
    a, b = (Side(ref, ws.read_record(uid), via) for ref, uid, via in sides)
    return a, b


def _side(conn, ref: str) -> tuple[str, str, str | None]:
    from roar.lineage import queries, refs

    found = refs.resolve(conn, ref)
    if found.kind == "job":
        return ref, found.id, None
    if found.kind == "artifact":
        made_by = queries.lineage(conn, found.id)["made_by"]
        if made_by is None:
            raise RefNotFound(f"{ref} was made by no recorded job (it is a source input): "
                              "give a job, or an artifact a job wrote")
        return ref, made_by, found.id
    raise UsageError(f"{ref} is a session: `roar diff` compares two jobs or two artifacts "
                     "(`roar log` lists the jobs)")


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """{section: differences} for every section of SECTIONS (empty: the same), `same`,
    and `notes` for what could not be compared."""
    notes: list[str] = []
    result: dict[str, Any] = {
        "command": _fields(a, b, ("type", "argv", "cwd")),
        "exit": _fields(a["exit"], b["exit"], ("code", "signal", "status")),
        "inputs": files(a["inputs"], b["inputs"]),
        "outputs": files(a["outputs"], b["outputs"]),
        "env_read": _env_read(a, b, notes),
        "packages": packages(_context(a, "packages"), _context(b, "packages")),
        "programs": _keyed({p["path"]: p.get("hash") for p in _context(a, "programs", [])},
                           {p["path"]: p.get("hash") for p in _context(b, "programs", [])}, "path"),
        "git": _git(_context(a, "git"), _context(b, "git")),
    }
    result["same"] = not any(result[s] for s in SECTIONS)
    result["notes"] = notes
    return result


def _fields(a: dict[str, Any], b: dict[str, Any], names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"field": n, "a": a.get(n), "b": b.get(n)} for n in names if a.get(n) != b.get(n)]


def files(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """By path: `changed` (both hashes), `only_a`, `only_b`; a file with the same hash at
    the same path is not listed."""
    return _keyed({f["path"]: f.get("hash") for f in a}, {f["path"]: f.get("hash") for f in b}, "path")


def _keyed(a: dict[str, Any], b: dict[str, Any], key: str) -> list[dict[str, Any]]:
    out = []
    for name in sorted(a.keys() | b.keys()):
        if name not in b:
            out.append({key: name, "state": "only_a", "a": a[name], "b": None})
        elif name not in a:
            out.append({key: name, "state": "only_b", "a": None, "b": b[name]})
        elif a[name] != b[name]:
            out.append({key: name, "state": "changed", "a": a[name], "b": b[name]})
    return out


def _env_read(a: dict[str, Any], b: dict[str, Any], notes: list[str]) -> list[dict[str, Any]]:
    """A variable read by one job only is listed with the other side absent (`only_a`);
    a variable read unset is a value (None) like any other."""
    missing = [side for side, r in (("A", a), ("B", b)) if r.get("env_read") is None]
    if missing:
        notes.append(f"env_read: not observed in {' and '.join(missing)}, so not compared")
        return []
    return _keyed(a["env_read"], b["env_read"], "name")


def packages(a: dict[str, Any] | None, b: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Interpreters by path, Python distributions and system packages by name, with the
    version each job used."""
    out = []
    for kind, versions in (("interpreter", _interpreters), ("python", _distributions), ("system", _system)):
        for entry in _keyed(versions(a or {}), versions(b or {}), "name"):
            out.append({"kind": kind, **entry})
    return out


def _interpreters(pkgs: dict[str, Any]) -> dict[str, Any]:
    return {i["exe"]: i.get("version") for i in pkgs.get("python") or [] if i.get("exe")}


def _distributions(pkgs: dict[str, Any]) -> dict[str, Any]:
    return {d["name"]: d.get("version") for i in pkgs.get("python") or []
            for d in i.get("distributions") or [] if d["name"] != "roar"}   # roar's own hook


def _system(pkgs: dict[str, Any]) -> dict[str, Any]:
    return {p["name"]: p.get("version") for p in pkgs.get("system") or []}


def _git(a: dict[str, Any] | None, b: dict[str, Any] | None) -> list[dict[str, Any]]:
    names = ("root", "remote", "commit", "branch", "dirty")
    return _fields(a or {}, b or {}, names)


def _context(record: dict[str, Any], name: str, default: Any = None) -> Any:
    return (record.get("context") or {}).get(name) or default


def lineages(ref_a: str, ref_b: str) -> dict[str, Any]:
    """Two artifacts' whole lineages, step by step: the jobs of each (oldest first, from the
    workspace, else the GLaaS server, as `roar reproduce` finds them) aligned by command, each
    pair compared. `steps`: [{state: same|differs|only_a|only_b, a, b, differences}], `same`."""
    from difflib import SequenceMatcher

    from roar.reproduce.source import find_records

    found = [find_records(ref) for ref in (ref_a, ref_b)]
    for ref, f in zip((ref_a, ref_b), found, strict=True):
        if f.kind != "artifact":
            raise UsageError(f"{ref} is a {f.kind}: --lineage compares two artifacts' lineages")
    a_jobs, b_jobs = found[0].records, found[1].records
    matcher = SequenceMatcher(a=[_step_key(r) for r in a_jobs], b=[_step_key(r) for r in b_jobs],
                              autojunk=False)
    steps: list[dict[str, Any]] = []
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        # a replaced run of the same length pairs up in order (a step whose command changed);
        # otherwise what is not equal is one side's only
        same_length = op == "replace" and a1 - a0 == b1 - b0
        pairs = list(zip(a_jobs[a0:a1], b_jobs[b0:b1], strict=True)) if op == "equal" or same_length else []
        for ra, rb in pairs:
            result = compare(ra, rb)
            steps.append({"state": "same" if result["same"] else "differs", "a": ra, "b": rb,
                          "differences": result})
        rest_a, rest_b = a_jobs[a0 + len(pairs):a1], b_jobs[b0 + len(pairs):b1]
        steps += [{"state": "only_a", "a": r, "b": None, "differences": None} for r in rest_a]
        steps += [{"state": "only_b", "a": None, "b": r, "differences": None} for r in rest_b]
    return {"steps": steps, "same": all(s["state"] == "same" for s in steps),
            "origins": [f.origin for f in found]}


def _step_key(record: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """What makes two jobs the same step of a pipeline: their type and command."""
    return record["type"], tuple(record.get("argv") or [])
