"""The server's PostgreSQL connections (roar.glaas.db): a pooled connection is pinged before
use only when it sat idle, and the sessions of read-only requests run in autocommit."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError


@pytest.fixture
def pg_url(postgres):
    return postgres.new_database()


def _engine(url: str, idle_s: float, monkeypatch):
    from roar.glaas import db

    monkeypatch.setattr(db, "IDLE_PING_S", idle_s)
    return db.open_engine(url)


def _pooled_pids(engine) -> list[int]:
    """Check out two connections at once, ask each its backend's pid, return both to the pool."""
    conns = [engine.connect(), engine.connect()]
    try:
        return [c.scalar(text("SELECT pg_backend_pid()")) for c in conns]
    finally:
        for c in conns:
            c.close()


def _terminate(url: str, pid: int) -> None:
    """From a connection of another engine, outside the pool under test."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from roar.glaas.db import normalize_url

    other = create_engine(normalize_url(url), poolclass=NullPool)
    try:
        with other.connect() as conn:
            assert conn.scalar(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    finally:
        other.dispose()
    time.sleep(0.2)   # let the backend go


def _use_both(engine) -> tuple[list[int], int]:
    """(the pids of two connections checked out at once, how many of them failed)."""
    pids, failed = [], 0
    conns = [engine.connect(), engine.connect()]
    for conn in conns:
        try:
            pids.append(conn.scalar(text("SELECT pg_backend_pid()")))
        except OperationalError:
            failed += 1
        conn.close()
    return pids, failed


def test_a_connection_dropped_while_idle_is_replaced_before_use(pg_url, monkeypatch):
    engine = _engine(pg_url, 0.2, monkeypatch)
    try:
        first, second = _pooled_pids(engine)
        _terminate(pg_url, first)
        time.sleep(0.3)   # idle past the threshold: pinged at checkout, found dead, replaced
        pids, failed = _use_both(engine)
        assert failed == 0
        assert second in pids and first not in pids
    finally:
        engine.dispose()


def test_a_connection_used_a_moment_ago_is_not_pinged(pg_url, monkeypatch):
    """Within the idle window a pooled connection is used as it is: a database restart in
    that window fails one request (a 503, which clients retry), and the pool is renewed."""
    engine = _engine(pg_url, 60.0, monkeypatch)
    try:
        first, _ = _pooled_pids(engine)
        _terminate(pg_url, first)
        _, failed = _use_both(engine)
        assert failed == 1
        pids, failed = _use_both(engine)   # the pool recovers at once
        assert failed == 0 and first not in pids
    finally:
        engine.dispose()


def test_read_sessions_run_in_autocommit_on_postgresql(pg_url):
    from roar.glaas.db import open_engine, read_sessionmaker_for, sessionmaker_for

    engine = open_engine(pg_url)
    same = "SELECT transaction_timestamp() = statement_timestamp()"
    try:
        with read_sessionmaker_for(engine)() as session:
            session.execute(text("SELECT 1"))
            time.sleep(0.01)
            assert session.scalar(text(same)) is True   # each statement its own transaction
        with sessionmaker_for(engine)() as session:
            session.execute(text("SELECT 1"))
            time.sleep(0.01)
            assert session.scalar(text(same)) is False   # a transaction since the first
    finally:
        engine.dispose()


def test_a_get_runs_in_autocommit_and_a_post_in_a_transaction(pg_url):
    """Through a real HTTP server on loopback (uvicorn in a thread of this process, so that
    the engine's statements can be watched): a GET's queries run in autocommit, a POST's in
    a transaction."""
    import asyncio
    import threading

    import httpx
    import uvicorn
    from sqlalchemy import event

    from roar.glaas.app import create_app
    from roar.glaas.db import open_engine
    from roar.glaas.serve import bind

    engine = open_engine(pg_url)
    seen: list[tuple[str, bool]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _watch(conn, _cursor, statement, _params, _context, _many):
        seen.append((statement.split()[0].upper(), conn.connection.dbapi_connection.autocommit))

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(engine), log_level="warning"))
    server.install_signal_handlers = lambda: None
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/api/v1"
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        with httpx.Client(base_url=url, timeout=30) as client:
            seen.clear()
            assert client.get("/health").status_code == 200
            assert seen and all(auto for _, auto in seen), seen
            seen.clear()
            assert client.post("/registration-sessions", json={"mode": "anonymous_public"}).status_code == 201
            assert any(verb == "INSERT" for verb, _ in seen) and not any(auto for _, auto in seen), seen
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()
