"""What every endpoint needs: a database session, the caller, and the reply envelope."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from roar.glaas.store import tokens
from roar.glaas.store.errors import Unauthorized
from roar.glaas.store.scope import ANONYMOUS, Principal


def db(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


@dataclass(frozen=True)
class Caller:
    who: Principal
    rs_token: str | None = None   # Authorization: RegistrationSession <token>


def caller(request: Request, authorization: Annotated[str | None, Header()] = None) -> Caller:
    """Anonymous without a header; a Bearer token must be known and not revoked."""
    if not authorization:
        return Caller(ANONYMOUS)
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "registrationsession" and value:
        return Caller(ANONYMOUS, rs_token=value)
    if scheme.lower() == "bearer" and value:
        with request.app.state.sessions() as session:
            who = tokens.principal(session, value)
        if who is None:
            raise Unauthorized("unknown or revoked token: ask the server's admin for one "
                               "(roar glaas token create)")
        return Caller(who)
    if scheme.lower() == "signature":
        raise Unauthorized("SSH signature authentication is not enabled on this server: use a Bearer token")
    raise Unauthorized(f"unsupported Authorization scheme {scheme!r}: use Bearer <token>")


def ok(data: object, status: int = 200) -> JSONResponse:
    return JSONResponse({"success": True, "data": data}, status_code=status)


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


DB = Annotated[Session, Depends(db)]
Who = Annotated[Caller, Depends(caller)]
