"""Opening the GLaaS database: the URL, the engine, and the migrations run at start.

SQLite is a file (default $XDG_DATA_HOME/roar/glaas.db) opened in WAL mode with a busy
timeout, so several server processes may share it; PostgreSQL is any
`postgresql://` URL (driver psycopg 3).
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from roar.errors import RoarError, Untrusted, UsageError

MIGRATION_LOCK = 0x726F6172   # pg_advisory_lock key: one process migrates at a time
IDLE_PING_S = 10.0            # a pooled PostgreSQL connection idle longer is pinged before use


def default_url() -> str:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return f"sqlite:///{Path(base) / 'roar' / 'glaas.db'}"


def normalize_url(url: str):
    """A SQLAlchemy URL for what the user typed: a sqlite: or postgresql: URL, or a file path."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if "://" not in url:
        url = f"sqlite:///{Path(url).absolute()}"
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UsageError(f"--db {url!r} is not a database URL: "
                         "give sqlite:///PATH or postgresql://...") from None
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername == "sqlite":
        return parsed
    raise UsageError(f"--db: unsupported database {parsed.drivername!r}: use sqlite:///PATH or postgresql://...")


def _prepare_sqlite_file(path: str) -> None:
    """Create the file 0600 (it holds token hashes) and refuse one that is a symbolic link."""
    if not path or path == ":memory:":
        return
    file = Path(path)
    try:
        file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(file, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if file.is_symlink():
            raise Untrusted(f"{file} is a symbolic link: give the database's real path with --db") from None
        raise RoarError(f"cannot open the database {file}: {exc.strerror}; "
                        "give a writable path with --db") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Untrusted(f"{file} is not a regular file: give a database file with --db")
    finally:
        os.close(fd)


def open_engine(url: str | None = None, migrate_schema: bool = True):
    """The engine for URL, its schema migrated to the newest revision (unless the caller
    has migrated it already: a worker process of `roar glaas serve --workers`)."""
    from sqlalchemy import create_engine, event

    parsed = normalize_url(url or default_url())
    if parsed.drivername == "sqlite":
        _prepare_sqlite_file(parsed.database or "")
        engine = create_engine(parsed, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # in WAL mode NORMAL syncs at checkpoints, not at every commit: a registration's
            # thousands of small commits stop waiting on the disk, and a crash still leaves a
            # consistent database (a power loss may lose the last commits, never half of one)
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
    else:
        engine = create_engine(parsed)
        ping_when_idle(engine, IDLE_PING_S)
    if migrate_schema:
        migrate(engine)
    return engine


def ping_when_idle(engine, idle_s: float) -> None:
    """Check a pooled connection before use only if it sat unused for idle_s or more: one
    that served a request a moment ago is alive, and pinging it (pool_pre_ping) was one more
    round trip to the database on every request. One that the database dropped meanwhile
    (a restart, an idle timeout) is replaced before the request uses it; a restart within
    the last idle_s fails one request with a 503, which clients retry, and SQLAlchemy then
    replaces every connection of the pool that predates it."""
    from sqlalchemy import event
    from sqlalchemy.exc import DisconnectionError

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn, record) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn, record, _proxy) -> None:
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < idle_s:   # just made, or just used
            return
        try:
            cursor = dbapi_conn.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
            dbapi_conn.rollback()
        except Exception as exc:   # the pool discards it and checks out another (or connects anew)
            raise DisconnectionError(f"pooled connection lost: {exc}") from exc


def migrate(engine) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                # several servers may start at once against one database
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
                conn.commit()
            try:
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
                conn.commit()
            finally:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
                    conn.commit()
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise RoarError(f"cannot open the database {engine.url.render_as_string(hide_password=True)}: "
                        f"{reason}; check --db") from None


def sessionmaker_for(engine):
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(engine, expire_on_commit=False)


def read_sessionmaker_for(engine):
    """Sessions for requests that only read (GET). On PostgreSQL in autocommit: no BEGIN
    before the first query and no ROLLBACK at the end, two round trips a request (a lookup
    is 3 queries, a depth-3 lineage 5 or so). Nothing is lost: at READ COMMITTED,
    PostgreSQL's default, each statement sees the data committed when it starts, in a
    transaction or not, and a finalize becomes visible whole to any one statement. SQLite's
    driver opens no transaction for reads."""
    from sqlalchemy.orm import sessionmaker

    if engine.dialect.name != "postgresql":
        return sessionmaker_for(engine)
    return sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False)
