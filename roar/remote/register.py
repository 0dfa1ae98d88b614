"""Registering a plan (roar.remote.payload) on a GLaaS server, through a registration
session: everything is staged, and becomes visible only at finalize, in one transaction
on the server. So an interrupted registration (a killed client, a dead server) leaves
nothing visible, and the next run stages everything again in a new session and finalizes
it; the abandoned session stays staged and invisible on the server.

Registering the same lineage again sends the same remote job uids (payload.remote_uid);
the server answers the job batch with the DAG that already holds them, and nothing else
is sent but the labels: the same session hash, nothing duplicated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from roar.errors import RoarError
from roar.remote.errors import AuthRefused
from roar.remote.http import Client
from roar.remote.payload import Plan

JOB_BATCH = 200        # jobs carry their metadata: keep each request well under the body cap
ARTIFACT_BATCH = 1000
EDGE_BATCH = 1000
BATCH_BYTES = 90_000   # the hosted service's body parser takes about 100 KB (glaas-protocol.md)
# edge requests in flight at once. Enough to overlap the client's time with the server's; more
# only queue in one server process (a 1,000-job chain on loopback, docs/performance-glaas.md:
# 2.2 s with 4, 2.4-2.7 s with 8, 2.9-3.2 s with 16, 2.7-3.0 s one after another)
EDGE_REQUESTS = 4


@dataclass
class Receipt:
    session_hash: str
    url: str                         # the DAG's web page: <server>/s/<hash>
    created: bool                    # false: it was registered before
    jobs: int
    artifacts: int
    target: str | None
    scope: str
    labels: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def health(client: Client) -> None:
    from roar.remote.errors import ServerUnavailable

    doc = client.get("/health", auth=False)
    features = (doc.get("features") or {}).get("registration_sessions") if isinstance(doc, dict) else None
    if not features:
        raise ServerUnavailable(f"{client.url} does not offer registration sessions: it is not a GLaaS "
                                "server, or one too old for roar register")


def identity(client: Client) -> tuple[str, str | None]:
    """(creator identity, user name) of the client's token; anonymous without one."""
    if not client.token:
        return "anonymous", None
    me = client.get("/auth/me")
    user = me.get("user") or {}
    return me.get("creatorIdentity") or f"glaas:user:{user.get('id')}", user.get("username")


def scope_request(scope: str) -> dict | None:
    if scope == "anonymous":
        return None
    return {"owner_resolution": "current_user", "owner_type": "user", "visibility": scope}


def _batches(items: list, size: int, most_bytes: int = BATCH_BYTES):
    """At most `size` items and (unless one item alone is bigger) `most_bytes` of JSON a batch."""
    import json

    batch: list = []
    used = 0
    for item in items:
        cost = len(json.dumps(item)) + 2
        if batch and (len(batch) == size or used + cost > most_bytes):
            yield batch
            batch, used = [], 0
        batch.append(item)
        used += cost
    if batch:
        yield batch


def steps(plan: Plan) -> int:
    """How many requests a full registration makes (for the progress indicator)."""
    n = 3 + len(plan.composites)   # open, finalize, labels
    n += len(list(_batches(plan.jobs, JOB_BATCH))) + len(list(_batches(plan.artifacts, ARTIFACT_BATCH)))
    n += sum(len(list(_batches(e, EDGE_BATCH))) for e in (*plan.inputs.values(), *plan.outputs.values()))
    return n


def register(client: Client, plan: Plan, scope: str, tick: Callable[[], None] = lambda: None) -> Receipt:
    anonymous = scope == "anonymous"
    mode = "anonymous_public" if anonymous else "authenticated"
    opened = client.post("/registration-sessions", {"mode": mode, "client_session_id": plan.hash})
    tick()
    rs = opened["registration_session_id"]
    if anonymous:
        client.rs_token = opened["registration_session_token"]
    base = f"/registration-sessions/{rs}"
    known: list[str] = []
    for batch in _batches(plan.jobs, JOB_BATCH):
        reply = client.post(f"{base}/jobs/batch", {"jobs": batch})
        tick()
        _job_errors(reply)
        known += [h for h in reply.get("already_registered_session_hashes") or [] if h not in known]
    if known:
        return _registered_before(client, plan, scope, known)
    for composite in plan.composites:
        client.post(f"{base}/artifacts/composites", composite)
        tick()
    for batch in _batches(plan.artifacts, ARTIFACT_BATCH):
        client.post(f"{base}/artifacts/batch", {"artifacts": batch})
        tick()
    _send_edges(client, base, plan, tick)
    body = {"git_repo": plan.git["repo"], "git_commit": plan.git["commit"], "git_branch": plan.git["branch"]}
    if anonymous:
        body["expected"] = plan.counts
    else:
        body["scope_request"] = scope_request(scope)
    done = client.post(f"{base}/finalize", body)
    tick()
    digest = done.get("published_session_hash") or done.get("session_hash") or done["hash"]
    labels, warnings = {}, []
    if plan.labels:
        docs = [{**d, "session_hash": digest} for d in plan.labels]
        try:
            labels = client.post(f"{base}/labels/batch", {"labels": docs})
        except RoarError as exc:   # the DAG is registered: `roar label push` can send them later
            warnings.append(f"labels not sent: {exc.message}; send them with `roar label push`")
    tick()
    return Receipt(digest, web_url(client.url, digest), bool(done.get("created", True)), len(plan.jobs),
                   len(plan.artifacts) + len(plan.composites), plan.target, scope, labels, warnings)


