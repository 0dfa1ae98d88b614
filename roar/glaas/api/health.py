"""GET /health: liveness and the features clients choose their path by (not wrapped:
clients read this body as is), and `worker`, the process id of the worker that answered
(`roar glaas serve --workers N` runs several)."""

from __future__ import annotations

import os

from fastapi import APIRouter
from sqlalchemy import text

from roar import __version__
from roar.glaas.api.deps import DB

router = APIRouter(tags=["health"])


@router.get("/health")
def health(*, session: DB) -> dict:
    session.execute(text("SELECT 1"))
    return {"status": "healthy", "version": f"roar-glaas {__version__}", "worker": os.getpid(),
            "features": {"registration_sessions": {"anonymous_public": True,
                                                   "finalize_server_authoritative_hash": True}}}
