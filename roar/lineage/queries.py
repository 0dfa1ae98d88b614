"""Lineage queries on the index: an artifact's facts and lineage, a job's
place in the DAG, the log of recent jobs. Results are plain dicts, the shape
of the JSON output (docs/json.md)."""

from __future__ import annotations

import sqlite3
from typing import Any

from roar.lineage.refs import step_name
from roar.store import labels
from roar.store.index import PRODUCER, from_db_path

MAX_LINEAGE_JOBS = 10_000


JOB_COLUMNS = ("j.uid, j.step, j.type, j.command, j.status, j.exit_code, j.started_at, j.ended_at,"
               " s.seq, j.seq")


def _job(row: tuple) -> dict[str, Any]:
    uid, step, kind, command, status, code, started, ended, session_seq, _ = row
    return {"uid": uid, "step": step_name(step, kind), "type": kind, "command": command, "status": status,
            "exit_code": code, "started_at": started, "ended_at": ended, "session": session_seq}


def log(conn: sqlite3.Connection, limit: int | None = 20, session_id: str | None = None) -> list[dict]:
    """Recent jobs, newest first (all sessions unless session_id)."""
    where = "WHERE j.session_id = ?" if session_id else ""
    params: tuple = (session_id,) if session_id else ()
    rows = conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs j JOIN sessions s ON s.id = j.session_id {where}"
                        f" ORDER BY j.seq DESC LIMIT ?", (*params, -1 if limit is None else limit))
    return [_job(r) for r in rows]


def jobs_touching(conn: sqlite3.Connection, artifact: str, role: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        f"SELECT DISTINCT {JOB_COLUMNS} FROM job_files jf JOIN jobs j ON j.uid = jf.job"
        " JOIN sessions s ON s.id = j.session_id WHERE jf.artifact = ? AND jf.role = ? AND jf.remote = 0"
        " ORDER BY j.seq",
        (artifact, role))
    return [_job(r) for r in rows]


def artifact(conn: sqlite3.Connection, hash_: str) -> dict[str, Any]:
    """Everything `roar show` tells about an artifact."""
    kind, size = conn.execute("SELECT kind, size FROM artifacts WHERE hash = ?", (hash_,)).fetchone()
    paths = [from_db_path(r[0]) for r in conn.execute(
        "SELECT jf.path FROM job_files jf JOIN jobs j ON j.uid = jf.job WHERE jf.artifact = ?"
        " GROUP BY jf.path ORDER BY MIN(jf.remote) DESC, MIN(j.seq)", (hash_,))]   # local files last
    info: dict[str, Any] = {
        "hash": hash_,
        "kind": kind,
        "size": size,
        "hashes": dict(conn.execute("SELECT algorithm, digest FROM artifact_hashes WHERE artifact = ?"
                                    " ORDER BY algorithm", (hash_,)).fetchall()),
        "paths": paths,
        "produced_by": jobs_touching(conn, hash_, "output"),
        "consumed_by": jobs_touching(conn, hash_, "input"),
        "labels": labels.current(conn, "artifact", hash_),
    }
    if kind == "composite":
        info["members"] = [{"name": n, "hash": a, "size": s} for n, a, s in conn.execute(
            "SELECT cm.name, cm.artifact, a.size FROM composite_members cm JOIN artifacts a"
            " ON a.hash = cm.artifact WHERE cm.composite = ? ORDER BY cm.name", (hash_,))]
    info["member_of"] = [r[0] for r in conn.execute(
        "SELECT DISTINCT composite FROM composite_members WHERE artifact = ?", (hash_,))]
    info["lineage"] = lineage(conn, hash_)
    return info


