"""The SQLite index of a workspace (.roar/roar.db): its one schema and how a
record, a session and a label change are indexed.

The files under .roar/ (job records, session files, label changes) are the
durable source; this index makes queries fast and can always be rebuilt from
them (`roar db rebuild`), except the hash cache, which is only a cache. One
schema, versioned by named migrations recorded in the `migrations` table;
docs/store.md describes the tables.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from roar.errors import CorruptStore, WorkspaceUnwritable

DB_NAME = "roar.db"
FULL_BELOW_BYTES = 1 << 20   # free space under which a failing write is a full disk
TREE_ALGORITHM = "roar-tree-v1"   # a composite's tree hash (docs/artifacts.md)

FACTS_SQL_003 = (
    # the job's session and place in the workspace order, on each of its rows
    "UPDATE job_files SET (session_id, seq) = (SELECT session_id, seq FROM jobs WHERE uid = job_files.job)"
    " WHERE job IN (SELECT uid FROM jobs WHERE {where})",
    # the last write of each path in each session
    "DELETE FROM path_writes WHERE {where}",
    "INSERT OR REPLACE INTO path_writes SELECT session_id, path, job, seq, artifact FROM job_files"
    " WHERE role = 'output' AND {where} ORDER BY seq",
    # an input's producer: the latest earlier job of the session that wrote those bytes
    "UPDATE job_files SET producer = (SELECT o.job FROM job_files o INDEXED BY job_files_artifact"
    " WHERE o.artifact = job_files.artifact"
    " AND o.role = 'output' AND o.session_id = job_files.session_id AND o.seq < job_files.seq"
    " ORDER BY o.seq DESC LIMIT 1) WHERE role = 'input' AND composite IS NULL AND {where}",
    # rewritten: a later job of the session wrote the path (of an output or a file input)
    "UPDATE job_files SET rewritten = COALESCE(seq < (SELECT w.seq FROM path_writes w"
    " WHERE w.session_id = job_files.session_id AND w.path = job_files.path), 0)"
    " WHERE (role = 'output' OR composite IS NULL) AND {where}",
    # read_later: a later job of the session read an output's bytes
    "UPDATE job_files SET read_later = EXISTS (SELECT 1 FROM job_files r INDEXED BY job_files_artifact"
    " WHERE r.artifact = job_files.artifact AND r.role = 'input' AND r.seq > job_files.seq"
    " AND r.session_id = job_files.session_id AND r.composite IS NULL) WHERE role = 'output' AND {where}",
)
"""The facts as migration 003 computed them (before job_files.remote existed); frozen."""

LOCAL = "remote = 0"
"""A row that is a local file. A get's input (the URL it fetched) and a put's output (the
copy it placed) are remote locations: a URL has no producer, and a remote copy is nobody's
input's producer (docs/lineage-rules.md, "Transfers")."""

PRODUCER = ("SELECT o.job FROM job_files o INDEXED BY job_files_artifact WHERE o.artifact = :artifact"
            " AND o.role = 'output' AND o.remote = 0 AND o.seq < :seq {scope} ORDER BY o.seq DESC LIMIT 1")
"""The one definition of an input's producer: the latest earlier job that wrote those bytes
to a local file (as a file or a composite's member). The session facts scope it to the
session (`{scope}`: AND o.session_id = ...); `roar show`'s lineage to the workspace."""

