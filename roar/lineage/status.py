"""`roar status`: the current session at a glance, as a dict (docs/json.md)."""

from __future__ import annotations

from typing import Any

from roar.lineage import dag as dagmod
from roar.lineage.disk import DiskCheck
from roar.store import index, labels
from roar.store.workspace import Workspace


def session_dag(ws: Workspace, conn, session_id: str | None = None, check_disk: bool = True) -> dagmod.Dag:
    """The DAG of a session (default: the current one), inputs compared with the disk."""
    cache = ws.hash_cache() if check_disk else None
    try:
        disk = DiskCheck(conn, cache) if check_disk else None
        return dagmod.build(conn, session_id or index.current_session(conn), disk)
    finally:
        if cache:
            cache.close()


def status(ws: Workspace) -> dict[str, Any]:
    conn = ws.index()
    try:
        dag = session_dag(ws, conn)
        session = dag.session
        warnings = []
        if session:
            warnings = [{"job": uid, "step": dag.job(uid).name, "message": msg} for uid, msg in conn.execute(
                "SELECT w.job, w.message FROM job_warnings w JOIN jobs j ON j.uid = w.job"
                " WHERE j.session_id = ? ORDER BY j.seq", (session["id"],))]
            session = {**session, "number": session.pop("seq"), "jobs": len(dag.jobs),
                       "labels": labels.current(conn, "session", session["id"])}
        bad = [{"file": f"jobs/{name}.msgpack", "message": err}
               for name, err in conn.execute("SELECT file, error FROM bad_files ORDER BY file")]
    finally:
        conn.close()
    return {
        "workspace": str(ws.root),
        "session": session,
        "steps": [{"step": j.name, "uid": j.uid, "type": j.type, "command": j.command, "status": j.status,
                   "exit_code": j.exit_code, "stale": bool(j.stale)} for j in dag.jobs],
        "outputs": [{"path": path, "hash": art, "step": job.name, "uid": job.uid,
                     "stale": dag.artifacts[art].stale} for path, art, job in dag.final_outputs()],
        "stale": [{"step": j.name, "uid": j.uid, "command": j.command, "reasons": j.stale}
                  for j in dag.jobs if j.stale],
        "warnings": warnings,
        "unreadable_records": bad,
    }


def session_summary(conn, session_id: str) -> dict[str, Any]:
    """`roar show session[:N]`: the session's facts, labels and jobs (oldest first)."""
    from roar.lineage import queries

    row = dagmod.session_row(conn, session_id)
    assert row is not None
    return {"id": row["id"], "number": row["seq"], "started_at": row["started_at"],
            "ended_at": row["ended_at"], "current": index.current_session(conn) == session_id,
            "labels": labels.current(conn, "session", session_id),
            "jobs": queries.log(conn, None, session_id)[::-1]}
