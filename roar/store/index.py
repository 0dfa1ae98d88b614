"""The SQLite index of a workspace (.roar/roar.db): sessions and jobs.

The msgpack records are the durable source; this index makes queries fast and
can always be rebuilt from them. One schema, versioned by named migrations
recorded in the `migrations` table.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

from roar.errors import CorruptStore, WorkspaceUnwritable

DB_NAME = "roar.db"

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
]


def connect(path: Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
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


def current_session(conn: sqlite3.Connection, create: bool = True) -> str | None:
    row = conn.execute("SELECT id FROM sessions WHERE ended_at IS NULL ORDER BY seq DESC LIMIT 1").fetchone()
    if row:
        return row[0]
    if not create:
        return None
    sid = uuid.uuid4().hex[:16]
    seq = (conn.execute("SELECT COALESCE(MAX(seq), 0) FROM sessions").fetchone()[0]) + 1
    conn.execute("INSERT INTO sessions (id, seq, started_at) VALUES (?, ?, ?)", (sid, seq, time.time()))
    return sid


def index_job(conn: sqlite3.Connection, record: dict[str, Any]) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO jobs (uid, session_id, step, type, command, exit_code, status,"
        " started_at, ended_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (record["uid"], record["session"], record["step"], record["type"], record["command"],
         record.get("exit_code"), record.get("exit", {}).get("status"),
         record.get("started_at"), record.get("ended_at")),
    )
