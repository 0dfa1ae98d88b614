"""Scope audit: another token, and an anonymous caller, learn of a private DAG only that
its hashes exist, through every read endpoint the server has (the routes are listed from
the application itself, so a new endpoint is audited as soon as it exists) and through the
write endpoints that answer with data. On SQLite and PostgreSQL.

The private DAGs are marked with strings that appear nowhere else (commands, metadata,
labels, git repository, source URL, owner names, sizes): a reply that carries one of them
leaks. The owner's own replies must carry them, so the audit cannot pass by seeing nothing."""

from __future__ import annotations

import json
import secrets
from urllib.parse import quote

import pytest

from tests.glaas.test_server import finalize, stage


def _dag(tag: str, consumes: str | None = None):
    """A two-job lineage whose every private field carries `tag`."""
    a, b, c = (consumes or secrets.token_hex(32)), secrets.token_hex(32), secrets.token_hex(32)
    uids = [secrets.token_hex(16), secrets.token_hex(16)]
    jobs = [{"command": f"prep-{tag} in", "job_uid": uids[0], "job_type": "run", "step_number": 1,
             "git_branch": f"branch-{tag}", "metadata": json.dumps({"note": f"meta-{tag}"})},
            {"command": f"train-{tag} mid", "job_uid": uids[1], "job_type": "run", "step_number": 2,
             "metadata": json.dumps({"note": f"meta2-{tag}"})}]
    edges = {uids[0]: ([(a, f"/w/in-{tag}")], [(b, f"/w/mid-{tag}")]),
             uids[1]: ([(b, f"/w/mid-{tag}")], [(c, f"/w/out-{tag}")])}
    return jobs, edges, (a, b, c)


class Private:
    """One private DAG, with labels on the DAG, a job and an artifact."""

    def __init__(self, server, token: str, tag: str, scope: dict, owner: str):
        self.tag = tag
        self.jobs, edges, self.arts = _dag(tag)
        rid, _, auth = stage(server, self.jobs, edges, self.arts, token=token)
        body = {"artifacts": [{"hashes": [{"algorithm": "blake3", "digest": d}], "size": 7_770_000 + i,
                               "source_type": "https", "source_url": f"https://example.org/src-{tag}",
                               "metadata": json.dumps({"m": f"artmeta-{tag}"})}
                              for i, d in enumerate(self.arts)]}
        status, _ = server.call("POST", f"/registration-sessions/{rid}/artifacts/batch", body, token=token)
        assert status == 201
        status, receipt = finalize(server, rid, auth, git_repo=f"https://example.org/repo-{tag}.git",
                                   scope_request=scope)
        assert status == 200, receipt
        self.hash = receipt["hash"]
        labels = [{"entity_type": "dag", "session_hash": self.hash, "metadata": {"l": f"dag-label-{tag}"}},
                  {"entity_type": "job", "session_hash": self.hash, "job_uid": self.jobs[1]["job_uid"],
                   "metadata": {"l": f"job-label-{tag}"}},
                  {"entity_type": "artifact", "session_hash": self.hash, "artifact_hash": self.arts[2],
                   "metadata": {"l": f"art-label-{tag}"}}]
        status, out = server.call("POST", f"/registration-sessions/{rid}/labels/batch", {"labels": labels},
                                  token=token)
        assert status == 200, out
        # what must never reach anyone else (the hashes themselves may: existence is global)
        self.secrets = [tag, owner, "7770000", "7770001", "7770002"]
        self.ids = [self.hash] + [j["job_uid"] for j in self.jobs]

    def leaks(self, url: str, reply) -> list[str]:
        text = json.dumps(reply) if not isinstance(reply, str) else reply
        # what the caller typed may be echoed (a search box shows its query): that is no leak;
        # a search that finds the DAG shows its hash or a job uid, which the check below catches
        for typed in sorted(_typed(url), key=len, reverse=True):
            text = text.replace(typed, "")
        found = [s for s in self.secrets if s in text]
        # a hash or uid the caller typed may come back (in a 404's message, say); no other may
        found += [i for i in self.ids if i in text and i not in url]
        return found


STATIC = {"/api/v1/openapi.json", "/api/v1/docs", "/docs/oauth2-redirect"}   # no data in them