def _send_edges(client: Client, base: str, plan: Plan, tick: Callable[[], None]) -> None:
    """Each job's inputs and outputs: one request per job and direction (the protocol's
    shape), independent of each other, so EDGE_REQUESTS of them are in flight at once, each
    retried on its own (roar.remote.http). The first that fails for good stops the rest: those
    not yet sent are not sent, and the error is the registration's. Each is idempotent on the
    server, so the next run's new registration session sends them all again."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    calls = [(f"{base}/jobs/{uid}/{direction}", {"artifacts": batch})
             for direction, edges in (("inputs", plan.inputs), ("outputs", plan.outputs))
             for uid, job_edges in edges.items() for batch in _batches(job_edges, EDGE_BATCH)]
    if len(calls) < 2 or not isinstance(client, Client):   # a dry run records them in order
        for path, body in calls:
            client.post(path, body)
            tick()
        return
    with ThreadPoolExecutor(EDGE_REQUESTS, thread_name_prefix="roar-edges") as pool:
        futures = [pool.submit(client.post, path, body) for path, body in calls]
        try:
            for done in as_completed(futures):
                done.result()
                tick()
        except BaseException:
            for future in futures:
                future.cancel()   # the queued ones; at most EDGE_REQUESTS are still under way
            raise


def _job_errors(reply: dict) -> None:

    errors = [e for e in reply.get("errors") or [] if e]
    if errors:
        raise RoarError(f"the server refused the jobs: {errors[0]}" + (f" (and {len(errors) - 1} more)"
                                                                       if len(errors) > 1 else ""))


def _registered_before(client: Client, plan: Plan, scope: str, known: list[str]) -> Receipt:
    """The lineage is already a registered DAG: only its labels may need sending."""
    from roar.remote import labels as remote_labels

    if len(known) > 1:
        raise RoarError(f"these jobs are already in {len(known)} registered DAGs ({', '.join(known)}): "
                        "a job can belong to only one DAG")
    digest = known[0]
    client.rs_token = None   # the labels go with the caller's own credential
    if scope != "anonymous":   # it keeps the scope it was first registered with
        scope = (client.get(f"/sessions/{digest}").get("scope") or {}).get("visibility") or scope
    pushed, warnings = {}, []
    if plan.labels:
        try:
            pushed = remote_labels.push_docs(client, [{**d, "session_hash": digest} for d in plan.labels])
        except AuthRefused as exc:   # the DAG is registered all the same; only the labels could not change
            warnings.append(f"labels not updated: {exc.message}")
    return Receipt(digest, web_url(client.url, digest), False, len(plan.jobs),
                   len(plan.artifacts) + len(plan.composites), plan.target, scope, pushed, warnings)


def web_url(server: str, digest: str) -> str:
    return f"{server.rstrip('/')}/s/{digest}"


class DryRun:
    """Stands in for the Client in `roar register --dry-run`: records every request the
    registration would make, body and all, and answers as a server would; sends nothing."""

    def __init__(self, url: str | None, plan: Plan, token: bool) -> None:
        self.url = url or "<no server configured>"
        self.plan = plan
        self.token = token
        self.rs_token: str | None = None
        self.requests: list[dict] = []

    def _auth(self) -> str | None:
        if self.rs_token:
            return "RegistrationSession <the token the server gives this registration>"
        return "Bearer <your token>" if self.token else None

    def get(self, path: str, params: dict | None = None, auth: bool = True):
        self.requests.append({"method": "GET", "path": "/api/v1" + path, "params": params,
                              "authorization": self._auth() if auth else None})
        return {}

    def post(self, path: str, body=None, auth: bool = True):
        self.requests.append({"method": "POST", "path": "/api/v1" + path,
                              "authorization": self._auth() if auth else None, "body": body})
        if path == "/registration-sessions":
            return {"registration_session_id": "rs_ID", "registration_session_token": "TOKEN"}
        if path.endswith("/finalize"):
            return {"hash": self.plan.hash, "created": True}
        return {}
