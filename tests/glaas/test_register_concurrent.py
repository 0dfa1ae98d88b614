"""roar.remote.register sends the per-job edge requests several at a time: against a real
server (SQLite and PostgreSQL) behind a loopback proxy that loses replies, refuses and
breaks requests, the registration stays exact (each edge staged once, the counts finalize
checks match), and one interrupted midway is completed by the next run."""

from __future__ import annotations

import secrets
import threading

import pytest

from roar.remote.errors import ServerUnavailable
from tests.glaas.test_register import Proxy, counts

JOBS = 40


def _plan(n: int = JOBS):
    """The plan of an n-job chain: job i reads artifact i and writes artifact i+1."""
    from roar.remote.payload import Plan

    arts = [secrets.token_hex(32) for _ in range(n + 1)]
    jobs = [{"command": f"step {i}", "timestamp": 1.0 + i, "job_uid": secrets.token_hex(16),
             "git_commit": None, "git_branch": None, "duration_seconds": 1.0, "exit_code": 0,
             "job_type": "run",
             "step_number": i + 1, "metadata": "{}"} for i in range(n)]
    ins = {j["job_uid"]: [{"hash": arts[i], "path": f"d/{i}"}] for i, j in enumerate(jobs)}
    outs = {j["job_uid"]: [{"hash": arts[i + 1], "path": f"d/{i + 1}"}] for i, j in enumerate(jobs)}
    return Plan("session", "s", None, "/w", [j["job_uid"] for j in jobs], jobs,
                [{"hashes": [{"algorithm": "blake3", "digest": d}], "size": 10} for d in arts], [], ins, outs,
                {"repo": None, "commit": None, "branch": None}, "anonymous", secrets.token_hex(32)), arts


def _register(url: str, plan):
    from roar.remote.http import Client
    from roar.remote.register import register

    with Client(url) as client:
        return register(client, plan, "anonymous")


@pytest.fixture
def proxy(server):
    p = Proxy(server.url)
    yield p
    p.close()


def _edge(path: str) -> bool:
    return path.endswith(("/inputs", "/outputs"))


def test_edges_go_several_at_a_time_and_lost_replies_are_resent_harmlessly(server, proxy, db_url,
                                                                           monkeypatch):
    monkeypatch.setenv("ROAR_GLAAS_RETRIES", "4")
    lost, lock = set(), threading.Lock()

    def rule(method, path, n):
        # every 7th edge request is done by the server and its reply lost: the client resends it
        if _edge(path) and n % 7 == 0:
            with lock:
                if path not in lost:
                    lost.add(path)
                    return "lose"
        return None

    proxy.rule = rule
    plan, arts = _plan()
    done = _register(proxy.url, plan)
    assert done.created and done.jobs == JOBS
    assert lost, "no reply was lost: the test did not test"
    assert proxy.most_in_flight > 1   # the edge requests overlapped
    edge_requests = [p for _, p in proxy.seen if _edge(p)]
    assert len(edge_requests) == 2 * JOBS + len(lost)   # each lost one sent again, once
    # each edge once: the finalize checked the staged counts against the plan's, and the DAG holds them
    held = counts(db_url)
    assert held["dags"] == 1 and held["jobs"] == JOBS and held["job_io"] == 2 * JOBS
    status, lineage = server.call("GET", f"/artifacts/{arts[-1]}/lineage?depth=3")
    assert status == 200 and [u["command"] for u in lineage["upstream"]] == [f"step {JOBS - 2}",
                                                                             f"step {JOBS - 3}"]


def test_a_registration_failing_midway_through_the_edges_is_completed_by_the_next_run(server, proxy, db_url,
                                                                                      monkeypatch):
    monkeypatch.setenv("ROAR_GLAAS_RETRIES", "2")
    edges_seen = [0]
    lock = threading.Lock()

    def failing(method, path, n):
        if not _edge(path):
            return None
        with lock:
            edges_seen[0] += 1
            k = edges_seen[0]
        if k > JOBS // 2:   # half the edge requests go through, then the server "fails" for good
            return 503
        return None

    proxy.rule = failing
    plan, arts = _plan()
    with pytest.raises(ServerUnavailable):
        _register(proxy.url, plan)
    from roar.remote.register import EDGE_REQUESTS

    # the first that failed for good stopped the rest: those queued were not sent at all (2
    # attempts each for the ones under way, and for those a worker took before the cancel)
    assert edges_seen[0] <= JOBS // 2 + 4 * EDGE_REQUESTS < 2 * JOBS
    held = counts(db_url)
    assert held["staged"] > 0 and held["dags"] == 0   # stopped midway: nothing is visible
    assert server.call("GET", f"/artifacts/{arts[-1]}/lineage")[0] == 404
    # the next run of the same plan: a new registration session, everything sent again
    proxy.rule = lambda method, path, n: None
    done = _register(proxy.url, plan)
    assert done.created
    held = counts(db_url)
    assert held["dags"] == 1 and held["jobs"] == JOBS and held["job_io"] == 2 * JOBS
    # and once more: already registered, the same DAG, nothing added
    again = _register(proxy.url, plan)
    assert not again.created and again.session_hash == done.session_hash
    assert counts(db_url)["job_io"] == 2 * JOBS
