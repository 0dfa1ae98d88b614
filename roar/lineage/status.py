"""`roar status`: the current session at a glance, as a dict (docs/json.md).

It reads the facts the index keeps (roar.store.index) and never builds the
session's graph: the steps and the final outputs are plain rows (the last
`limit` of each when the caller shows only those, with their totals), and
staleness comes from roar.lineage.facts, which compares every input no
later job re-made with the disk, so the stale count is exact; the steps an input
that could not be read leaves undecided are flagged `unknown`, with a warning
saying which input.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

from roar.store import index, labels

if TYPE_CHECKING:
    from roar.lineage.disk import DiskCheck
    from roar.store.workspace import Workspace

# the final outputs: latest outputs no later job of the session read (see FACTS_SQL)
# the warning of a step that may be stale: an input could not be compared with the disk
UNKNOWN = "staleness unknown: "
_FINAL = ("FROM job_files INDEXED BY job_files_final WHERE session_id = ? AND role = 'output'"
          " AND composite IS NULL AND rewritten = 0 AND read_later = 0")


def disk_check(ws: "Workspace", conn: sqlite3.Connection) -> "DiskCheck":
    """A DiskCheck that opens the workspace's hash cache only if a file has to be looked up."""
    from roar.lineage.disk import DiskCheck

    return DiskCheck(conn, ws.hash_cache)


def session_dag(ws: "Workspace", conn: sqlite3.Connection, session_id: str | None = None,
                check_disk: bool = True):
    """The DAG of a session (default: the current one) as objects (roar.lineage.dag),
    inputs compared with the disk."""
    from roar.lineage import dag as dagmod

    sid = session_id or index.current_session(conn)
    if not check_disk:
        return dagmod.build(conn, sid)
    with disk_check(ws, conn) as disk:
        return dagmod.build(conn, sid, disk)


def _rows(conn: sqlite3.Connection, query: str, params: tuple, limit: int | None) -> list[tuple]:
    """The rows of `query` (ordered by its `{order}`), or only the last `limit` of them."""
    if limit is None:
        return conn.execute(query.format(order="ASC"), params).fetchall()
    return conn.execute(query.format(order="DESC") + " LIMIT ?", (*params, limit)).fetchall()[::-1]


def _count_final(conn: sqlite3.Connection, sid: str) -> int:
    return conn.execute(f"SELECT COUNT(*) {_FINAL}", (sid,)).fetchone()[0]


def status(ws: "Workspace", limit: int | None = None) -> dict[str, Any]:
    """The session at a glance (docs/json.md). With `limit` (for the text), only the last
    `limit` steps and outputs are listed; `session.jobs` and the extra `outputs_total`
    count them all."""
    from roar.lineage import facts

    conn = ws.index()
    try:
        bad = [{"file": index.bad_file_name(name), "message": err}
               for name, err in conn.execute("SELECT file, error FROM bad_files ORDER BY file")]
        sid = index.current_session(conn)
        st: dict[str, Any] = {"workspace": str(ws.root), "session": None, "steps": [], "outputs": [],
                              "stale": [], "warnings": [], "unreadable_records": bad}
        if sid is not None:
            with disk_check(ws, conn) as disk:
                stale, unknown = facts.staleness(conn, sid, disk)
            # a job run again later is not part of the session as it now stands
            gone = facts.superseded(conn, sid)
            stale = {uid: why for uid, why in stale.items() if uid not in gone}
            unknown = {uid: why for uid, why in unknown.items() if uid not in gone}
            st.update(_summary(conn, sid, stale, limit, unknown, gone))
        if limit is not None:
            st["outputs_total"] = _count_final(conn, sid) if sid else 0
    finally:
        conn.close()
    return st


def _session_row(conn: sqlite3.Connection, sid: str) -> dict[str, Any]:
    sid, seq, started, ended = conn.execute("SELECT id, seq, started_at, ended_at FROM sessions WHERE id = ?",
                                            (sid,)).fetchone()
    return {"id": sid, "seq": seq, "started_at": started, "ended_at": ended, "number": seq}


def _summary(conn: sqlite3.Connection, sid: str, stale: dict[str, list[str]], limit: int | None,
             unknown: dict[str, list[str]] | None = None, gone: set[str] | None = None) -> dict:
    from roar.lineage.facts import job_names, stale_outputs
    from roar.lineage.refs import step_name as name

    session = _session_row(conn, sid)
    session["jobs"] = conn.execute("SELECT COUNT(*) FROM jobs WHERE session_id = ?", (sid,)).fetchone()[0]
    session["labels"] = labels.current(conn, "session", sid)
    unknown = unknown or {}
    gone = gone or set()
    session["superseded"] = len(gone)
    steps = [{"step": name(step, kind), "uid": uid, "type": kind, "command": command, "status": status,
              "exit_code": code, "stale": uid in stale, "unknown": uid in unknown}
             for uid, step, kind, command, status, code in _rows(
        conn, "SELECT uid, step, type, command, status, exit_code FROM jobs WHERE session_id = ?"
              " AND uid NOT IN (SELECT value FROM json_each(?)) ORDER BY seq {order}",
        (sid, json.dumps(sorted(gone))), limit)]
    final = _rows(conn, f"SELECT path, artifact, job {_FINAL} ORDER BY seq {{order}}, path {{order}}",
                  (sid,), limit)
    names = job_names(conn, {uid for _, _, uid in final} | set(stale) | set(unknown))
    commands = dict(conn.execute(
        "SELECT uid, command FROM jobs WHERE uid IN (SELECT value FROM json_each(?))",
        (json.dumps(list(stale)),))) if stale else {}
    # an output is stale when a stale job of the session wrote those bytes
    shown = None if limit is None else [art for _, art, _ in final]
    made_stale = stale_outputs(conn, sid, stale, shown)
    warnings = [{"job": uid, "step": name(step, kind), "message": msg}
                for uid, step, kind, msg in conn.execute(
                    "SELECT w.job, j.step, j.type, w.message FROM job_warnings w JOIN jobs j ON j.uid = w.job"
                    " WHERE j.session_id = ? ORDER BY j.seq", (sid,)) if uid not in gone]
    # not stale, but an input could not be compared with the disk: maybe stale
    warnings += [{"job": uid, "step": names[uid], "message": UNKNOWN + "; ".join(reasons)}
                 for uid, reasons in unknown.items()]
    return {
        "session": session,
        "steps": steps,
        "outputs": [{"path": index.from_db_path(path), "hash": art, "step": names[uid], "uid": uid,
                     "stale": art in made_stale} for path, art, uid in final],
        "stale": [{"step": names[uid], "uid": uid, "command": commands[uid], "reasons": reasons}
                  for uid, reasons in stale.items()],
        "warnings": warnings,
    }


def session_summary(conn: sqlite3.Connection, session_id: str) -> dict[str, Any]:
    """`roar show session[:N]`: the session's facts, labels and jobs (oldest first)."""
    from roar.lineage import queries

    row = _session_row(conn, session_id)
    return {"id": row["id"], "number": row["number"], "started_at": row["started_at"],
            "ended_at": row["ended_at"], "current": index.current_session(conn) == session_id,
            "labels": labels.current(conn, "session", session_id),
            "jobs": queries.log(conn, None, session_id)[::-1]}
