"""Which of a job's files form composite artifacts, decided once, when the record is
written, and stored in it (record version 2, `composites`: docs/record-format.md).

Until version 2 the index grouped a record's files when it indexed them, so a
change of the rule, or a rebuild by another roar, could change the graph. Now
the writer groups them (roar.artifacts.composite.group: at least 8 files of one
directory) and the record says so; `inputs` and `outputs` stay the plain file
lists every reader knows. A record of version 1 has no `composites` and is
grouped by that same rule when it is indexed, as it always was.

A directory a transfer moved as a whole (`roar get` of a directory, `roar put`
of one) is already one composite entry of `inputs`/`outputs` (kind composite,
with its members inline): it is kept as it is and not listed under `composites`.
"""

from __future__ import annotations

from typing import Any

ROLES = ("inputs", "outputs")


def decide(record: dict[str, Any]) -> None:
    """Group the record's files into composites and store the grouping in it (idempotent:
    a record that already holds its grouping keeps it)."""
    from roar.artifacts import composite

    version = record.get("version", 2)
    if "composites" in record or not isinstance(version, int) or version < 2:   # 1: grouped when indexed
        return
    if not all(_files(record.get(role) or []) for role in ROLES):
        return          # not a record the format allows: left for roar.record.validate to refuse
    stored: dict[str, list[dict[str, Any]]] = {}
    for role in ROLES:
        _, groups = composite.group(record.get(role) or [])
        stored[role] = [{"path": c["path"], "hash": c["hash"], "size": c["size"],
                         "members": [m["name"] for m in c["members"]]} for c in groups]
    record["composites"] = stored


def split(record: dict[str, Any], role: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(single entries, composite entries) of the record's `role` ("inputs" or "outputs"),
    each composite like roar.artifacts.composite.make's: kind, path, hash, size and its
    members ({name, path, hash, hashes, size}). Version 2: the stored grouping; a record
    without one (version 1): grouped now by the rule."""
    from roar.artifacts import composite

    entries = record.get(role) or []
    stored = record.get("composites")
    if stored is None:
        return composite.group(entries)
    by_path = {e["path"]: e for e in entries if e.get("kind") != "composite"}
    groups, grouped = [], set()
    for c in stored.get(role) or []:
        members = []
        for name in c["members"]:
            entry = by_path[_join(c["path"], name)]
            grouped.add(entry["path"])
            members.append({"name": name, "path": entry["path"], "hash": entry["hash"],
                            "hashes": entry.get("hashes") or {}, "size": entry.get("size") or 0})
        groups.append({"kind": "composite", "path": c["path"], "hash": c["hash"], "hashes": {},
                       "size": c["size"], "members": members})
    return [e for e in entries if e.get("kind") == "composite" or e["path"] not in grouped], groups


def problem(record: dict[str, Any]) -> tuple[str, str] | None:
    """(field, what is wrong) when the stored grouping does not fit the record's files: a
    member that is not one of that role's hashed files, or a file in two composites."""
    stored = record.get("composites")
    if stored is None:
        return ("composites", "is missing (a record of version 2 stores its grouping)") \
            if record.get("version", 1) >= 2 else None
    for role in ROLES:
        files = {e["path"] for e in record.get(role) or [] if e.get("kind") != "composite" and e.get("hash")}
        seen: set[str] = set()
        for i, c in enumerate(stored.get(role) or []):
            for j, name in enumerate(c["members"]):
                path = _join(c["path"], name)
                where = f"composites.{role}[{i}].members[{j}]"
                if path not in files:
                    return where, f"names {path!r}, which is not one of the hashed `{role}`"
                if path in seen:
                    return where, f"names {path!r}, which is already a member of a composite"
                seen.add(path)
    return None


def _join(directory: str, name: str) -> str:
    return f"{directory.rstrip('/')}/{name}"


def _files(entries: Any) -> bool:
    return isinstance(entries, list) and all(
        isinstance(e, dict) and isinstance(e.get("path"), str) and isinstance(e.get("hash") or "", str)
        for e in entries)