def _typed(url: str) -> list[str]:
    """The query values of a URL, as sent and decoded (a page may show either)."""
    from urllib.parse import parse_qsl, urlsplit

    query = urlsplit(url).query
    return [v for pair in query.split("&") if "=" in pair for v in (pair.split("=", 1)[1],)] + \
        [v for _, v in parse_qsl(query)]


def _app_routes(db_url: str) -> list[tuple[str, set[str]]]:
    """(path, methods) of every route the application serves, web pages included."""
    from roar.glaas.app import create_app
    from roar.glaas.db import open_engine

    engine = open_engine(db_url)
    try:
        return list(_walk(create_app(engine).routes, ""))
    finally:
        engine.dispose()


def _walk(routes, prefix: str):
    """Flatten routers included into others (FastAPI keeps them nested) and mounts."""
    for route in routes:
        included = getattr(route, "include_context", None)
        if included is not None:
            yield from _walk(included.included_router.routes, prefix + included.prefix)
        elif getattr(route, "routes", None) and hasattr(route, "path"):   # a Mount
            yield from _walk(route.routes, prefix + route.path)
        elif hasattr(route, "path"):
            yield prefix + route.path, set(getattr(route, "methods", None) or ())


def _fill(path: str, private: Private) -> list[str]:
    """Concrete URLs for a route template: each parameter tried with each of the DAG's ids."""
    values = {"session_hash": [private.hash], "prefix": list(private.arts),
              "job_uid": [private.jobs[1]["job_uid"]]}
    candidates = [private.hash, *private.arts, private.jobs[1]["job_uid"], private.arts[2][:12]]
    urls = [path]
    while "{" in urls[0]:
        name = urls[0].split("{", 1)[1].split("}", 1)[0]
        options = values.get(name.split(":")[0], candidates)
        urls = [u.replace("{" + name + "}", v, 1) for u in urls for v in options]
    return urls


def _queries(private: Private) -> list[str]:
    """Query strings for the routes that take them: labels by entity, lists, searches."""
    h, uid, art = private.hash, private.jobs[1]["job_uid"], private.arts[2]
    return ["", "?depth=10", "?limit=100",
            f"?entity_type=dag&session_hash={h}",
            f"?entity_type=job&session_hash={h}&job_uid={uid}",
            f"?entity_type=artifact&session_hash={h}&artifact_hash={art}",
            *(f"?q={quote(v)}&query={quote(v)}&hash={quote(v)}" for v in (art, art[:12], h, uid, private.tag,
                                                                          f"train-{private.tag}"))]


def _read_all(server, private: Private, routes, **who) -> dict[str, object]:
    replies = {}
    for path, methods in routes:
        if "GET" not in methods or path in STATIC:
            continue
        for url in _fill(path, private):
            for query in _queries(private):
                full = url + query
                status, reply = _get(server, full, **who)
                assert status != 500, (full, reply)
                replies[full] = reply
    return replies


