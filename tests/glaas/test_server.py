"""The GLaaS server over real HTTP on loopback, on SQLite and on PostgreSQL: registration
(staged, then visible at finalize), scopes, concurrent finalize, bad input."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading

from tests.glaas.conftest import Server, roar_cmd


def digest() -> str:
    return secrets.token_hex(32)


def lineage():
    """Two jobs: step 1 reads a and writes b, step 2 reads b and writes c."""
    a, b, c = digest(), digest(), digest()
    jobs = [
        {"command": "sort in.txt > mid.txt", "timestamp": 1.5, "job_uid": secrets.token_hex(16),
         "git_commit": "ab" * 20, "git_branch": "main", "duration_seconds": 0.25, "exit_code": 0,
         "job_type": "run", "step_number": 1, "metadata": json.dumps({"roar_version": "0.4.7"})},
        {"command": "wc -l mid.txt > out.txt", "timestamp": 2.5, "job_uid": secrets.token_hex(16),
         "git_commit": "ab" * 20, "git_branch": "main", "duration_seconds": 0.5, "exit_code": 0,
         "job_type": "run", "step_number": 2, "metadata": "{}"},
    ]
    edges = {jobs[0]["job_uid"]: ([(a, "/w/in.txt")], [(b, "/w/mid.txt")]),
             jobs[1]["job_uid"]: ([(b, "/w/mid.txt")], [(c, "/w/out.txt")])}
    return jobs, edges, (a, b, c)


def stage(srv: Server, jobs, edges, arts, token=None):
    """Open a registration session and send everything but finalize: (rs id, rs token)."""
    status, rs = srv.call("POST", "/registration-sessions", None if token else {"mode": "anonymous_public"},
                          token=token)
    assert status == 201, rs
    rid, rst = rs["registration_session_id"], rs.get("registration_session_token")
    auth = {"token": token} if token else {"rs": rst}
    status, out = srv.call("POST", f"/registration-sessions/{rid}/jobs/batch", {"jobs": jobs}, **auth)
    assert status == 201 and out["created_count"] == len(jobs), out
    body = {"artifacts": [{"hashes": [{"algorithm": "blake3", "digest": d}], "size": 10 + i,
                           "source_type": None}
                          for i, d in enumerate(arts)]}
    assert srv.call("POST", f"/registration-sessions/{rid}/artifacts/batch", body, **auth)[0] == 201
    for uid, (ins, outs) in edges.items():
        for kind, items in (("inputs", ins), ("outputs", outs)):
            body = {"artifacts": [{"hash": h, "path": p} for h, p in items]}
            status, out = srv.call("POST", f"/registration-sessions/{rid}/jobs/{uid}/{kind}", body, **auth)
            assert status == 201, out
    return rid, rst, auth


def finalize(srv, rid, auth, **extra):
    body = {"git_repo": "", "git_commit": "cd" * 20, "git_branch": "main", **extra}
    return srv.call("POST", f"/registration-sessions/{rid}/finalize", body, **auth)


def test_health_is_unwrapped_and_openapi_is_published(server):
    status, health = server.call("GET", "/health")
    assert status == 200
    assert health["features"]["registration_sessions"] == {"anonymous_public": True,
                                                          "finalize_server_authoritative_hash": True}
    assert "success" not in health
    status, spec = server.call("GET", "/openapi.json")
    assert status == 200
    assert "/api/v1/registration-sessions/{rs_id}/finalize" in spec["paths"]
    assert "/api/v1/artifacts/{prefix}/dag" in spec["paths"]
    # no interactive docs page: FastAPI's loads Swagger UI from a CDN (docs/web.md)
    assert server.call("GET", "/docs")[0] == 404


def test_anonymous_registration_is_visible_only_at_finalize(server):
    jobs, edges, (a, b, c) = lineage()
    rid, _, auth = stage(server, jobs, edges, (a, b, c))
    # staged, not finalized: nothing of it can be looked up
    assert server.call("GET", f"/artifacts/{c}")[0] == 404
    status, receipt = finalize(server, rid, auth, expected={"jobs": 2, "inputs": 2, "outputs": 2})
    assert status == 200, receipt
    h = receipt["published_session_hash"]
    # the hash the server computed is the canonical form, written out here by hand
    canonical = {"canonical_version": 1, "creator_identity": "anonymous",
                 "git": {"branch": "main", "commit": "cd" * 20, "repo": None},
                 "jobs": [{"command": j["command"], "inputs": [{"hash": edges[j["job_uid"]][0][0][0],
                                                                "path": edges[j["job_uid"]][0][0][1]}],
                           "job_type": "run", "metadata": json.loads(j["metadata"]),
                           "outputs": [{"hash": edges[j["job_uid"]][1][0][0],
                                        "path": edges[j["job_uid"]][1][0][1]}],
                           "parent_step_number": None, "step_number": j["step_number"]} for j in jobs]}
    compact = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    assert h == hashlib.sha256(compact.encode()).hexdigest()

    status, art = server.call("GET", f"/artifacts/{c[:16]}")
    assert status == 200 and art["hash"] == c and art["size"] == 12 and art["originalSessionHash"] == h
    assert art["scope"]["visibility"] == "public"
    status, lin = server.call("GET", f"/artifacts/{c}/lineage?depth=2")
    assert lin["producedBy"] == {"jobUid": jobs[1]["job_uid"], "command": jobs[1]["command"],
                                 "sessionHash": h,
                                 "stepNumber": 2, "jobType": "run"}
    assert [u["jobUid"] for u in lin["upstream"]] == [jobs[0]["job_uid"]]
    status, dag = server.call("GET", f"/artifacts/{c}/dag")
    assert status == 200 and [j["command"] for j in dag["jobs"]] == [j["command"] for j in jobs]
    assert dag["jobs"][0]["children"] == [jobs[1]["job_uid"]]
    status, rep = server.call("GET", f"/public/sessions/{h}/reproduction")
    assert status == 200 and rep["sessionHash"] == h and len(rep["jobs"]) == 2
    # finalize again: the same receipt; the session is closed to more writes
    assert finalize(server, rid, auth)[1]["hash"] == h
    assert server.call("POST", f"/registration-sessions/{rid}/jobs/batch", {"jobs": jobs}, **auth)[0] == 409


def test_wrong_expected_counts_refuse_finalize(server):
    jobs, edges, arts = lineage()
    rid, _, auth = stage(server, jobs, edges, arts)
    status, out = finalize(server, rid, auth, expected={"jobs": 2, "inputs": 3, "outputs": 2})
    assert status == 400 and "inputs: expected 3, staged 2" in out["detail"]
    assert server.call("GET", f"/artifacts/{arts[2]}")[0] == 404


def test_reregistering_the_same_jobs_names_the_existing_dag(server):
    jobs, edges, arts = lineage()
    rid, _, auth = stage(server, jobs, edges, arts)
    h = finalize(server, rid, auth)[1]["hash"]
    status, rs = server.call("POST", "/registration-sessions", {"mode": "anonymous_public"})
    status, out = server.call("POST", f"/registration-sessions/{rs['registration_session_id']}/jobs/batch",
                              {"jobs": jobs}, rs=rs["registration_session_token"])
    assert out["already_registered_session_hashes"] == [h]
    assert out["created_count"] == 0 and out["errors"] == [None, None]


def test_a_private_dag_shows_others_only_that_the_hash_exists(server, make_token):
    alice, bob = make_token("alice"), make_token("bob")
    jobs, edges, (a, b, c) = lineage()
    rid, _, auth = stage(server, jobs, edges, (a, b, c), token=alice)
    status, receipt = finalize(server, rid, auth, scope_request={
        "owner_resolution": "current_user", "owner_type": "user", "visibility": "private"})
    assert status == 200, receipt
    h = receipt["hash"]
    label = {"entity_type": "job", "session_hash": h, "job_uid": jobs[1]["job_uid"], "metadata": {"k": "v"}}
    status, _ = server.call("POST", f"/registration-sessions/{rid}/labels/batch", {"labels": [label]}, **auth)
    assert status == 200

    # the owner sees everything
    art = server.call("GET", f"/artifacts/{c}", token=alice)[1]
    assert art["originalSessionHash"] == h and art["size"] == 12 and art["scope"]["owner_name"] == "alice"
    assert server.call("GET", f"/artifacts/{c}/dag", token=alice)[0] == 200
    query = f"entity_type=job&session_hash={h}&job_uid={jobs[1]['job_uid']}"
    assert server.call("GET", f"/labels/current?{query}", token=alice)[1]["metadata"] == {"k": "v"}

    for who in ({"token": bob}, {}):
        for path in (f"/artifacts/{c}", f"/public/artifacts/{c}"):
            status, art = server.call("GET", path, **who)
            assert status == 200 and art["hash"] == c   # it exists ...
            assert (art["size"], art["metadata"], art["scope"], art["originalSessionHash"], art["labels"]) \
                == (None, None, None, None, [])   # ... and that is all
        assert server.call("GET", f"/artifacts/{c}/lineage", **who)[1]["producedBy"] is None
        for path in (f"/artifacts/{c}/dag", f"/public/sessions/{h}/reproduction", f"/sessions/{h}",
                     f"/labels/current?{query}", f"/labels/history?{query}"):
            status, out = server.call("GET", path, **who)
            assert status == 404, (path, out)
            assert h not in json.dumps(out) or path.endswith(h) or h in path
        assert server.call("GET", f"/artifacts/{c}/components", **who)[1]["components"] == []
        status, _ = server.call("POST", "/labels/sync", {"labels": [dict(label, metadata={"k": "x"})]}, **who)
        assert status == 404
    assert server.call("GET", "/sessions?limit=1", token=bob)[1]["sessions"] == []
    assert [s["hash"] for s in server.call("GET", "/sessions?limit=5", token=alice)[1]["sessions"]] == [h]


def test_a_project_dag_is_seen_by_the_project_only(server, make_token):
    alice, bob, carol = make_token("alice", "vision"), make_token("bob", "vision"), make_token("carol")
    jobs, edges, arts = lineage()
    rid, _, auth = stage(server, jobs, edges, arts, token=alice)
    scope = {"visibility": "private", "project_id": "vision"}
    h = finalize(server, rid, auth, scope_request=scope)[1]["hash"]
    assert server.call("GET", f"/sessions/{h}", token=bob)[0] == 200
    assert server.call("GET", f"/artifacts/{arts[2]}", token=bob)[1]["scope"]["project_name"] == "vision"
    assert server.call("GET", f"/sessions/{h}", token=carol)[0] == 404
    rid, _, auth = stage(server, *lineage()[:2], lineage()[2], token=carol)
    status, out = finalize(server, rid, auth, scope_request={"visibility": "private", "project_id": "vision"})
    assert status == 403 and "vision" in out["detail"]


def test_the_same_dag_finalized_at_once_by_two_servers_is_one_dag(db_url, server):
    other = Server(db_url)   # a second process on the same database: no lock in common but the database's
    try:
        jobs, edges, arts = lineage()
        staged = [stage(srv, jobs, edges, arts) for srv in (server, other)]
        results: list = [None, None]
        go = threading.Barrier(2)

        def run(i, srv):
            go.wait()
            results[i] = finalize(srv, staged[i][0], staged[i][2])

        threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate((server, other))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [r[0] for r in results] == [200, 200], results
        hashes = {r[1]["hash"] for r in results}
        assert len(hashes) == 1
        assert sorted(r[1]["created"] for r in results) == [False, True]
    finally:
        other.stop()
    from sqlalchemy import create_engine, func, select

    from roar.glaas.db import normalize_url
    from roar.glaas.models import Dag, Job, JobIO

    engine = create_engine(normalize_url(db_url))
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Dag)) == 1
        assert conn.scalar(select(func.count()).select_from(Job)) == 2
        assert conn.scalar(select(func.count()).select_from(JobIO)) == 4
    engine.dispose()


def test_bad_input_gets_a_clear_4xx_never_a_500(server, make_token):
    jobs, edges, arts = lineage()
    status, rs = server.call("POST", "/registration-sessions", {"mode": "anonymous_public"})
    rid, rst = rs["registration_session_id"], rs["registration_session_token"]
    path = f"/registration-sessions/{rid}/jobs/batch"
    status, out = server.call("POST", path, raw=b'{"jobs": [', rs=rst)
    assert status == 422 and out["detail"].startswith("invalid request: ")
    status, out = server.call("POST", path, {"jobs": [dict(jobs[0], step_number=0)]}, rs=rst)
    assert status == 422 and "jobs.0.step_number" in out["detail"]
    status, out = server.call("POST", path, {"jobs": "x" * 100}, rs=rst)
    assert status == 422
    status, out = server.call("POST", path, raw=b'{"jobs": ["' + b"x" * (17 << 20) + b'"]}', rs=rst)
    assert status == 413 and "smaller batches" in out["detail"]
    assert server.call("POST", path, {"jobs": jobs}, rs="rst_wrong")[0] == 403
    assert server.call("POST", path, {"jobs": jobs})[0] == 401
    assert server.call("POST", path, {"jobs": jobs}, token=make_token("mallory"))[0] == 401
    assert server.call("GET", "/artifacts/" + "0" * 64)[0] == 404
    status, out = server.call("GET", "/artifacts/not-hex!")
    assert status == 422 and "hex" in out["detail"]
    assert server.call("GET", "/sessions?limit=1")[0] == 401
    assert server.call("GET", "/auth/me", token="glaas_nope")[0] == 401
    status, out = server.call("GET", "/no/such/endpoint")
    assert status == 404 and out["detail"].startswith("Endpoint not found")


def test_legacy_path_registers_and_labels(server):
    jobs, edges, (a, b, c) = lineage()
    h = digest()
    status, out = server.call("POST", "/sessions", {"hash": h, "git_repo": "", "git_commit": "cd" * 20,
                                                    "git_branch": "main"})
    assert status == 201 and out["hash"] == h and out["created"] is True
    assert server.call("POST", f"/sessions/{h}/jobs/batch", {"jobs": jobs})[1]["errors"] == []
    body = {"artifacts": [{"hashes": [{"algorithm": "blake3", "digest": d}], "size": 3, "session_hash": h}
                          for d in (a, b, c)]}
    assert server.call("POST", "/artifacts/batch", body)[1]["created"] == 3
    for uid, (ins, outs) in edges.items():
        for kind, items in (("inputs", ins), ("outputs", outs)):
            status, _ = server.call("POST", f"/sessions/{h}/jobs/{uid}/{kind}",
                                    {"artifacts": [{"hash": x, "path": p} for x, p in items]})
            assert status == 201
    assert server.call("GET", f"/artifacts/{c}/lineage")[1]["producedBy"]["sessionHash"] == h
    label = {"entity_type": "dag", "session_hash": h, "metadata": {"roar": {"v": 1}}}
    assert server.call("POST", "/labels/sync", {"labels": [label]})[1]["created"] == 1
    assert server.call("POST", "/labels/sync", {"labels": [label]})[1]["noops"] == 1   # re-sent: fine
    status, out = server.call("POST", "/labels/sync", {"labels": [dict(label, metadata={"roar": {"v": 2}})]})
    assert status == 403   # an anonymous DAG's labels are fixed once written


def test_label_reconcile_versions_and_conflicts(server, make_token):
    alice, bob = make_token("alice"), make_token("bob")
    jobs, edges, arts = lineage()
    rid, _, auth = stage(server, jobs, edges, arts, token=alice)
    h = finalize(server, rid, auth, scope_request={"visibility": "public"})[1]["hash"]
    doc = {"entity_type": "artifact", "session_hash": h, "artifact_hash": arts[2],
           "metadata": {"tag": "best"}}
    body = {"session_hash": h, "mode": "sync_user_labels", "dry_run": False, "labels": [doc]}
    status, out = server.call("POST", "/labels/reconcile", body, token=alice)
    assert status == 200 and out["results"][0]["action"] == "created" and out["results"][0]["version"] == 1
    assert server.call("POST", "/labels/reconcile", body, token=bob)[0] == 200   # a no-op needs no right
    changed = dict(body, labels=[dict(doc, metadata={"tag": "worst"})])
    assert server.call("POST", "/labels/reconcile", changed, token=bob)[0] == 403
    stale = dict(body, labels=[dict(doc, metadata={"more": 1}, base_version=0)])
    assert server.call("POST", "/labels/reconcile", stale, token=alice)[0] == 409
    removed = dict(body, labels=[dict(doc, metadata={"more": 1}, deleted_keys=["tag"], base_version=1)])
    assert server.call("POST", "/labels/reconcile", removed, token=alice)[1]["updated"] == 1
    query = f"entity_type=artifact&session_hash={h}&artifact_hash={arts[2]}"
    assert server.call("GET", f"/labels/current?{query}", token=bob)[1]["metadata"] == {"more": 1}
    assert [x["version"] for x in server.call("GET", f"/labels/history?{query}")[1]["labels"]] == [1, 2]
    assert server.call("GET", f"/artifacts/{arts[2]}")[1]["labels"][0]["metadata"] == {"more": 1}


def test_token_create_revoke(server, db_url):
    made = json.loads(roar_cmd("glaas", "token", "create", "--user", "dave", "--db", db_url, "--json",
                               check=True).stdout)
    status, me = server.call("GET", "/auth/me", token=made["token"])
    assert status == 200 and me["user"]["username"] == "dave"
    assert me["creatorIdentity"] == f"glaas:user:{me['user']['id']}"
    done = roar_cmd("glaas", "token", "revoke", made["id"], "--db", db_url)
    assert done.returncode == 0 and done.stdout == f"revoked {made['id']}\n"
    assert server.call("GET", "/auth/me", token=made["token"])[0] == 401
    done = roar_cmd("glaas", "token", "revoke", "tok_000000000000", "--db", db_url)
    assert done.returncode == 3 and done.stderr.startswith("roar: no such token")
    assert "Traceback" not in done.stderr
    done = roar_cmd("glaas", "token", "create", "--user", "bad name", "--db", db_url)
    assert done.returncode == 2 and "bad user name" in done.stderr


def test_migrations_make_exactly_the_models(db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from roar.glaas.db import open_engine
    from roar.glaas.models import Base

    engine = open_engine(db_url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    engine.dispose()
