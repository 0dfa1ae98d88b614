"""Resolving what users type to name a job: @N, @BN, or a uid (or unique prefix)."""

from __future__ import annotations

from typing import Any

from roar.errors import AmbiguousRef, RefNotFound
from roar.store import index
from roar.store.workspace import Workspace


def resolve_job(ws: Workspace, ref: str) -> dict[str, Any]:
    conn = ws.index()
    try:
        uid = _job_uid(conn, ref)
    finally:
        conn.close()
    return ws.read_record(uid)


def _job_uid(conn, ref: str) -> str:
    if ref.startswith("@"):
        build = ref[1:2].upper() == "B"
        number = ref[2:] if build else ref[1:]
        if not number.isdigit():
            raise RefNotFound(f"bad step reference {ref}: use @N or @BN, e.g. @1")
        session = index.current_session(conn, create=False)
        kind = "type = 'build'" if build else "type != 'build'"
        row = conn.execute(f"SELECT uid FROM jobs WHERE session_id = ? AND step = ? AND {kind}",
                           (session, int(number))).fetchone()
        if row is None:
            raise RefNotFound(f"no step {ref} in the current session: `roar log` lists the jobs")
        return row[0]
    rows = conn.execute("SELECT uid FROM jobs WHERE uid LIKE ? ORDER BY uid LIMIT 11",
                        (ref.lower() + "%",)).fetchall()
    if not rows:
        raise RefNotFound(f"no job matches {ref!r}: `roar log` lists the jobs")
    if len(rows) > 1:
        raise AmbiguousRef(f"{ref!r} matches several jobs: {', '.join(r[0] for r in rows[:10])}; "
                           "give more characters")
    return rows[0][0]
