"""Lookups from an artifact hash or prefix: the artifact, its lineage, its DAG, its
components; /public/artifacts/{p} answers the same, without credentials."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from roar.glaas.api.deps import DB, Who, ok
from roar.glaas.store import lookup
from roar.glaas.store.scope import ANONYMOUS

router = APIRouter(tags=["artifacts"])
Prefix = Annotated[str, Path(min_length=1, max_length=128)]


@router.get("/artifacts/{prefix}")
def artifact(*, prefix: Prefix, c: Who, session: DB):
    return ok(lookup.artifact_view(session, c.who, lookup.find_artifact(session, prefix)))


@router.get("/public/artifacts/{prefix}")
def public_artifact(*, prefix: Prefix, session: DB):
    return ok(lookup.artifact_view(session, ANONYMOUS, lookup.find_artifact(session, prefix)))


@router.get("/artifacts/{prefix}/lineage")
def lineage(*, prefix: Prefix, depth: Annotated[int, Query(ge=1, le=lookup.MAX_DEPTH)] = 1, c: Who,
            session: DB):
    return ok(lookup.lineage(session, c.who, lookup.find_artifact(session, prefix), depth))


@router.get("/artifacts/{prefix}/dag")
def dag(*, prefix: Prefix, c: Who, session: DB):
    return ok(lookup.artifact_dag(session, c.who, lookup.find_artifact(session, prefix)))


@router.get("/artifacts/{prefix}/components")
def components(*, prefix: Prefix, c: Who, session: DB):
    return ok(lookup.components(session, c.who, lookup.find_artifact(session, prefix)))
