"""The legacy registration path: POST /sessions and writes by session hash
(roar.glaas.store.legacy), and GET /sessions, the list a client probes its auth with."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from roar.glaas import schemas
from roar.glaas.api.deps import DB, Who, base_url, ok
from roar.glaas.store import legacy, lookup

router = APIRouter(tags=["legacy registration"])
Hash = Annotated[str, Path(pattern=r"^[0-9a-fA-F]{64}$")]
Uid = Annotated[str, Path(pattern=r"^[0-9A-Za-z_-]{1,64}$")]


@router.get("/sessions")
def list_sessions(*, limit: Annotated[int, Query(ge=1, le=100)] = 20, c: Who,
                  session: DB):
    return ok(lookup.sessions_of(session, c.who, limit))


@router.post("/sessions", status_code=201)
def create_session(*, request: Request, body: schemas.LegacySessionIn, c: Who,
                   session: DB):
    return ok(legacy.create(session, c.who, body.model_dump(), base_url(request)), 201)


@router.post("/sessions/{session_hash}/jobs/batch", status_code=201)
def jobs_batch(*, body: schemas.JobsBatch, session_hash: Hash, c: Who,
               session: DB):
    dag = legacy.dag_for_write(session, c.who, session_hash)
    return ok(legacy.add_jobs(session, dag, [j.model_dump() for j in body.jobs]), 201)


@router.post("/sessions/{session_hash}/jobs", status_code=201)
def one_job(*, body: schemas.JobIn, session_hash: Hash, c: Who,
            session: DB):
    dag = legacy.dag_for_write(session, c.who, session_hash)
    out = legacy.add_jobs(session, dag, [body.model_dump()])
    return ok({"job_uid": body.job_uid, "errors": out["errors"]}, 201)


def _edges(session, c, session_hash, job_uid, direction, body):
    dag = legacy.dag_for_write(session, c.who, session_hash)
    return legacy.add_edges(session, dag, job_uid, direction, [e.model_dump() for e in body.artifacts])


@router.post("/sessions/{session_hash}/jobs/{job_uid}/inputs", status_code=201)
def inputs(*, body: schemas.EdgesBatch, session_hash: Hash, job_uid: Uid,
           c: Who, session: DB):
    n = _edges(session, c, session_hash, job_uid, "in", body)
    return ok({"job_uid": job_uid, "inputs_linked": n}, 201)


@router.post("/sessions/{session_hash}/jobs/{job_uid}/outputs", status_code=201)
def outputs(*, body: schemas.EdgesBatch, session_hash: Hash, job_uid: Uid,
            c: Who, session: DB):
    n = _edges(session, c, session_hash, job_uid, "out", body)
    return ok({"job_uid": job_uid, "outputs_linked": n}, 201)


@router.post("/artifacts/batch", status_code=201)
def artifacts_batch(*, body: schemas.ArtifactsBatch, c: Who, session: DB):
    return ok(legacy.add_artifacts(session, c.who, [a.model_dump() for a in body.artifacts]), 201)


@router.post("/artifacts/composites", status_code=201)
def composite(*, body: schemas.CompositeIn, c: Who, session: DB):
    return ok(legacy.add_composite(session, c.who, body.model_dump()), 201)


@router.post("/jobs/{job_uid}/artifacts", status_code=201)
def view_edges(*, body: schemas.ViewEdges, job_uid: Uid, c: Who):
    # best effort in the protocol; not kept here yet (docs/glaas.md)
    return ok({"job_uid": job_uid, "stored": 0}, 201)
