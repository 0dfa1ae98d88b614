"""What every endpoint needs: a database session, the caller, and the reply envelope."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from roar.glaas.store import sshkeys, tokens
from roar.glaas.store.errors import Unauthorized
from roar.glaas.store.scope import ANONYMOUS, Principal

READS = frozenset({"GET", "HEAD"})


async def db(request: Request) -> AsyncIterator[Session]:
    """The request's database session. Made here, on the event loop (it connects only at its
    first query, in the endpoint's thread), and closed here: a sync generator would cost two
    more hops through the thread pool a request, about 0.5 ms of some 2 in all. Closing hands
    the connection back to the pool, which rolls it back: a no-op on SQLite after reads, one
    short round trip on PostgreSQL. A GET (or HEAD) only reads: its session is one that runs
    in autocommit on PostgreSQL (roar.glaas.db.read_sessionmaker_for), so it has neither."""
    state = request.app.state
    session = state.read_sessions() if request.method in READS else state.sessions()
    try:
        yield session
    finally:
        session.close()


@dataclass(frozen=True)
class Caller:
    who: Principal
    rs_token: str | None = None   # Authorization: RegistrationSession <token>


async def caller(request: Request, authorization: Annotated[str | None, Header()] = None) -> Caller:
    """Anonymous without a header; a Bearer token must be known and not revoked; an SSH
    signature must verify against a key a user registered (roar.glaas.store.sshkeys)."""
    if not authorization:
        return Caller(ANONYMOUS)
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "registrationsession" and value:
        return Caller(ANONYMOUS, rs_token=value)
    if scheme.lower() == "bearer" and value:
        who = await run_in_threadpool(_with_session, request, tokens.principal, value)
        if who is None:
            raise Unauthorized("unknown or revoked token: ask the server's admin for one "
                               "(roar glaas token create)")
        return Caller(who)
    if scheme.lower() == "signature":
        body = await request.body()   # kept by the request: the endpoint reads it again
        query = request.scope.get("query_string") or b""
        path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
        path += "?" + query.decode("latin-1") if query else ""
        return Caller(await run_in_threadpool(_with_session, request, sshkeys.principal, value,
                                              request.method, path, body))
    raise Unauthorized(f"unsupported Authorization scheme {scheme!r}: use Bearer <token>")


def _with_session(request: Request, fn, *args):
    with request.app.state.sessions() as session:
        return fn(session, *args)


def ok(data: object, status: int = 200) -> JSONResponse:
    return JSONResponse({"success": True, "data": data}, status_code=status)


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


DB = Annotated[Session, Depends(db)]
Who = Annotated[Caller, Depends(caller)]
