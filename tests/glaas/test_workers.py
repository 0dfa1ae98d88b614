"""`roar glaas serve --workers 2`: two worker processes share the one listening socket and the
database, on SQLite and PostgreSQL. Both answer (each /health names its worker's pid, a
child of the server); a DAG registered through them is looked up through each; SIGTERM to
the server stops every worker."""

from __future__ import annotations

import http.client
import json
import os
import signal
import time
from pathlib import Path
from urllib.parse import urlsplit

from tests.glaas.conftest import Server
from tests.glaas.test_server import finalize, lineage, stage


def _children(pid: int) -> set[int]:
    try:
        return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


def _alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()   # a zombie has exited
    except OSError:
        return False


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[int, dict]:
    conn.request("GET", "/api/v1" + path)
    reply = conn.getresponse()
    doc = json.loads(reply.read())
    return reply.status, doc.get("data", doc) if doc.get("success") is True else doc


def _one_connection_per_worker(srv: Server) -> dict[int, http.client.HTTPConnection]:
    """Kept-alive connections, opened until each of the workers holds one: worker pid -> it."""
    where = urlsplit(srv.url)
    conns: dict[int, http.client.HTTPConnection] = {}
    deadline = time.monotonic() + 60
    while len(conns) < 2 and time.monotonic() < deadline:
        conn = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
        status, health = _get(conn, "/health")
        assert status == 200
        if health["worker"] in conns:
            conn.close()
        else:
            conns[health["worker"]] = conn
    return conns


def test_two_workers_share_the_socket_and_the_database_and_stop_together(db_url):
    srv = Server(db_url, "--workers", "2")
    try:
        conns = _one_connection_per_worker(srv)
        assert len(conns) == 2, conns
        workers = set(conns)
        assert srv.proc.pid not in workers and workers <= _children(srv.proc.pid)
        # a registration (its requests on fresh connections, spread over the workers)
        jobs, edges, (a, b, c) = lineage()
        rid, _, auth = stage(srv, jobs, edges, (a, b, c))
        status, receipt = finalize(srv, rid, auth, expected={"jobs": 2, "inputs": 2, "outputs": 2})
        assert status == 200 and receipt["created"] is True, receipt
        # looked up through each worker, on the connection it holds
        for pid, conn in conns.items():
            status, lin = _get(conn, f"/artifacts/{c}/lineage?depth=2")
            assert status == 200 and lin["producedBy"]["jobUid"] == jobs[1]["job_uid"], (pid, lin)
            assert [u["jobUid"] for u in lin["upstream"]] == [jobs[0]["job_uid"]]
            assert _get(conn, "/health")[1]["worker"] == pid   # the same worker answered
            status, art = _get(conn, f"/artifacts/{a}")
            assert status == 200 and art["originalSessionHash"] == receipt["hash"]
            conn.close()
    finally:
        srv.stop()
    assert srv.proc.returncode == 0, "".join(srv.log)
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p for p in workers if _alive(p)] == []


def test_workers_end_when_the_server_is_killed(db_url):
    """SIGKILL gives the supervisor no chance to stop its workers: they must end by
    themselves, or they answer on the port for ever and no new server can bind it."""
    srv = Server(db_url, "--workers", "2")
    workers: set[int] = set()
    try:
        workers = set(_one_connection_per_worker(srv))
        assert len(workers) == 2
        os.kill(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [p for p in workers if _alive(p)] == [], "workers outlived their server"
    finally:
        for pid in workers:     # survivors hold the server's output open: end them first
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        srv.stop()
