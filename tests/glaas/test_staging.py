"""Staging edges is one multi-row upsert a request: the same artifact sent twice for one job,
in one request or in two, is one edge with its last copy, on SQLite and PostgreSQL (where
one upsert may not meet the same row twice)."""

from __future__ import annotations

from tests.glaas.test_server import finalize, lineage, stage


def test_an_edge_sent_twice_is_one_edge_with_its_last_copy(server):
    jobs, edges, (a, b, c) = lineage()
    rid, _, auth = stage(server, jobs, edges, (a, b, c))
    uid = jobs[1]["job_uid"]
    body = {"artifacts": [{"hash": b, "path": "/w/first.txt"}, {"hash": a, "path": "/w/extra.txt"},
                          {"hash": b, "path": "/w/second.txt"}]}
    status, out = server.call("POST", f"/registration-sessions/{rid}/jobs/{uid}/inputs", body, **auth)
    assert status == 201 and out["inputs_linked"] == 3, out
    status, out = server.call("POST", f"/registration-sessions/{rid}/jobs/{uid}/inputs",
                              {"artifacts": [{"hash": a, "path": "/w/extra-again.txt"}]}, **auth)
    assert status == 201, out
    status, receipt = finalize(server, rid, auth, expected={"jobs": 2, "inputs": 3, "outputs": 2})
    assert status == 200, receipt
    status, lin = server.call("GET", f"/artifacts/{c}/lineage")
    assert status == 200
    # in the order first sent, each with the path it was sent with last
    assert lin["inputs"] == [{"hash": b, "path": "/w/second.txt"}, {"hash": a, "path": "/w/extra-again.txt"}]
