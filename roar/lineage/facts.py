"""Reading the facts the index keeps about a session (roar.store.index: each input's
producer, each path's last write, which rows were rewritten or read later) without
building its graph: above all, which jobs are stale and why (docs/lineage.md).

1. Every input whose path no later job of the session wrote is compared with the
   disk, once per distinct path and artifact (roar.lineage.disk: a vanished
   directory is looked at once, an existing file costs a stat and a batched
   hash-cache lookup, maybe a hash); an input whose path a later job re-made with
   other bytes is stale without looking at the disk.
2. Jobs that read an output of a stale job are stale, transitively: one recursive
   query over the producer links.
3. The reasons are worked out for the stale jobs only.
4. A job none of whose inputs changed but one of which exists and could not be
   read (no permission, an I/O error) is not stale but unknown, and so is every
   job downstream of it that is not stale: `0 stale` never hides an input that
   could not be looked at.

Nothing is built per job or per artifact of the session: a session where nothing
is stale costs one pass over its input rows plus the disk checks.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING

from roar.lineage.refs import step_name
from roar.store.index import from_db_path

if TYPE_CHECKING:
    from roar.lineage.disk import DiskCheck

# The file inputs no later job of the session wrote again: compared with the disk
# (an index-only scan of job_files_fresh_inputs, in path order). INDEXED BY where
# SQLite, without statistics, would prefer job_files_session and scan the session.
_FRESH = ("SELECT DISTINCT path, artifact, size FROM job_files INDEXED BY job_files_fresh_inputs"
          " WHERE session_id = ? AND role = 'input'"
          " AND composite IS NULL AND rewritten = 0")
_READERS = ("SELECT job FROM job_files INDEXED BY job_files_fresh_inputs WHERE session_id = ? AND path = ?"
            " AND artifact = ? AND role = 'input'"
            " AND composite IS NULL AND rewritten = 0")
# The file inputs a later job of the session re-made with other bytes.
_REMADE = ("SELECT DISTINCT jf.job FROM job_files jf INDEXED BY job_files_rewritten_inputs"
           " JOIN path_writes w ON w.session_id = jf.session_id"
           " AND w.path = jf.path WHERE jf.session_id = ? AND jf.role = 'input' AND jf.composite IS NULL"
           " AND jf.rewritten = 1 AND w.artifact != jf.artifact")
_SPREAD = ("WITH RECURSIVE stale(job) AS (SELECT value FROM json_each(?) UNION"
           " SELECT jf.job FROM stale JOIN job_files jf ON jf.producer = stale.job WHERE jf.role = 'input')"
           " SELECT stale.job FROM stale JOIN jobs j ON j.uid = stale.job ORDER BY j.seq")
# The file inputs of the stale jobs (few: one lookup per job; many: a scan of the session).
_REASON_COLUMNS = ("SELECT jf.job, jf.path, jf.artifact, jf.size, jf.producer, jf.rewritten, w.job,"
                   " w.artifact FROM {source} LEFT JOIN path_writes w ON jf.rewritten = 1"
                   " AND w.session_id = jf.session_id AND w.path = jf.path WHERE {where}"
                   " ORDER BY jf.seq, jf.path")
_REASON_ROWS = _REASON_COLUMNS.format(source="json_each(?) s JOIN job_files jf ON jf.job = s.value",
                                      where="jf.role = 'input' AND jf.composite IS NULL")
_SESSION_INPUTS = _REASON_COLUMNS.format(
    source="job_files jf", where="jf.session_id = ? AND jf.role = 'input' AND jf.composite IS NULL")
SCAN_ABOVE = 500    # stale jobs, above which their inputs are read by a scan of the session


def staleness(conn: sqlite3.Connection, session_id: str,
              disk: "DiskCheck | None") -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """({uid: reasons} of the stale jobs, {uid: reasons} of the jobs whose staleness is
    unknown), both in job order; a job is in one at most."""
    stale = stale_jobs(conn, session_id, disk)
    return stale, unknown_jobs(conn, session_id, disk, stale)


def stale_jobs(conn: sqlite3.Connection, session_id: str, disk: "DiskCheck | None") -> dict[str, list[str]]:
    """{uid: reasons} of the session's stale jobs, in job order. The inputs that could not
    be compared are left in `disk.unknown_rows` (see unknown_jobs)."""
    seeds = {r[0] for r in conn.execute(_REMADE, (session_id,))}
    if disk is not None:
        for path, art in disk.changed_among(conn.execute(_FRESH, (session_id,)).fetchall()):
            seeds.update(r[0] for r in conn.execute(_READERS, (session_id, path, art)))
    if not seeds:
        return {}
    stale = [r[0] for r in conn.execute(_SPREAD, (json.dumps(sorted(seeds)),))]
    return _reasons(conn, session_id, stale, disk)


def _reasons(conn: sqlite3.Connection, session_id: str, stale: list[str],
             disk: "DiskCheck | None") -> dict[str, list[str]]:
    stale_set = set(stale)
    reasons: dict[str, list[str]] = {uid: [] for uid in stale}
    if len(stale) > SCAN_ABOVE:
        rows = [r for r in conn.execute(_SESSION_INPUTS, (session_id,)) if r[0] in stale_set]
    else:
        rows = conn.execute(_REASON_ROWS, (json.dumps(stale),)).fetchall()
    names = job_names(conn, {r[4] for r in rows if r[4] in stale_set} | {r[6] for r in rows if r[6]})
    for uid, path, art, size, producer, rewritten, writer, now in rows:
        shown = from_db_path(path)
        if producer in stale_set:
            reasons[uid].append(f"{shown} was made by {names[producer]}, which is stale")
        if rewritten:
            if now != art:
                reasons[uid].append(f"{shown} was re-made by {names[writer]}")
        elif disk is not None and disk.changed(shown, art, size):
            reasons[uid].append(f"{shown} changed on disk")
    return reasons


def unknown_jobs(conn: sqlite3.Connection, session_id: str, disk: "DiskCheck | None",
                 stale: dict[str, list[str]]) -> dict[str, list[str]]:
    """{uid: reasons} of the jobs that are not stale but may be: one of their inputs exists
    and could not be compared with the disk (after stale_jobs with the same `disk`), or was
    made by such a job."""
    if disk is None or not disk.unknown_rows:
        return {}
    seeds: set[str] = set()
    for path, art in disk.unknown_rows:
        seeds.update(r[0] for r in conn.execute(_READERS, (session_id, path, art)))
    spread = [r[0] for r in conn.execute(_SPREAD, (json.dumps(sorted(seeds)),)) if r[0] not in stale]
    if not spread:
        return {}
    unknown = set(spread)
    reasons: dict[str, list[str]] = {uid: [] for uid in spread}
    if len(spread) > SCAN_ABOVE:
        rows = [r for r in conn.execute(_SESSION_INPUTS, (session_id,)) if r[0] in unknown]
    else:
        rows = conn.execute(_REASON_ROWS, (json.dumps(spread),)).fetchall()
    names = job_names(conn, {r[4] for r in rows if r[4] in unknown})
    for uid, path, art, _size, producer, rewritten, _writer, _now in rows:
        shown = from_db_path(path)
        if producer in unknown:
            reasons[uid].append(f"{shown} was made by {names[producer]}, whose staleness is unknown")
        why = None if rewritten else disk.unknown.get((shown, art))
        if why:
            reasons[uid].append(f"{why}: whether it changed is unknown")
    return reasons


def job_names(conn: sqlite3.Connection, uids: set[str]) -> dict[str, str]:
    """{uid: @N or @BN}."""
    if not uids:
        return {}
    return {uid: step_name(step, kind) for uid, step, kind in conn.execute(
        "SELECT uid, step, type FROM jobs WHERE uid IN (SELECT value FROM json_each(?))",
        (json.dumps(sorted(uids)),))}


def composites(conn: sqlite3.Connection, session_id: str) -> set[str]:
    """The composite artifacts the session's jobs read or wrote."""
    return {r[0] for role in ("input", "output") for r in conn.execute(
        "SELECT DISTINCT composite FROM job_files WHERE session_id = ? AND role = ?"
        " AND composite IS NOT NULL", (session_id, role))}