def on_disk(path: str, info: dict[str, Any], cache: Any) -> dict[str, Any]:
    """How the file at `path` (the ref the user typed) compares with the recorded
    artifact `info`: {"path", "state": same | differs | missing | unreadable | not a file,
    "hash": its blake3 now (when hashed)}. `cache` is the workspace's HashCache."""
    import os

    from roar.artifacts import hashing

    entry: dict[str, Any] = {"path": path, "state": "missing", "hash": None}
    if info.get("kind") != "file":
        entry["state"] = "not a file"    # a directory's tree is compared by `roar status`
        return entry
    if not os.path.lexists(path):
        return entry
    try:
        entry["hash"] = hashing.hash_file(path, ("blake3",), cache=cache)["blake3"]
    except OSError:
        entry["state"] = "unreadable"
        return entry
    entry["state"] = "same" if entry["hash"] == info["hash"] else "differs"
    return entry


def _producer(conn: sqlite3.Connection, artifact: str, before_seq: float) -> tuple | None:
    """The job row of PRODUCER (roar.store.index) across sessions: one seek in
    job_files_artifact (artifact, role, seq), however many jobs wrote those bytes."""
    found = conn.execute(PRODUCER.format(scope=""), {"artifact": artifact, "seq": before_seq}).fetchone()
    if found is None:
        return None
    return conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs j JOIN sessions s ON s.id = j.session_id"
                        " WHERE j.uid = ?", found).fetchone()


def lineage(conn: sqlite3.Connection, target: str) -> dict[str, Any]:
    """The jobs and artifacts that made `target`: for each artifact, its latest
    producer before the job that used it, back to source inputs (no producer).

    {"artifact", "made_by": uid|None, "jobs": [{...job, "inputs": [{path, hash, made_by}]}],
     "sources": [{hash, paths}]} -- jobs newest first."""
    jobs: dict[str, dict[str, Any]] = {}
    sources: dict[str, list[str]] = {}
    first = _producer(conn, target, float("inf"))
    todo = [first] if first else []
    if not first:
        sources[target] = []
    while todo and len(jobs) < MAX_LINEAGE_JOBS:
        row = todo.pop()
        job = _job(row)
        if job["uid"] in jobs:
            continue
        jobs[job["uid"]] = job
        job["inputs"] = []
        for path, art, remote in conn.execute(
                "SELECT path, artifact, remote FROM job_files WHERE job = ? AND role = 'input'"
                " AND composite IS NULL ORDER BY path", (job["uid"],)).fetchall():
            producer = None if remote else _producer(conn, art, row[-1])   # a URL is its own origin
            job["inputs"].append({"path": from_db_path(path), "hash": art,
                                  "made_by": producer[0] if producer else None})
            if producer:
                todo.append(producer)
            else:
                sources.setdefault(art, []).append(path)
    ordered = sorted(jobs.values(), key=lambda j: (j["ended_at"] or 0), reverse=True)
    return {"artifact": target, "made_by": first[0] if first else None, "jobs": ordered,
            "sources": [{"hash": h, "paths": sorted(set(p))} for h, p in sources.items()],
            "truncated": len(jobs) >= MAX_LINEAGE_JOBS}


def job_links(conn: sqlite3.Connection, uid: str) -> dict[str, Any]:
    """For a job's record: which job made each input, which jobs read each output."""
    seq = conn.execute("SELECT seq FROM jobs WHERE uid = ?", (uid,)).fetchone()[0]
    made_by = {}
    for art, remote in conn.execute("SELECT artifact, remote FROM job_files WHERE job = ? AND role = 'input'",
                                    (uid,)).fetchall():
        producer = None if remote else _producer(conn, art, seq)
        made_by[art] = {"uid": producer[0], "step": _job(producer)["step"]} if producer else None
    read_by: dict[str, list[dict[str, str]]] = {}
    for art, consumer, step, kind in conn.execute(
            "SELECT o.artifact, j.uid, j.step, j.type FROM job_files o JOIN job_files i"
            " ON i.artifact = o.artifact AND i.role = 'input' AND i.remote = 0 JOIN jobs j ON j.uid = i.job"
            " WHERE o.job = ? AND o.role = 'output' AND o.remote = 0"
            " AND j.seq > ? ORDER BY j.seq", (uid, seq)):
        read_by.setdefault(art, []).append({"uid": consumer, "step": step_name(step, kind)})
    return {"made_by": made_by, "read_by": read_by}