def _get(server, path: str, token: str | None = None):
    """(status, reply): JSON unwrapped from its envelope, or the text of a web page."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(server.url + path)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            status, text = reply.status, reply.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        status, text = err.code, err.read().decode(errors="replace")
    try:
        doc = json.loads(text)
    except ValueError:
        return status, text
    return status, doc["data"] if isinstance(doc, dict) and doc.get("success") is True else doc


@pytest.fixture
def world(server, make_token, db_url):
    alice, dave = make_token("alice"), make_token("dave", "vision")
    alice_in_vision, bob = make_token("alice", "vision"), make_token("bob")
    mine = Private(server, alice, "PRIVATE" + secrets.token_hex(4),
                   {"owner_resolution": "current_user", "owner_type": "user", "visibility": "private"},
                   owner="alice")
    # a project DAG of alice's: dave (a member) sees it, bob does not
    team = Private(server, alice_in_vision, "PROJECT" + secrets.token_hex(4),
                   {"visibility": "private", "project_id": "vision"}, owner="vision")
    team.secrets.append("alice")
    # a public DAG that consumes the private output: its lineage must stop at the hash
    jobs, edges, arts = _dag("public", consumes=mine.arts[2])
    rid, _, auth = stage(server, jobs, edges, arts, token=bob)
    assert finalize(server, rid, auth, scope_request={"visibility": "public"})[0] == 200
    return {"alice": alice, "bob": bob, "dave": dave, "mine": mine, "team": team, "public_out": arts[2],
            "routes": _app_routes(db_url)}


def test_the_owner_sees_what_the_audit_looks_for(server, world):
    """The positive control: the markers do show through these endpoints to the owner."""
    for private in (world["mine"], world["team"]):
        replies = _read_all(server, private, world["routes"], token=world["alice"])
        seen = json.dumps(replies)
        for marker in (f"train-{private.tag}", f"meta2-{private.tag}", f"job-label-{private.tag}",
                       f"art-label-{private.tag}", f"dag-label-{private.tag}", f"repo-{private.tag}",
                       f"artmeta-{private.tag}", "7770002"):
            assert marker in seen, marker
    team_for_dave = json.dumps(_read_all(server, world["team"], world["routes"], token=world["dave"]))
    assert f"job-label-{world['team'].tag}" in team_for_dave


@pytest.mark.parametrize("observer", ["anonymous", "bob", "dave"])
def test_no_read_endpoint_shows_another_callers_private_dag(server, world, observer):
    who = {} if observer == "anonymous" else {"token": world[observer]}
    hidden = [world["mine"]] + ([] if observer == "dave" else [world["team"]])
    for private in hidden:
        replies = _read_all(server, private, world["routes"], **who)
        leaks = {url: private.leaks(url, reply) for url, reply in replies.items()}
        assert {u: found for u, found in leaks.items() if found} == {}
        # existence is global: the artifact answers, with nothing of the DAG
        art = replies[f"/api/v1/artifacts/{private.arts[1]}"]
        assert art["hash"] == private.arts[1] and art["originalSessionHash"] is None and art["labels"] == []
    # the public DAG's lineage reaches the private output's hash and stops there
    status, lin = world_call(server, "GET", f"/artifacts/{world['public_out']}/lineage?depth=10", who)
    assert status == 200 and len(lin["upstream"]) == 1
    assert world["mine"].arts[2] in json.dumps(lin["upstream"])   # the hash, as the public DAG's input
    assert not world["mine"].leaks("", lin)


def world_call(server, method, path, who, body=None):
    return server.call(method, path, body, **who)


@pytest.mark.parametrize("observer", ["anonymous", "bob"])
def test_no_write_endpoint_tells_another_caller_about_a_private_dag(server, world, observer):
    who = {} if observer == "anonymous" else {"token": world[observer]}
    private = world["mine"]
    h, uid = private.hash, private.jobs[1]["job_uid"]
    label = {"entity_type": "job", "session_hash": h, "job_uid": uid, "metadata": {"x": 1}}
    writes = [
        ("POST", "/sessions", {"hash": h, "git_repo": "", "git_commit": None, "git_branch": None}),
        ("POST", f"/sessions/{h}/jobs/batch", {"jobs": private.jobs}),
        ("POST", f"/sessions/{h}/jobs/{uid}/inputs", {"artifacts": [{"hash": private.arts[0]}]}),
        ("POST", "/artifacts/batch", {"artifacts": [{"hashes": [{"algorithm": "blake3",
                                                                 "digest": private.arts[0]}],
                                                     "session_hash": h}]}),
        ("POST", "/labels/sync", {"labels": [label]}),
        ("POST", "/labels/reconcile", {"session_hash": h, "dry_run": True, "labels": [label]}),
    ]
    for method, path, body in writes:
        status, reply = world_call(server, method, path, who, body)
        assert status in (401, 403, 404, 409), (path, status, reply)
        assert not private.leaks(path + json.dumps(body), reply), (path, reply)
        assert "another user" not in json.dumps(reply) and "registration session" not in json.dumps(reply)
    # re-sending its jobs in a new registration says they are taken, not where
    if who:
        status, rs = world_call(server, "POST", "/registration-sessions", who)
        auth = who
    else:
        status, rs = world_call(server, "POST", "/registration-sessions", who, {"mode": "anonymous_public"})
        auth = {"rs": rs["registration_session_token"]}
    status, out = server.call("POST", f"/registration-sessions/{rs['registration_session_id']}/jobs/batch",
                              {"jobs": private.jobs}, **auth)
    assert status == 201 and out["already_registered_session_hashes"] == [] and all(out["errors"])
    assert not private.leaks(json.dumps(private.jobs), out)