FACTS_SQL = (
    # the job's session and place in the workspace order, on each of its rows
    "UPDATE job_files SET (session_id, seq) = (SELECT session_id, seq FROM jobs WHERE uid = job_files.job)"
    " WHERE job IN (SELECT uid FROM jobs WHERE {where})",
    # the last local write of each path in each session
    "DELETE FROM path_writes WHERE {where}",
    "INSERT OR REPLACE INTO path_writes SELECT session_id, path, job, seq, artifact FROM job_files"
    " WHERE role = 'output' AND remote = 0 AND {where} ORDER BY seq",
    # an input's producer (PRODUCER, within the session); a remote input has none
    "UPDATE job_files SET producer = CASE WHEN remote = 0 THEN ("
    + PRODUCER.format(scope="AND o.session_id = job_files.session_id").replace(
        ":artifact", "job_files.artifact").replace(":seq", "job_files.seq") + ") END"
    " WHERE role = 'input' AND composite IS NULL AND {where}",
    # rewritten: a later job of the session wrote the path (of an output or a file input)
    "UPDATE job_files SET rewritten = COALESCE(seq < (SELECT w.seq FROM path_writes w"
    " WHERE w.session_id = job_files.session_id AND w.path = job_files.path), 0)"
    " WHERE (role = 'output' OR composite IS NULL) AND {where}",
    # read_later: a later job of the session read an output's bytes from a local file
    "UPDATE job_files SET read_later = EXISTS (SELECT 1 FROM job_files r INDEXED BY job_files_artifact"
    " WHERE r.artifact = job_files.artifact AND r.role = 'input' AND r.seq > job_files.seq"
    " AND r.session_id = job_files.session_id AND r.composite IS NULL AND r.remote = 0)"
    " WHERE role = 'output' AND {where}",
)
"""How the session facts follow from the rows; `{where}` selects the sessions. Migration
005 runs these on the whole index and refresh_facts on one session: change their meaning
only with a new migration that runs them again. (INDEXED BY: without statistics SQLite
may prefer job_files_session, and scan the rest of the session for every row.)"""

