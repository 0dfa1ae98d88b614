"""Faults, on SQLite and PostgreSQL: a server killed (SIGKILL) in the middle of a registration,
several server processes registering the same DAG at once, registrations abandoned past
their end, and a client behind a slow, lossy link (a network namespace and a relay that
delays, drops and resets connections: this kernel has no netem)."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.glaas.conftest import Server
from tests.glaas.test_server import finalize, lineage, stage


def _counts(db_url: str) -> dict[str, int]:
    from sqlalchemy import create_engine, func, select

    from roar.glaas.db import normalize_url
    from roar.glaas.models import Dag, DagArtifact, Job, JobIO, RegistrationSession, Staged

    engine = create_engine(normalize_url(db_url))
    try:
        with engine.connect() as conn:
            return {m.__tablename__: conn.scalar(select(func.count()).select_from(m))
                    for m in (Dag, Job, JobIO, DagArtifact, RegistrationSession, Staged)}
    finally:
        engine.dispose()


def register_as_a_client(srv: Server, jobs, edges, arts, retry=None):
    """The whole registration as roar-cli does it: (status, receipt). When jobs/batch says the
    jobs are already in a DAG, that DAG is the answer (re-registration). `retry(call)` wraps
    each request (the lossy-link test retries them)."""
    call = retry or (lambda method, path, body=None, **kw: srv.call(method, path, body, **kw))
    status, rs = call("POST", "/registration-sessions", {"mode": "anonymous_public"})
    assert status == 201, rs
    rid, auth = rs["registration_session_id"], {"rs": rs["registration_session_token"]}
    status, out = call("POST", f"/registration-sessions/{rid}/jobs/batch", {"jobs": jobs}, **auth)
    assert status == 201, out
    if out["already_registered_session_hashes"]:
        return 200, {"hash": out["already_registered_session_hashes"][0], "created": False}
    body = {"artifacts": [{"hashes": [{"algorithm": "blake3", "digest": d}], "size": 10 + i}
                          for i, d in enumerate(arts)]}
    assert call("POST", f"/registration-sessions/{rid}/artifacts/batch", body, **auth)[0] == 201
    for uid, (ins, outs) in edges.items():
        for kind, items in (("inputs", ins), ("outputs", outs)):
            body = {"artifacts": [{"hash": h, "path": p} for h, p in items]}
            assert call("POST", f"/registration-sessions/{rid}/jobs/{uid}/{kind}", body, **auth)[0] == 201
    body = {"git_repo": "", "git_commit": "cd" * 20, "git_branch": "main"}
    return call("POST", f"/registration-sessions/{rid}/finalize", body, **auth)


def _kill(server: Server) -> None:
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=30)
    server._reader.join(timeout=10)
    server.proc.stderr.close()


def test_a_server_killed_mid_registration_shows_nothing_and_the_registration_resumes(db_url):
    jobs, edges, arts = lineage()
    first = Server(db_url)
    try:
        status, rs = first.call("POST", "/registration-sessions", {"mode": "anonymous_public"})
        rid, rst = rs["registration_session_id"], rs["registration_session_token"]
        status, _ = first.call("POST", f"/registration-sessions/{rid}/jobs/batch", {"jobs": jobs}, rs=rst)
        assert status == 201
        uid = jobs[0]["job_uid"]
        body = {"artifacts": [{"hash": h, "path": p} for h, p in edges[uid][0]]}
        assert first.call("POST", f"/registration-sessions/{rid}/jobs/{uid}/inputs", body, rs=rst)[0] == 201
    finally:
        _kill(first)   # no shutdown, no cleanup: as a crash or an OOM kill leaves it
    assert _counts(db_url)["dags"] == 0

    second = Server(db_url)
    try:
        for digest in arts:
            assert second.call("GET", f"/artifacts/{digest}")[0] == 404
        # the client resumes: the same session, the same token; what was sent before is kept
        auth = {"rs": rst}
        status, out = second.call("POST", f"/registration-sessions/{rid}/jobs/batch", {"jobs": jobs}, **auth)
        assert status == 201 and out["created_count"] == 0 and out["existing_count"] == 2
        for job_uid, (ins, outs) in edges.items():
            for kind, items in (("inputs", ins), ("outputs", outs)):
                body = {"artifacts": [{"hash": h, "path": p} for h, p in items]}
                path = f"/registration-sessions/{rid}/jobs/{job_uid}/{kind}"
                status, _ = second.call("POST", path, body, **auth)
                assert status == 201
        status, receipt = finalize(second, rid, auth, expected={"jobs": 2, "inputs": 2, "outputs": 2})
        assert status == 200, receipt
        lin = second.call("GET", f"/artifacts/{arts[2]}/lineage")[1]
        assert lin["producedBy"]["sessionHash"] == receipt["hash"]
    finally:
        second.stop()
    counts = _counts(db_url)
    assert (counts["dags"], counts["jobs"], counts["job_io"], counts["staged"]) == (1, 2, 4, 0)


def test_a_server_killed_during_finalize_leaves_all_or_nothing(db_url):
    """Kill the server while it finalizes 400 jobs: the DAG is whole or absent, never some of its
    jobs (one transaction); finalizing again on a new server completes it."""
    jobs, _, _ = lineage()
    big_jobs = [dict(jobs[0], job_uid=f"{n:032x}", step_number=n + 1, command=f"step {n}")
                for n in range(400)]
    srv = Server(db_url)
    status, rs = srv.call("POST", "/registration-sessions", {"mode": "anonymous_public"})
    rid, rst = rs["registration_session_id"], rs["registration_session_token"]
    assert srv.call("POST", f"/registration-sessions/{rid}/jobs/batch", {"jobs": big_jobs}, rs=rst)[0] == 201
    killer = threading.Timer(0.05, lambda: srv.proc.send_signal(signal.SIGKILL))
    killer.start()
    try:
        srv.call("POST", f"/registration-sessions/{rid}/finalize", {"git_commit": "ab" * 20}, rs=rst)
    except OSError:
        pass   # the connection died with the server
    killer.join()
    srv.proc.wait(timeout=30)
    srv._reader.join(timeout=10)
    srv.proc.stderr.close()
    counts = _counts(db_url)
    assert (counts["dags"], counts["jobs"]) in ((0, 0), (1, 400)), counts
    srv = Server(db_url)
    try:
        body = {"git_commit": "ab" * 20}
        status, receipt = srv.call("POST", f"/registration-sessions/{rid}/finalize", body, rs=rst)
        assert status == 200, receipt
    finally:
        srv.stop()
    counts = _counts(db_url)
    assert (counts["dags"], counts["jobs"], counts["staged"]) == (1, 400, 0)


def test_several_servers_registering_the_same_dag_at_once_make_one_dag(db_url):
    servers = [Server(db_url) for _ in range(3)]
    try:
        jobs, edges, arts = lineage()
        go = threading.Barrier(len(servers))
        results: list = [None] * len(servers)

        def register(i: int, srv: Server) -> None:
            go.wait()
            results[i] = register_as_a_client(srv, jobs, edges, arts)

        threads = [threading.Thread(target=register, args=(i, s)) for i, s in enumerate(servers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert [r[0] for r in results] == [200] * len(servers), results
        assert len({r[1]["hash"] for r in results}) == 1
        assert sum(r[1]["created"] for r in results) == 1
    finally:
        for srv in servers:
            srv.stop()
    counts = _counts(db_url)
    assert (counts["dags"], counts["jobs"], counts["job_io"], counts["dag_artifacts"]) == (1, 2, 4, 3)


def test_an_abandoned_registration_expires_and_is_never_made_visible(db_url):
    srv = Server(db_url, "--session-ttl", "2")
    try:
        jobs, edges, arts = lineage()
        rid, _, auth = stage(srv, jobs, edges, arts)
        kept = lineage()
        kept_rid, _, kept_auth = stage(srv, *kept)
        assert _counts(db_url)["staged"] > 0
        time.sleep(2.5)
        # past its end: finalize is refused, the session and its staging are gone
        status, out = finalize(srv, rid, auth)
        assert status == 404 and "expired" in out["detail"], out
        assert srv.call("GET", f"/artifacts/{arts[2]}")[0] == 404
        # a new registration sweeps the other abandoned one too
        fresh = lineage()
        fresh_rid, _, fresh_auth = stage(srv, *fresh)
        counts = _counts(db_url)
        assert counts["registration_sessions"] == 1 and counts["dags"] == 0
        assert finalize(srv, kept_rid, kept_auth)[0] == 404
        assert finalize(srv, fresh_rid, fresh_auth)[0] == 200   # the live one is untouched
    finally:
        srv.stop()
    counts = _counts(db_url)
    assert (counts["dags"], counts["staged"]) == (1, 0)


# -- a slow, lossy link: a network namespace and a relay -----------------------------------
#
# The kernel here has no netem qdisc (CONFIG_NET_SCH_NETEM is off), so the impairment is made
# in user space. The server runs inside a network namespace this test makes (its own
# loopback only: nothing can reach it from outside). A relay process, also inside the
# namespace, holds a listening socket made on the host's loopback and handed to it, and
# forwards each connection it accepts to the server with a delay on every chunk, each
# direction; a fraction of connections it drops (closes with nothing answered), resets
# (RST) or black-holes (answers nothing until the client gives up). The client reaches the
# server only through it, and retries as a client would.

RELAY_DELAY = 0.05    # seconds added to each chunk, each way
RELAY_FAULTS = {"drop": 0.12, "reset": 0.12, "hole": 0.06}


def _fate(draw: float) -> str:
    for name, share in RELAY_FAULTS.items():
        if draw < share:
            return name
        draw -= share
    return "forwarded"


def relay_main(argv: list[str]) -> None:
    """python -m tests.glaas.test_faults relay FD HOST PORT SEED STATS: the relay's process."""
    import random
    import socket
    import struct

    fd, host, port, seed, stats_path = int(argv[0]), argv[1], int(argv[2]), int(argv[3]), argv[4]
    listener = socket.socket(fileno=fd)
    rng, lock = random.Random(seed), threading.Lock()
    stats = {"connections": 0, "drop": 0, "reset": 0, "hole": 0, "forwarded": 0}

    def pump(src, dst):
        try:
            while chunk := src.recv(65536):
                time.sleep(RELAY_DELAY)
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve(conn, fate):
        if fate == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
        elif fate == "drop":
            conn.recv(65536)
            conn.close()
        elif fate == "hole":
            time.sleep(30)
            conn.close()
        else:
            up = socket.create_connection((host, port))
            threading.Thread(target=pump, args=(up, conn), daemon=True).start()
            pump(conn, up)

    while True:
        conn, _ = listener.accept()
        fate = _fate(rng.random())
        with lock:
            stats["connections"] += 1
            stats[fate] += 1
            Path(stats_path).write_text(json.dumps(stats))
        threading.Thread(target=serve, args=(conn, fate), daemon=True).start()


