"""The packages a job actually used: Python distributions and system packages.

Fed the paths the job read (its system reads and its inputs) and its process
tree, never the machine's package list: only interpreters the tree ran and
packages owning a file the tree executed or read appear in the record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from roar.record.context import cache, python_dists, system_packages


def capture(processes: list[dict[str, Any]], paths_read: list[str], cache_dir: Path,
            notes: list[str]) -> dict[str, list[dict[str, Any]]]:
    """{"python": [...], "system": [...]}; a part that fails is [] plus a note."""
    used = set(paths_read)
    used.update(p["exe"] for p in processes if p.get("exe"))
    result: dict[str, list[dict[str, Any]]] = {"python": [], "system": []}
    try:
        result["python"] = python_dists.capture(processes, sorted(used), cache_dir)
    except Exception as exc:  # context is best effort: a note, never a failed job
        notes.append(f"packages.python: not recorded ({exc.__class__.__name__}: {exc})")
    try:
        # the dpkg path index is a fact of the machine: once per user, not per workspace
        result["system"] = system_packages.capture(used, cache.machine_dir() or cache_dir)
    except Exception as exc:  # same
        notes.append(f"packages.system: not recorded ({exc.__class__.__name__}: {exc})")
    return result
