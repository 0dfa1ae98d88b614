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
TREE_ALGORITHM = "roar-tree-v1"   # a composite's tree hash (docs/artifacts.md)

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
]

DERIVED_TABLES = ("label_events", "job_warnings", "job_files", "composite_members", "artifact_hashes", "artifacts",
                  "bad_files", "jobs", "sessions")
"""Everything `roar db rebuild` recomputes from the files (children first)."""


def db_path(path: str) -> str | bytes:
    """A file path as stored in SQLite: TEXT, or its exact bytes (a BLOB) when it is
    not UTF-8, which the sqlite3 module cannot encode."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path)


def from_db_path(value: str | bytes) -> str:
    return os.fsdecode(value) if isinstance(value, bytes) else value


def connect(path: Path, check_same_thread: bool = True) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None,
                               check_same_thread=check_same_thread)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(conn)
    except sqlite3.DatabaseError as exc:
        if "readonly" in str(exc) or "unable to open" in str(exc):
            raise WorkspaceUnwritable(f"cannot open the index {path}: {exc}") from None
        raise CorruptStore(
            f"the index {path} is damaged ({exc}): run `roar db rebuild`"
        ) from None
    return conn


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


def index_job(conn: sqlite3.Connection, record: dict[str, Any], seq: int | None = None) -> None:
    """Index one record: its job row, its files and artifacts, its run-time labels.
    `seq` orders jobs across the workspace (default: after every indexed job)."""
    from roar.artifacts import composite

    if seq is None:
        seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()[0]
    conn.execute(
        "INSERT OR REPLACE INTO jobs (uid, session_id, step, type, command, exit_code, status,"
        " started_at, ended_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (record["uid"], record["session"], record["step"], record["type"], record["command"],
         record.get("exit_code"), record.get("exit", {}).get("status"),
         record.get("started_at"), record.get("ended_at"), seq),
    )
    rows = []
    for role, entries in (("input", record.get("inputs") or []), ("output", record.get("outputs") or [])):
        singles, composites = composite.group(entries)
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
    conn.executemany("INSERT OR REPLACE INTO job_files VALUES (?, ?, ?, ?, ?, ?)",
                     [(record["uid"], *row) for row in rows])
    conn.executemany("INSERT INTO job_warnings VALUES (?, ?)",
                     [(record["uid"], w) for w in record.get("warnings") or []])
    at = record.get("ended_at") or record.get("started_at") or 0
    conn.executemany("INSERT OR REPLACE INTO label_events VALUES (?, ?, 'job', ?, ?, ?, 'record')",
                     [(f"record:{record['uid']}:{k}", at, record["uid"], k, str(v))
                      for k, v in (record.get("labels") or {}).items()])


def _add_members(conn: sqlite3.Connection, comp: str, members: list[dict[str, Any]]) -> None:
    for m in members:
        _add_artifact(conn, m)
    conn.executemany("INSERT OR IGNORE INTO composite_members VALUES (?, ?, ?)",
                     [(comp, db_path(m["name"]), m["hash"]) for m in members])


def index_label(conn: sqlite3.Connection, change: dict[str, Any]) -> None:
    conn.execute("INSERT OR REPLACE INTO label_events VALUES (?, ?, ?, ?, ?, ?, 'cli')",
                 (change["id"], change["at"], change["target_kind"], change["target"], change["key"],
                  change.get("value")))


def clear(conn: sqlite3.Connection) -> None:
    """Empty every derived table (inside the caller's transaction)."""
    for table in DERIVED_TABLES:
        conn.execute(f"DELETE FROM {table}")