MIGRATIONS: list[tuple[str, str]] = [
    ("001_sessions_jobs", """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            seq INTEGER NOT NULL UNIQUE,
            started_at REAL NOT NULL,
            ended_at REAL
        );
        CREATE TABLE jobs (
            uid TEXT PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions(id),
            step INTEGER NOT NULL,
            type TEXT NOT NULL,
            command TEXT NOT NULL,
            exit_code INTEGER,
            status TEXT,
            started_at REAL,
            ended_at REAL,
            UNIQUE (session_id, type, step)
        );
    """),
    ("002_artifacts_files_labels", """
        ALTER TABLE jobs ADD COLUMN seq INTEGER;
        CREATE INDEX jobs_seq ON jobs (seq);
        CREATE INDEX jobs_session ON jobs (session_id, seq);
        CREATE TABLE artifacts (
            hash TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            size INTEGER
        );
        CREATE TABLE artifact_hashes (
            artifact TEXT NOT NULL REFERENCES artifacts(hash),
            algorithm TEXT NOT NULL,
            digest TEXT NOT NULL,
            PRIMARY KEY (artifact, algorithm)
        );
        CREATE INDEX artifact_hashes_digest ON artifact_hashes (digest);
        CREATE TABLE composite_members (
            composite TEXT NOT NULL REFERENCES artifacts(hash),
            name TEXT NOT NULL,
            artifact TEXT NOT NULL REFERENCES artifacts(hash),
            PRIMARY KEY (composite, name)
        );
        CREATE TABLE job_files (
            job TEXT NOT NULL REFERENCES jobs(uid),
            role TEXT NOT NULL,
            path TEXT NOT NULL,
            artifact TEXT NOT NULL REFERENCES artifacts(hash),
            size INTEGER,
            composite TEXT,
            PRIMARY KEY (job, role, path)
        );
        CREATE INDEX job_files_artifact ON job_files (artifact, role);
        CREATE INDEX job_files_path ON job_files (path);
        CREATE TABLE label_events (
            id TEXT PRIMARY KEY,
            at REAL NOT NULL,
            target_kind TEXT NOT NULL,
            target TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT,
            origin TEXT NOT NULL
        );
        CREATE INDEX label_events_target ON label_events (target_kind, target, key, at);
        CREATE TABLE job_warnings (
            job TEXT NOT NULL REFERENCES jobs(uid),
            message TEXT NOT NULL
        );
        CREATE INDEX job_warnings_job ON job_warnings (job);
        CREATE TABLE bad_files (
            file TEXT PRIMARY KEY,
            error TEXT NOT NULL
        );
        CREATE TABLE hash_cache (
            dev INTEGER NOT NULL,
            ino INTEGER NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            algorithm TEXT NOT NULL,
            digest TEXT NOT NULL,
            used_at REAL NOT NULL,
            PRIMARY KEY (dev, ino, size, mtime_ns, algorithm)
        ) WITHOUT ROWID;
    """),
    # Facts about each session's graph, kept up to date as jobs are indexed
    # (index_job), so that status, dag and show read them instead of replaying the
    # session (docs/store.md). FACTS_SQL fills them in for an index made before.
    ("003_session_facts", """
        ALTER TABLE job_files ADD COLUMN session_id TEXT;
        ALTER TABLE job_files ADD COLUMN seq INTEGER;
        ALTER TABLE job_files ADD COLUMN producer TEXT;
        ALTER TABLE job_files ADD COLUMN rewritten INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE job_files ADD COLUMN read_later INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE path_writes (
            session_id TEXT NOT NULL,
            path TEXT NOT NULL,
            job TEXT NOT NULL,
            seq INTEGER NOT NULL,
            artifact TEXT NOT NULL,
            PRIMARY KEY (session_id, path)
        ) WITHOUT ROWID;
        DROP INDEX job_files_artifact;
        CREATE INDEX job_files_artifact ON job_files (artifact, role, seq);
    """ + "".join(statement.format(where="1") + ";" for statement in FACTS_SQL_003) + """
        CREATE INDEX job_files_session ON job_files (session_id, seq, role, path) WHERE composite IS NULL;
        CREATE INDEX job_files_members ON job_files (session_id, role, seq) WHERE composite IS NOT NULL;
        CREATE INDEX job_files_producer ON job_files (producer) WHERE producer IS NOT NULL;
        CREATE INDEX job_files_fresh_inputs ON job_files (session_id, path, artifact, size, role, composite,
            rewritten) WHERE role = 'input' AND composite IS NULL AND rewritten = 0;
        CREATE INDEX job_files_rewritten_inputs ON job_files (session_id, path)
            WHERE role = 'input' AND composite IS NULL AND rewritten = 1;
        CREATE INDEX job_files_unread ON job_files (session_id, artifact)
            WHERE role = 'output' AND read_later = 0;
        CREATE INDEX job_files_final ON job_files (session_id, seq, path)
            WHERE role = 'output' AND composite IS NULL AND rewritten = 0 AND read_later = 0;
    """),
    # the job's working directory: a later job of the session with the same type, command and
    # cwd supersedes an earlier one (roar status shows the session as it now stands). Rows
    # indexed before keep NULL until `roar db rebuild`, and NULLs match each other.
    ("004_job_cwd", """
        ALTER TABLE jobs ADD COLUMN cwd TEXT;
        CREATE INDEX jobs_same_step ON jobs (session_id, type, command, cwd, seq);
    """),
    # remote locations: a get's inputs and a put's outputs are URLs and remote copies, not local
    # files; they neither produce nor read local artifacts (docs/lineage-rules.md)
    ("005_remote_locations", """
        ALTER TABLE job_files ADD COLUMN remote INTEGER NOT NULL DEFAULT 0;
        UPDATE job_files SET remote = 1
            WHERE (role = 'input' AND job IN (SELECT uid FROM jobs WHERE type = 'get'))
            OR (role = 'output' AND job IN (SELECT uid FROM jobs WHERE type = 'put'));
    """ + "".join(statement.format(where="1") + ";" for statement in FACTS_SQL)),
    # the git state each job ran in (roar.record.gitstate), so that the next job of the session
    # warns of a dirty tree only when the tree changed; NULL for rows indexed before, until a rebuild
    ("006_job_git", """
        ALTER TABLE jobs ADD COLUMN git TEXT;
    """),
    # the hash cache keys on ctime too: a file's owner can set its mtime back after a same-size
    # rewrite, but not its ctime (roar.artifacts.cache). Only an optimisation: old rows go.
    ("007_hash_cache_ctime", """
        DROP TABLE hash_cache;
        CREATE TABLE hash_cache (
            dev INTEGER NOT NULL,
            ino INTEGER NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            ctime_ns INTEGER NOT NULL,
            algorithm TEXT NOT NULL,
            digest TEXT NOT NULL,
            used_at REAL NOT NULL,
            PRIMARY KEY (dev, ino, size, mtime_ns, ctime_ns, algorithm)
        ) WITHOUT ROWID;
    """),
]

DERIVED_TABLES = ("path_writes", "label_events", "job_warnings", "job_files", "composite_members",
                  "artifact_hashes", "artifacts", "bad_files", "jobs", "sessions")
"""Everything `roar db rebuild` recomputes from the files (children first)."""


def db_path(path: str) -> str | bytes:
    """A file path as stored in SQLite: TEXT, or its exact bytes (a BLOB) when it is
    not UTF-8, which the sqlite3 module cannot encode."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path)


def display_text(text: str) -> str:
    """Text for a column that is only shown (the command): a name that is not UTF-8
    keeps its odd bytes as \\xNN (the record file keeps them exact)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "backslashreplace")


