"""`roar run @N`: one recorded job's command again, in its recorded working directory,
as a new job of the current session (docs/reproduce.md, "Re-running one step").

What is re-used from the record: the type (run or build), argv and cwd. The environment
is the one `roar run` would pass now: the recorded values are redacted, and a re-run is
meant to see today's world. The variables the job read (`env_read`) whose value differs
now are listed before it starts, never silently ignored. The new job carries the label
`roar.rerun_of` with the re-run job's uid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from roar import privilege
from roar.errors import ReproduceRefused, UsageError

LABEL = "roar.rerun_of"
MAX_LISTED = 5


@dataclass
class Rerun:
    uid: str
    step: str                  # @N or @BN, in the session it was recorded in
    session: str
    kind: str                  # run | build
    argv: list[str]
    cwd: str
    notes: list[str] = field(default_factory=list)   # environment differences, for the user


def prepare(ref: str) -> Rerun:
    """The job `ref` names, checked to be re-runnable, with the process moved to its
    recorded cwd. Under sudo the lookup and the chdir happen as the invoking user, as
    every workspace access of `roar run` does (roar.privilege)."""
    user = privilege.invoking_user()
    if user:
        privilege.as_user(user)
    try:
        return _prepare(ref, user)
    finally:
        if user:
            privilege.regain()


def _prepare(ref: str, user: privilege.User | None) -> Rerun:
    from roar.lineage import refs
    from roar.store.workspace import Workspace

    ws = Workspace.find()
    conn = ws.index()
    try:
        found = refs.resolve(conn, ref)
    finally:
        conn.close()
    if found.kind != "job":
        raise UsageError(f"{ref} names {'an' if found.kind == 'artifact' else 'a'} {found.kind}, not a job: "
                         "`roar run @N` re-runs a step (`roar log` lists them)")
    record = ws.read_record(found.id)
    again = _check(record)
    _enter(again.cwd, ws.root)
    from roar.tracer.launcher import child_environment

    again.notes = env_differences(record, child_environment(user))
    return again


def _check(record: dict[str, Any]) -> Rerun:
    from roar.lineage.refs import step_name

    step = step_name(record["step"], record["type"])
    if record["type"] not in ("run", "build"):
        raise UsageError(f"{step} is a {record['type']} step: run `roar {record['type']}` again for it; "
                         "`roar run @N` re-runs run and build steps")
    if record.get("argv_redacted"):
        raise ReproduceRefused(f"{step} ({record['command']}) has credentials replaced by <redacted> in its "
                               "record: run the command yourself")
    return Rerun(record["uid"], step, record["session"], record["type"], list(record["argv"]), record["cwd"])


def _enter(cwd: str, root) -> None:
    """chdir to the recorded cwd, which must still be in this workspace: the new job
    belongs to the current session."""
    from roar.store.workspace import Workspace

    try:
        os.chdir(cwd)
    except OSError as exc:
        raise ReproduceRefused(f"the recorded working directory {cwd} cannot be entered ({exc.strerror}): "
                               "recreate it, or run the command yourself") from None
    if Workspace.find().root != root:
        raise ReproduceRefused(f"the recorded working directory {cwd} now belongs to another roar workspace: "
                               "run the command there yourself")


def env_differences(record: dict[str, Any], env: dict[str, str]) -> list[str]:
    """One line per variable the job read whose value now is another, both redacted by
    the rules the record was written with (a secret never shows, but a change of it does
    when its redacted form changes: set or unset)."""
    from roar.record.context.env import read_variables

    recorded = record.get("env_read")
    if recorded is None:
        return ["environment: the variables the job read were not observed; it runs with today's"]
    now = read_variables({name: env.get(name) for name in recorded}, env)
    changed = [name for name in sorted(recorded) if recorded[name] != now[name]]
    lines = [f"environment: {name} was {_shown(recorded[name])}, now {_shown(now[name])}"
             for name in changed[:MAX_LISTED]]
    if len(changed) > MAX_LISTED:
        lines.append(f"environment: and {len(changed) - MAX_LISTED} more variables the job read differ")
    return lines


def _shown(value: str | None) -> str:
    return "unset" if value is None else repr(value)
