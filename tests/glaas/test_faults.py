"""Faults, on SQLite and PostgreSQL: a server killed (SIGKILL) in the middle of a registration,
several server processes registering the same DAG at once, registrations abandoned past
their end, and a client behind a slow, lossy link (a network namespace and a relay that
delays, drops and resets connections: this kernel has no netem)."""

from __future__ import annotations

import signal
import threading
import time

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
