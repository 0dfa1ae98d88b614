"""Who the caller is: GET /auth/me and GET /auth/access-context."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from roar.glaas.api.deps import DB, Caller, Who, ok
from roar.glaas.models import Project
from roar.glaas.store.errors import Unauthorized

router = APIRouter(tags=["auth"])


def _user(c: Caller) -> dict:
    if c.who.anonymous:
        raise Unauthorized("not authenticated: send Authorization: Bearer <token>")
    return {"id": c.who.user_id, "sub": str(c.who.user_id), "username": c.who.user_name, "email": None}


@router.get("/auth/me")
def me(*, c: Who):
    return ok({"user": _user(c), "creatorIdentity": c.who.creator_identity})


@router.get("/auth/access-context")
def access_context(*, c: Who, session: DB):
    user = _user(c)
    projects = session.scalars(select(Project).where(Project.id.in_(sorted(c.who.member_of)))).all()
    owner = {"id": str(c.who.user_id), "type": "user", "username": c.who.user_name,
             "display_name": c.who.user_name}
    return ok({"user": user, "owners": [owner], "projects_by_owner": {str(c.who.user_id): [
        {"id": p.slug, "slug": p.slug, "name": p.slug, "visibility": "private", "can_write": True}
        for p in projects]}})
