"""The world a job ran in: record["context"] (fields in docs/context.md).

capture() gathers machine facts, git state, the redacted environment and the
packages the job used. It never raises: a part that cannot be observed is
None or [] and says why in context["notes"]. Facts that do not change
between runs are cached in the directory the caller gives (the workspace's
.roar/cache), so with warm caches capture costs a few milliseconds
(docs/performance-context.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

CONTEXT_VERSION = 2   # 2: programs (docs/context.md)


def capture_git(cwd: str) -> tuple[Any, list[str]]:
    """The git part alone, (git, notes): `roar run` takes it before the command starts,
    so the job's own outputs never make a clean tree look dirty."""
    from roar.record.context import git

    notes: list[str] = []
    return _part("git", lambda: git.capture(cwd), notes), notes


def capture(*, cwd: str, argv: list[str], env: dict[str, str], processes: list[dict[str, Any]],
            paths_read: list[str], cache_dir: Path,
            git_before: tuple[Any, list[str]] | None = None) -> dict[str, Any]:
    """record["context"] for a job started in `cwd` with `argv` and environment `env`
    (what roar passed to execve for the root process). `processes` are the
    record's process entries (exe, argv), `paths_read` every file it read."""
    from roar.record.context import cache, machine, packages
    from roar.record.context import env as envmod

    cache.ensure_dir(cache_dir)
    notes: list[str] = []
    context: dict[str, Any] = {"version": CONTEXT_VERSION}
    context["machine"] = _part("machine", lambda: machine.capture(cache_dir), notes)
    if git_before is None:
        git_before = capture_git(cwd)
    context["git"], git_notes = git_before
    notes += git_notes
    context["environment"] = _part("environment", lambda: envmod.capture(env), notes)
    context["packages"] = packages.capture(processes, paths_read, cache_dir, notes)
    for part in ("machine", "git"):
        note = (context[part] or {}).get("note") or (context[part] or {}).get("gpu_note")
        if note:
            notes.append(f"{part}: {note}")
    context["notes"] = notes
    return context


def warnings(context: dict[str, Any]) -> list[str]:
    """What `roar run` should tell the user about the context (a dirty tree)."""
    git = context.get("git") or {}
    if git.get("dirty"):
        paths = git.get("dirty_paths", [])
        shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
        return [f"the git tree is dirty ({shown}): commit to make this job reproducible from the commit"]
    return []


def _part(name: str, capture_part: Callable[[], Any], notes: list[str]) -> Any:
    try:
        return capture_part()
    except Exception as exc:  # context is best effort: a note, never a failed job
        notes.append(f"{name}: not recorded ({exc.__class__.__name__}: {exc})")
        return None