def member_of(conn: sqlite3.Connection, session_id: str) -> dict[tuple[str, str], str]:
    """{(member artifact, job): the composite output of that job it is a member of}: the
    composite version a member version belongs to (roar.lineage.dag)."""
    found: dict[tuple[str, str], str] = {}
    for art, job, comp in conn.execute(
            "SELECT artifact, job, composite FROM job_files WHERE session_id = ? AND role = 'output'"
            " AND composite IS NOT NULL ORDER BY seq", (session_id,)):
        found.setdefault((art, job), comp)
    return found


def stale_outputs(conn: sqlite3.Connection, session_id: str, stale: dict[str, list[str]],
                  among: list[str] | None = None) -> set[str]:
    """The artifacts a stale job of the session wrote (as files or composites): stale too.
    `among`: only those artifacts are asked about (a few shown ones)."""
    if not stale:
        return set()
    if among is not None:
        return {art for art in set(among) if any(r[0] in stale for r in conn.execute(
            "SELECT job FROM job_files INDEXED BY job_files_artifact WHERE artifact = ? AND role = 'output'"
            " AND session_id = ? AND composite IS NULL", (art, session_id)))}
    return {r[0] for r in conn.execute(
        "SELECT artifact FROM job_files WHERE job IN (SELECT value FROM json_each(?)) AND role = 'output'"
        " AND composite IS NULL", (json.dumps(list(stale)),))}


def superseded(conn: sqlite3.Connection, session_id: str) -> set[str]:
    """The session's jobs that a later job of the same type, command and working
    directory ran again: the session as it now stands leaves them out (they stay in
    `roar log` and in every lineage they are part of)."""
    return {uid for (uid,) in conn.execute(
        "SELECT j.uid FROM jobs j WHERE j.session_id = ? AND EXISTS (SELECT 1 FROM jobs l"
        " INDEXED BY jobs_same_step WHERE l.session_id = j.session_id AND l.type = j.type"
        " AND l.command = j.command AND l.cwd IS j.cwd AND l.seq > j.seq)", (session_id,))}
