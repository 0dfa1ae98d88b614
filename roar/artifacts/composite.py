"""Composite artifacts: a directory of files treated as one node.

The rule that groups a job's files into composites and the tree hash are
defined in docs/artifacts.md; keep the two in step.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any, Iterable

import blake3

MIN_MEMBERS = 8
TREE_HEADER = b"roar-tree-v1\n"


def tree_hash(members: Iterable[tuple[str, str, int]]) -> str:
    """blake3 of the canonical listing of (relative name, blake3 hex, size) members."""
    h = blake3.blake3(TREE_HEADER)
    for name, digest, size in sorted(members, key=lambda m: os.fsencode(m[0])):
        h.update(f"{digest} {size} ".encode() + os.fsencode(name) + b"\0")
    return h.hexdigest()


def group(entries: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(single files, composites) of one job's inputs or outputs.

    Files sharing a parent directory become one composite when there are at
    least MIN_MEMBERS of them. A composite is a dict like a file entry with
    kind="composite", path (the directory), hash (tree hash), size (sum) and
    members [{name, hash, size}]."""
    by_dir: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        if entry.get("kind") != "composite" and entry.get("hash"):
            by_dir[os.path.dirname(entry["path"])].append(entry)
    grouped = {d for d, files in by_dir.items() if len(files) >= MIN_MEMBERS}
    singles = [e for e in entries if e.get("kind") == "composite"
               or os.path.dirname(e["path"]) not in grouped or not e.get("hash")]
    composites = []
    for directory in sorted(grouped):
        members = [{"name": os.path.basename(e["path"]), "path": e["path"], "hash": e["hash"],
                    "hashes": e.get("hashes") or {}, "size": e.get("size") or 0} for e in by_dir[directory]]
        composites.append(make(directory, members))
    return singles, composites


def make(directory: str, members: list[dict[str, Any]]) -> dict[str, Any]:
    """A composite entry from its members ({name, hash, size, ...})."""
    return {
        "kind": "composite",
        "path": directory,
        "hash": tree_hash((m["name"], m["hash"], m["size"]) for m in members),
        "hashes": {},
        "size": sum(m["size"] for m in members),
        "members": members,
    }
