"""The legacy registration path (`POST /sessions`, then jobs, artifacts and edges by
session hash), which older clients and clients without credentials use.

Its protocol has no staging: the DAG is created with the hash the client computed, and
each write is visible when it is made. Writes to a DAG are refused to anyone but its
owner (or project members); an anonymous legacy DAG takes writes from anyone, as the
protocol gives no credential to check (docs/glaas.md).
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from roar.glaas.models import Dag, Job
from roar.glaas.store import writes
from roar.glaas.store.errors import BadRequest, Forbidden, NotFound
from roar.glaas.store.errors import Conflict as ConflictError
from roar.glaas.store.scope import Principal, can_see, can_write

SESSION_HASH = re.compile(r"^[0-9a-f]{64}$")


def create(session: Session, who: Principal, body: dict, base_url: str) -> dict:
    digest = body["hash"].lower()
    if not SESSION_HASH.match(digest):
        raise BadRequest("hash must be the session's 64 hex digit sha256")
    request = body.get("scope_request") or {}
    owner = who.user_id
    values = {"hash": digest, "git_repo": (body.get("git_repo") or "").strip() or None,
              "git_commit": body.get("git_commit"), "git_branch": body.get("git_branch"),
              "creator_identity": who.creator_identity, "owner_user_id": owner,
              "project_id": who.project_id if owner else None,
              "visibility": (request.get("visibility") or "private") if owner else "public", "legacy": True}
    dag, created = writes.dag(session, values)
    if not created and not can_see(who, dag):
        # that the hash exists is all another caller may learn: not who owns it, nor how it came
        raise ConflictError(f"session {dag.hash} is already registered: it cannot be created again")
    if not created:
        _writable(who, dag)
    session.commit()
    return {"hash": dag.hash, "url": f"{base_url.rstrip('/')}/dag/{dag.hash}", "created": created}


def _writable(who: Principal, dag: Dag) -> Dag:
    if not dag.legacy:
        raise ConflictError(f"session {dag.hash} was registered through a registration session and is "
                            "closed to further writes")
    anonymous_dag = dag.owner_user_id is None and dag.project_id is None
    if not (anonymous_dag or can_write(who, dag)):
        raise Forbidden(f"session {dag.hash} belongs to another user: write access is required")
    return dag


def dag_for_write(session: Session, who: Principal, digest: str) -> Dag:
    dag = session.scalar(select(Dag).where(Dag.hash == digest.lower()))
    if dag is None or not can_see(who, dag):
        raise NotFound(f"no session {digest}: create it with POST /sessions first")
    return _writable(who, dag)


def add_jobs(session: Session, dag: Dag, jobs: list[dict]) -> dict:
    ids: list[str | None] = []
    errors: list[str] = []
    for job in jobs:
        try:
            ids.append(writes.job(session, dag, job).job_uid)
        except ConflictError as exc:
            ids.append(None)
            errors.append(exc.message)
    session.commit()
    return {"job_ids": ids, "errors": errors}


def add_artifacts(session: Session, who: Principal, artifacts: list[dict]) -> dict:
    created = existing = 0
    for artifact in artifacts:
        dag = dag_for_write(session, who, artifact.get("session_hash") or "")
        if writes.dag_artifact(session, dag, artifact):
            created += 1
        else:
            existing += 1
    session.commit()
    return {"created": created, "existing": existing, "errors": 0}


def add_composite(session: Session, who: Principal, composite: dict) -> dict:
    dag = dag_for_write(session, who, composite.get("session_hash") or "")
    created = writes.dag_artifact(session, dag, composite)
    session.commit()
    return {"artifact_id": composite["hash"], "created": created}


def add_edges(session: Session, dag: Dag, job_uid: str, direction: str, edges: list[dict]) -> int:
    job = session.scalar(select(Job).where(Job.job_uid == job_uid, Job.dag_id == dag.id))
    if job is None:
        raise NotFound(f"no job {job_uid} in session {dag.hash}: send it with jobs/batch first")
    for e in edges:
        writes.edge(session, job, direction, e["hash"].lower(), e.get("path"))
    session.commit()
    return len(edges)
