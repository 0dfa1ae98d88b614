"""Labels by entity: sync and reconcile (writes), current and history (reads)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from roar.glaas import schemas
from roar.glaas.api.deps import DB, Who, ok
from roar.glaas.store import labels

router = APIRouter(prefix="/labels", tags=["labels"])
Entity = Literal["dag", "job", "artifact"]


@router.post("/sync")
def sync(*, body: schemas.LabelsBatch, c: Who, session: DB):
    return ok(labels.write_all(session, c.who, [d.model_dump() for d in body.labels]))


@router.post("/reconcile")
def reconcile(*, body: schemas.ReconcileIn, c: Who, session: DB):
    return ok(labels.write_all(session, c.who, [d.model_dump() for d in body.labels], dry_run=body.dry_run))


@router.get("/current")
def current(*, entity_type: Entity, session_hash: Annotated[str, Query(pattern=r"^[0-9a-fA-F]{64}$")],
            job_uid: Annotated[str | None, Query(max_length=64)] = None,
            artifact_hash: Annotated[str | None, Query(max_length=128)] = None,
            c: Who, session: DB):
    return ok(labels.show_current(session, c.who, entity_type, session_hash, job_uid, artifact_hash))


@router.get("/history")
def history(*, entity_type: Entity, session_hash: Annotated[str, Query(pattern=r"^[0-9a-fA-F]{64}$")],
            job_uid: Annotated[str | None, Query(max_length=64)] = None,
            artifact_hash: Annotated[str | None, Query(max_length=128)] = None,
            c: Who, session: DB):
    return ok(labels.history(session, c.who, entity_type, session_hash, job_uid, artifact_hash))
