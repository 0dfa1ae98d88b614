"""GET /jobs/{job_uid} (beside the protocol) and `roar show JOBUID --remote`, against a real
server on SQLite and PostgreSQL: the owner sees the job (command, edges, the job that reads
its output, labels, scope); another token and an anonymous caller get the same 404 as for a
uid never registered, and nothing of the job."""

from __future__ import annotations

import json
import secrets

from tests.glaas.test_register import client_env, roar
from tests.glaas.test_server import finalize, lineage, stage


def _private_dag(server, token: str):
    jobs, edges, arts = lineage()
    jobs[0]["command"] = "sort secret-input.txt > mid.txt"
    rid, _, auth = stage(server, jobs, edges, arts, token=token)
    status, receipt = finalize(server, rid, auth, git_repo="https://example.org/private-repo.git",
                               scope_request={"visibility": "private"})
    assert status == 200, receipt
    label = {"entity_type": "job", "session_hash": receipt["hash"], "job_uid": jobs[0]["job_uid"],
             "metadata": {"stage": "prep"}}
    status, out = server.call("POST", f"/registration-sessions/{rid}/labels/batch", {"labels": [label]},
                              token=token)
    assert status == 200, out
    return jobs, arts, receipt["hash"]


def test_a_job_by_uid_follows_its_dags_scope(server, make_token):
    alice, bob = make_token("alice"), make_token("bob")
    jobs, (a, b, c), digest = _private_dag(server, alice)
    uid = jobs[0]["job_uid"]
    status, job = server.call("GET", f"/jobs/{uid}", token=alice)
    assert status == 200, job
    assert (job["jobUid"], job["command"], job["stepNumber"], job["sessionHash"]) == \
        (uid, "sort secret-input.txt > mid.txt", 1, digest)
    assert job["inputs"] == [{"hash": a, "path": "/w/in.txt"}]
    assert job["outputs"] == [{"hash": b, "path": "/w/mid.txt"}]
    assert job["children"] == [jobs[1]["job_uid"]]
    assert job["metadata"] == {"roar_version": "0.4.7"} and job["gitRepo"] == "https://example.org/private-repo.git"
    assert job["scope"] == {"owner_name": "alice", "project_name": None, "visibility": "private"}
    assert job["labels"] == [{"version": 1, "metadata": {"stage": "prep"}}]
    never = secrets.token_hex(16)
    status, missing = server.call("GET", f"/jobs/{never}", token=alice)
    assert status == 404
    for who in ({"token": bob}, {}):
        status, hidden = server.call("GET", f"/jobs/{uid}", **who)
        assert status == 404, hidden
        # the same refusal as a uid never registered, and nothing of the job
        assert hidden["detail"] == missing["detail"].replace(never, uid)
        assert "secret-input" not in json.dumps(hidden) and digest not in json.dumps(hidden)
    assert server.call("GET", "/jobs/not%20a%20uid", token=alice)[0] == 422


def test_roar_show_a_job_uid_remote(server, make_token, tmp_path):
    alice, bob = make_token("alice"), make_token("bob")
    jobs, (a, b, c), digest = _private_dag(server, alice)
    uid = jobs[0]["job_uid"]
    done = roar(tmp_path, "show", uid, "--remote", env=client_env(tmp_path, server.url, alice))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"job {uid}  (registered on {server.url}, private)"
    assert lines[1] == "  @1    sort secret-input.txt > mid.txt"
    assert f"  session: {digest}" in lines and f"    /w/mid.txt  {b[:12]}" in lines
    assert f"  read by: {jobs[1]['job_uid']}" in lines and "  label: stage=prep" in lines
    doc = json.loads(roar(tmp_path, "show", uid, "--remote", "--json",
                          env=client_env(tmp_path, server.url, alice)).stdout)
    assert doc["kind"] == "job" and doc["server"] == server.url and doc["jobUid"] == uid
    # not in a workspace: a hex uid is looked up on the server without --remote too
    plain = roar(tmp_path, "show", uid, env=client_env(tmp_path, server.url, alice))
    assert plain.returncode == 0 and plain.stdout == done.stdout
    for token in (bob, None):
        shown = roar(tmp_path, "show", uid, "--remote", env=client_env(tmp_path, server.url, token))
        assert shown.returncode == 3 and shown.stdout == ""
        assert shown.stderr.count("\n") == 1 and f"no artifact or job {uid} is registered" in shown.stderr
        assert "secret-input" not in shown.stderr and "Traceback" not in shown.stderr


def test_roar_show_remote_escapes_what_the_registrant_wrote(server, make_token, tmp_path):
    """Every field of a registered job is its registrant's: a newline or an escape sequence
    in one must not fake a line or drive the viewer's terminal."""
    mallory, victim = make_token("mallory"), make_token("victim")
    jobs, edges, arts = lineage()
    jobs[0]["git_commit"] = "deadbeef\n  label: reviewed=approved"
    jobs[0]["command"] = "rm -rf /\x1b[2K\rharmless"
    rid, _, auth = stage(server, jobs, edges, arts, token=mallory)
    status, receipt = finalize(server, rid, auth, scope_request={"visibility": "public"})
    assert status == 200, receipt
    done = roar(tmp_path, "show", jobs[0]["job_uid"], "--remote", env=client_env(tmp_path, server.url, victim))
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\r" not in done.stdout
    assert not any(line.lstrip().startswith("label: reviewed") for line in done.stdout.splitlines())
    assert "deadbeef\\n  label: reviewed=approved" in done.stdout and "\\x1b[2K\\rharmless" in done.stdout
