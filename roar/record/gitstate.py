"""The git state a job ran in, compared with the previous job's in the session, so that a
dirty tree is said once and again only when the tree changed (docs/lineage.md, "Warnings,
said once").

A job's state is its repository root, branch, commit, whether the tree was dirty, and
which dirty paths are not the session's own doing: the paths the session's earlier jobs
changed themselves (their `changed_by_job`) are left out, so a pipeline whose steps
write outputs into the work tree does not warn at every step. What the index keeps per
job (`jobs.git`, JSON) is that state plus `made`, the paths the session's jobs have
changed so far, from which the next job's state follows.
"""

from __future__ import annotations

import json
from typing import Any

COMPARED = ("root", "branch", "commit", "dirty", "own")


def state(record: dict[str, Any], previous: str | None) -> str | None:
    """The record's git state as JSON text, given the previous job's of its session (None:
    the first job, or one with no git context); None when the record has no git context."""
    git = (record.get("context") or {}).get("git")
    if not isinstance(git, dict) or not git.get("root"):
        return None
    before = _load(previous) or {}
    made = set(before.get("made") or []) if before.get("root") == git["root"] else set()
    return json.dumps({"root": git["root"], "branch": git.get("branch"), "commit": git.get("commit"),
                       "dirty": git.get("dirty"),
                       "own": sorted(set(git.get("dirty_paths") or []) - made),
                       "made": sorted(made | set(git.get("changed_by_job") or []))})


def unchanged(previous: str | None, now: str | None) -> bool:
    """Whether state `now` (from `state`) is the previous job's: same repository, branch,
    commit, dirtiness and dirty paths of the user's own. Unknown (no state, git status
    failed) is never unchanged."""
    before, after = _load(previous), _load(now)
    if before is None or after is None or before.get("dirty") is None or after.get("dirty") is None:
        return False
    return all(before.get(k) == after.get(k) for k in COMPARED)


def _load(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