class LossyLink:
    """A network namespace holding the server and the relay; `url` is the relay, on loopback."""

    def __init__(self, db_url: str, tmp: Path) -> None:
        import socket

        from pyroute2 import NetNS, netns

        self.name = "roar-t-" + secrets.token_hex(4)
        netns.create(self.name)
        with NetNS(self.name) as ns:
            ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
        self.server = Server(db_url, netns=self.name)
        port = int(self.server.url.rsplit(":", 1)[1])
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.stats = tmp / "relay-stats.json"
        self.relay = subprocess.Popen(
            ["ip", "netns", "exec", self.name, sys.executable, "-m", "tests.glaas.test_faults", "relay",
             str(self.listener.fileno()), "127.0.0.1", str(port), "7", str(self.stats)],
            pass_fds=[self.listener.fileno()], cwd=Path(__file__).parents[2])

    def counts(self) -> dict:
        return json.loads(self.stats.read_text()) if self.stats.exists() else {}

    def close(self) -> None:
        from pyroute2 import netns

        self.relay.kill()
        self.relay.wait()
        self.listener.close()
        self.server.stop()
        netns.remove(self.name)


def retrying(url: str, attempts: int = 12, timeout: float = 3.0):
    """A client's call: retried with backoff on connection errors, timeouts and 5xx."""
    def call(method, path, body=None, rs=None, token=None):
        data = json.dumps(body).encode() if body is not None else None
        delay = 0.1
        for attempt in range(attempts):
            request = urllib.request.Request(url + "/api/v1" + path, data=data, method=method)
            if data is not None:
                request.add_header("Content-Type", "application/json")
            if rs:
                request.add_header("Authorization", f"RegistrationSession {rs}")
            try:
                with urllib.request.urlopen(request, timeout=timeout) as reply:
                    doc = json.loads(reply.read() or b"null")
                    return reply.status, doc["data"] if isinstance(doc, dict) and "data" in doc else doc
            except urllib.error.HTTPError as err:
                if err.code < 500:
                    return err.code, json.loads(err.read() or b"null")
            except (OSError, http.client.HTTPException):
                pass   # refused, reset, closed early, timed out: try again
            if attempt < attempts - 1:
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        raise AssertionError(f"{method} {path}: no answer after {attempts} attempts")
    return call