def from_db_path(value: str | bytes) -> str:
    return os.fsdecode(value) if isinstance(value, bytes) else value


def connect(path: str | Path, check_same_thread: bool = True, readonly: bool = False,
            display: Path | None = None, journal: str = "WAL") -> sqlite3.Connection:
    """A connection to the index at `path` (migrated unless `readonly`, which opens
    it for reading only: another user's workspace, a read-only filesystem).
    `display` is the name errors show (`path` may go through /proc/self/fd)."""
    shown = display or _shown(str(path))
    try:
        if readonly:
            conn = _connect_readonly(str(path), check_same_thread)
            _check_migrated(conn)
            return conn
        conn = sqlite3.connect(path, timeout=30, isolation_level=None,
                               check_same_thread=check_same_thread)
        conn.execute(f"PRAGMA journal_mode={journal}")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA trusted_schema=OFF")   # the file may come from someone else
        migrate(conn)
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        if "disk is full" in text or disk_full(os.path.dirname(str(path)) or "."):
            raise WorkspaceUnwritable(f"cannot write the index {shown}: the disk is full; free some space "
                                      "and run the command again") from None
        if "readonly" in text or "unable to open" in text:
            raise WorkspaceUnwritable(f"cannot open the index {shown}: {exc}") from None
        if "locked" in text:
            raise
        raise CorruptStore(
            f"the index {shown} is damaged ({exc}): run `roar db rebuild`"
        ) from None
    return conn


def _shown(path: str) -> str:
    """A path through /proc/self/fd/N as the user knows it."""
    prefix = "/proc/self/fd/"
    if not path.startswith(prefix):
        return path
    fd, _, rest = path[len(prefix):].partition("/")
    try:
        return os.path.join(os.readlink(prefix + fd), rest)
    except OSError:
        return path


