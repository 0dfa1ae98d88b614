"""Bearer tokens: created and revoked by the admin CLI, stored as sha256 only."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from roar.glaas.models import Member, Project, Token, User
from roar.glaas.store.errors import BadRequest, NotFound
from roar.glaas.store.scope import Principal

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PREFIX = "glaas_"


def now() -> datetime:
    return datetime.now(timezone.utc)


def aware(value: datetime) -> datetime:
    """SQLite gives back naive datetimes; they were written in UTC."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _get_or_create(session: Session, model, **key):
    row = session.scalar(select(model).filter_by(**key))
    if row is not None:
        return row
    try:
        with session.begin_nested():
            row = model(**key, created_at=now()) if hasattr(model, "created_at") else model(**key)
            session.add(row)
    except IntegrityError:   # made meanwhile by another process
        row = session.scalar(select(model).filter_by(**key))
    return row


def create(session: Session, user: str, project: str | None = None) -> tuple[str, str]:
    """(token id, the token). The token is shown once; only its sha256 is kept."""
    for what, name in (("user", user), ("project", project)):
        if name is not None and not NAME.match(name):
            raise BadRequest(f"bad {what} name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)")
    owner = _get_or_create(session, User, name=user)
    project_id = None
    if project is not None:
        proj = _get_or_create(session, Project, slug=project)
        project_id = proj.id
        if session.get(Member, (proj.id, owner.id)) is None:
            session.add(Member(project_id=proj.id, user_id=owner.id))
    token_id = "tok_" + secrets.token_hex(6)
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(Token(id=token_id, secret_sha256=sha256(token), user_id=owner.id, project_id=project_id,
                      created_at=now()))
    session.commit()
    return token_id, token


def revoke(session: Session, token_or_id: str) -> str:
    """Revoke by id (tok_...) or by the token itself; returns the id."""
    row = session.get(Token, token_or_id) or session.scalar(
        select(Token).where(Token.secret_sha256 == sha256(token_or_id)))
    if row is None:
        raise NotFound("no such token: give a token id (tok_...) as `roar glaas token create` printed it, "
                       "or the token itself")
    if row.revoked_at is None:
        row.revoked_at = now()
    session.commit()
    return row.id


def principal(session: Session, token: str) -> Principal | None:
    """Who holds this token, or None when it is unknown or revoked."""
    row = session.scalar(select(Token).where(Token.secret_sha256 == sha256(token)))
    if row is None or row.revoked_at is not None:
        return None
    user = session.get(User, row.user_id)
    member_of = frozenset(session.scalars(select(Member.project_id).where(Member.user_id == row.user_id)))
    return Principal(user_id=row.user_id, user_name=user.name if user else None, project_id=row.project_id,
                     member_of=member_of)