def chain(n: int):
    """n jobs, job i reading artifact i and writing artifact i+1 (the shapes of lineage())."""
    arts = [secrets.token_hex(32) for _ in range(n + 1)]
    jobs = [{"command": f"step {i}", "job_uid": secrets.token_hex(16), "job_type": "run",
             "step_number": i + 1, "metadata": "{}"} for i in range(n)]
    edges = {j["job_uid"]: ([(arts[i], f"/w/{i}")], [(arts[i + 1], f"/w/{i + 1}")])
             for i, j in enumerate(jobs)}
    return jobs, edges, arts


def test_registration_completes_over_a_slow_lossy_link(db_url, tmp_path):
    if shutil.which("ip") is None or os.geteuid() != 0:
        pytest.skip("needs root and iproute2 to make a network namespace")
    link = LossyLink(db_url, tmp_path)
    try:
        jobs, edges, arts = chain(12)
        t0 = time.monotonic()
        status, receipt = register_as_a_client(None, jobs, edges, arts, retry=retrying(link.url))
        elapsed = time.monotonic() - t0
        assert status == 200, receipt
        assert elapsed < 120, f"registration took {elapsed:.0f} s"
        # what was registered is whole, and looked up through the same link
        status, dag = retrying(link.url)("GET", f"/artifacts/{arts[-1]}/dag")
        assert status == 200 and len(dag["jobs"]) == 12
        counts = link.counts()
        assert counts["forwarded"] > 0 and counts["drop"] + counts["reset"] + counts["hole"] > 0, counts
    finally:
        link.close()
    assert _counts(db_url)["dags"] == 1


if __name__ == "__main__" and sys.argv[1:2] == ["relay"]:
    relay_main(sys.argv[2:])