def disk_full(directory: str) -> bool:
    """Next to no space left where the index lives (SQLite then reports a full disk as
    an I/O error, or as damage, when its WAL files cannot grow)."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < FULL_BELOW_BYTES


def _connect_readonly(path: str, check_same_thread: bool) -> sqlite3.Connection:
    """mode=ro reads a WAL index when its -shm can be used; on a read-only filesystem
    only immutable=1 can (nobody can be writing there)."""
    from urllib.parse import quote

    last: sqlite3.DatabaseError | None = None
    for params in ("mode=ro", "immutable=1"):
        try:
            conn = sqlite3.connect(f"file:{quote(path)}?{params}", uri=True, timeout=30,
                                   isolation_level=None, check_same_thread=check_same_thread)
            conn.execute("PRAGMA trusted_schema=OFF")
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError as exc:
            last = exc
    assert last is not None
    raise last


def _check_migrated(conn: sqlite3.Connection) -> None:
    try:
        done = {r[0] for r in conn.execute("SELECT name FROM migrations")}
    except sqlite3.OperationalError:
        done = set()
    if done != {name for name, _ in MIGRATIONS}:
        raise WorkspaceUnwritable("the index needs upgrading for this roar, and this workspace is read-only "
                                  "here: run a roar command where it can be written (its owner's)")


def migrate(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    done = {r[0] for r in conn.execute("SELECT name FROM migrations")}
    unknown = done - {name for name, _ in MIGRATIONS}
    if unknown:
        raise CorruptStore(f"the index was migrated by a newer roar ({', '.join(sorted(unknown))}): "
                           "upgrade roar, or run `roar db rebuild` to rebuild it for this version")
    for name, sql in MIGRATIONS:
        if name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT 1 FROM migrations WHERE name=?", (name,)).fetchone() is None:
                for statement in filter(str.strip, sql.split(";")):
                    conn.execute(statement)
                conn.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def current_session(conn: sqlite3.Connection) -> str | None:
    """The open session (the latest one), or None before the first job."""
    row = conn.execute("SELECT id FROM sessions ORDER BY seq DESC LIMIT 1").fetchone()
    return row[0] if row else None


def index_session(conn: sqlite3.Connection, session: dict[str, Any]) -> None:
    conn.execute("INSERT OR REPLACE INTO sessions (id, seq, started_at, ended_at) VALUES (?, ?, ?, ?)",
                 (session["id"], session["seq"], session["started_at"], session.get("ended_at")))


def artifact_id(entry: dict[str, Any]) -> str | None:
    """An artifact is named by its blake3 digest (or tree hash); without one, by `alg:digest`."""
    if entry.get("hash"):
        return entry["hash"]
    for alg, digest in sorted((entry.get("hashes") or {}).items()):
        return f"{alg}:{digest}"
    return None


def _add_artifact(conn: sqlite3.Connection, entry: dict[str, Any], kind: str = "file") -> str | None:
    aid = artifact_id(entry)
    if aid is None:
        return None
    conn.execute("INSERT OR IGNORE INTO artifacts (hash, kind, size) VALUES (?, ?, ?)",
                 (aid, kind, entry.get("size")))
    hashes = dict(entry.get("hashes") or {})
    if entry.get("hash"):
        hashes.setdefault("blake3" if kind == "file" else TREE_ALGORITHM, entry["hash"])
    conn.executemany("INSERT OR IGNORE INTO artifact_hashes VALUES (?, ?, ?)",
                     [(aid, alg, digest) for alg, digest in hashes.items()])
    return aid


def index_job(conn: sqlite3.Connection, record: dict[str, Any], seq: int | None = None,
              facts: bool = True) -> None:
    """Index one record: its job row, its files and artifacts, its run-time labels, and
    the session facts it changes (unless `facts` is false: the caller then runs
    refresh_facts). `seq` orders jobs across the workspace (default: after every
    indexed job)."""
    if seq is None:
        seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()[0]
    session = record["session"]
    latest = conn.execute("SELECT MAX(seq) FROM jobs WHERE session_id = ?", (session,)).fetchone()[0]
    conn.execute(
        "INSERT OR REPLACE INTO jobs (uid, session_id, step, type, command, exit_code, status,"
        " started_at, ended_at, seq, cwd, git) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (record["uid"], session, record["step"], record["type"], display_text(record["command"]),
         record.get("exit_code"), record.get("exit", {}).get("status"),
         record.get("started_at"), record.get("ended_at"), seq, db_path(record.get("cwd") or ""),
         git_state(conn, record, seq)),
    )
    rows = _file_rows(conn, record)
    remote = remote_role(record["type"])
    conn.executemany(
        "INSERT OR REPLACE INTO job_files (job, role, path, artifact, size, composite, session_id, seq,"
        " producer, remote) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(record["uid"], role, path, aid, size, comp, session, seq,
          _producer(conn, session, aid, seq) if facts and role == "input" and comp is None
          and role != remote else None, int(role == remote))
         for role, path, aid, size, comp in rows])
    if facts and latest is not None and latest > seq:
        refresh_facts(conn, session)     # indexed out of order: later jobs' facts change too
    elif facts:
        _advance_facts(conn, session, record["uid"], seq,
                       [r for r in rows if r[0] != remote])   # remote rows change no local fact
    conn.executemany("INSERT INTO job_warnings VALUES (?, ?)",
                     [(record["uid"], w) for w in record.get("warnings") or []])
    at = record.get("ended_at") or record.get("started_at") or 0
    conn.executemany("INSERT OR REPLACE INTO label_events VALUES (?, ?, 'job', ?, ?, ?, 'record')",
                     [(f"record:{record['uid']}:{k}", at, record["uid"], k, str(v))
                      for k, v in (record.get("labels") or {}).items()])


def git_state(conn: sqlite3.Connection, record: dict[str, Any], seq: int | None = None) -> str | None:
    """The record's git state (roar.record.gitstate) after the session's job before `seq`
    (default: its latest job)."""
    from roar.record import gitstate

    return gitstate.state(record, previous_git(conn, record["session"], seq))


def previous_git(conn: sqlite3.Connection, session: str, seq: int | None = None) -> str | None:
    """The git state of the session's latest job (before `seq`)."""
    row = conn.execute("SELECT git FROM jobs WHERE session_id = ? AND seq < ? ORDER BY seq DESC LIMIT 1",
                       (session, seq if seq is not None else 2**63 - 1)).fetchone()
    return row[0] if row else None


