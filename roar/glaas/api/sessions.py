"""A registered session (DAG) by its hash: its reproduction recipe, and the whole DAG."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from roar.glaas.api.deps import DB, Who, ok
from roar.glaas.store import lookup

router = APIRouter(tags=["sessions"])
Hash = Annotated[str, Path(min_length=1, max_length=128)]


@router.get("/public/sessions/{session_hash}/reproduction")
def reproduction(*, session_hash: Hash, c: Who, session: DB):
    view = lookup.dag_view(session, lookup.find_dag(session, c.who, session_hash))
    return ok({k: view[k] for k in ("sessionHash", "gitRepo", "gitCommit", "gitBranch", "jobs")})


@router.get("/sessions/{session_hash}")
def dag(*, session_hash: Hash, c: Who, session: DB):
    return ok(lookup.dag_view(session, lookup.find_dag(session, c.who, session_hash)))
