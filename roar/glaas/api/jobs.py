"""GET /jobs/{job_uid}: a registered job by its uid (beside the public protocol, which has no
such lookup; `roar show JOBUID --remote` uses it). The job follows its DAG's scope: a job
whose DAG the caller may not see is the same 404 as a uid never registered."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from roar.glaas.api.deps import DB, Who, ok
from roar.glaas.store import lookup

router = APIRouter(tags=["jobs"])
Uid = Annotated[str, Path(pattern=r"^[0-9A-Za-z_-]{1,64}$")]


@router.get("/jobs/{job_uid}")
def job(*, job_uid: Uid, c: Who, session: DB):
    return ok(lookup.job_view(session, c.who, job_uid))