def _file_rows(conn: sqlite3.Connection, record: dict[str, Any]) -> list[tuple]:
    """(role, path, artifact, size, composite or None) of a record's inputs and outputs,
    a directory's files grouped into a composite (its members follow it) as the record
    says (version 2) or by the rule (version 1: roar.record.composites)."""
    from roar.record import composites as grouping

    rows: list[tuple] = []
    for role in ("input", "output"):
        singles, composites = grouping.split(record, role + "s")   # as the writer grouped them
        for entry in singles + composites:
            kind = entry.get("kind", "file")
            aid = _add_artifact(conn, entry, kind)
            if aid is None:
                continue
            rows.append((role, db_path(entry["path"]), aid, entry.get("size"), None))
            if kind == "composite":
                _add_members(conn, aid, entry["members"])
                rows += [(role, db_path(m.get("path") or f"{entry['path']}/{m['name']}"), m["hash"],
                          m.get("size"), aid) for m in entry["members"]]
    return rows


def remote_role(job_type: str) -> str | None:
    """Which rows of a job of this type are remote locations: a get's inputs (the URL it
    fetched), a put's outputs (the copies it placed)."""
    return {"get": "input", "put": "output"}.get(job_type)


def _producer(conn: sqlite3.Connection, session: str, artifact: str, seq: int) -> str | None:
    """PRODUCER within the session."""
    row = conn.execute(PRODUCER.format(scope="AND o.session_id = :session"),
                       {"artifact": artifact, "seq": seq, "session": session}).fetchone()
    return row[0] if row else None


def _advance_facts(conn: sqlite3.Connection, session: str, uid: str, seq: int, rows: list[tuple]) -> None:
    """The facts after the session's newest job: the earlier outputs it read are no longer
    final; the paths it wrote have it as their last writer, and the earlier rows at those
    paths are rewritten. A fact flips once per row (the partial indexes only hold the rows
    not flipped yet), so indexing a job never rescans the session."""
    read = {aid for role, _, aid, _, comp in rows if role == "input" and comp is None}
    # INDEXED BY: without statistics SQLite would pick job_files_session and scan the session
    conn.executemany("UPDATE job_files INDEXED BY job_files_unread SET read_later = 1 WHERE session_id = ?"
                     " AND artifact = ? AND role = 'output' AND read_later = 0 AND seq < ?",
                     [(session, aid, seq) for aid in read])
    for role, path, aid, _, _ in rows:
        if role != "output":
            continue
        conn.execute("UPDATE job_files INDEXED BY job_files_fresh_inputs SET rewritten = 1"
                     " WHERE session_id = ? AND path = ? AND role = 'input' AND composite IS NULL"
                     " AND rewritten = 0 AND seq < ?", (session, path, seq))
        before = conn.execute("SELECT job FROM path_writes WHERE session_id = ? AND path = ?",
                              (session, path)).fetchone()
        if before and before[0] != uid:
            conn.execute("UPDATE job_files SET rewritten = 1 WHERE job = ? AND role = 'output' AND path = ?",
                         (before[0], path))
        conn.execute("INSERT OR REPLACE INTO path_writes VALUES (?, ?, ?, ?, ?)",
                     (session, path, uid, seq, aid))


def refresh_facts(conn: sqlite3.Connection, session: str | None = None) -> None:
    """Recompute the session facts of one session (or all) from the rows."""
    where = "1" if session is None else "session_id = :session"
    for statement in FACTS_SQL:
        conn.execute(statement.format(where=where), {"session": session})


def _add_members(conn: sqlite3.Connection, comp: str, members: list[dict[str, Any]]) -> None:
    for m in members:
        _add_artifact(conn, m)
    conn.executemany("INSERT OR IGNORE INTO composite_members VALUES (?, ?, ?)",
                     [(comp, db_path(m["name"]), m["hash"]) for m in members])


def index_label(conn: sqlite3.Connection, change: dict[str, Any]) -> None:
    conn.execute("INSERT OR REPLACE INTO label_events VALUES (?, ?, ?, ?, ?, ?, 'cli')",
                 (change["id"], change["at"], change["target_kind"], change["target"], change["key"],
                  change.get("value")))


def bad_file_name(name: str) -> str:
    """The file of a bad_files row, relative to .roar/: a job record by its uid,
    a session file or label change as KIND/ID."""
    return f"{name}.msgpack" if "/" in name else f"jobs/{name}.msgpack"


def clear(conn: sqlite3.Connection) -> None:
    """Empty every derived table (inside the caller's transaction)."""
    for table in DERIVED_TABLES:
        conn.execute(f"DELETE FROM {table}")
