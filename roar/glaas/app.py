"""The GLaaS FastAPI application: routers under /api/v1, the body-size cap, and the
one place refusals become HTTP replies ({"success": false, "detail": "..."}).

Every refusal is one line that says what to do: a StoreError keeps its status, a payload
that does not fit the schema is 422, a body over the cap 413, an unknown route 404
"Endpoint not found". An unexpected error is logged and answered 500 without detail."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from roar import __version__
from roar.glaas.store.errors import StoreError

PREFIX = "/api/v1"
MAX_BODY = 16 << 20   # a 1,000-job batch with its metadata fits; the schema caps each field
log = logging.getLogger("roar.glaas")


def _fail(status: int, message: str) -> JSONResponse:
    return JSONResponse({"success": False, "detail": message, "error": {"message": message}},
                        status_code=status)


class BodyLimit:
    """413 for a body over the cap, declared (Content-Length) or streamed (chunked)."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_big = _fail(413, f"request body over {self.limit} bytes: send it in smaller batches")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _drain(receive, 4 * self.limit)
            return await too_big(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooBig()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooBig:
            await _drain(receive, 4 * self.limit)
            await too_big(scope, receive, send)


class _TooBig(Exception):
    pass


async def _drain(receive, most: int) -> None:
    """Read (and drop) the rest of a refused body, up to `most` bytes: a client still
    sending when the reply comes would see a reset connection, not the 413."""
    seen = 0
    while seen <= most:
        message = await receive()
        seen += len(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body"):
            return


def _one_line(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    more = len(exc.errors()) - 3
    return "invalid request: " + "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def create_app(engine, max_body: int = MAX_BODY, session_ttl: float | None = None) -> FastAPI:
    from roar.glaas.api import artifacts, auth, health, jobs, labels, legacy, registration, sessions
    from roar.glaas.db import read_sessionmaker_for, sessionmaker_for

    app = FastAPI(title="GLaaS (roar)", version=__version__, openapi_url=f"{PREFIX}/openapi.json",
                  docs_url=None, redoc_url=None)   # FastAPI's docs pages load Swagger from a CDN
    app.state.sessions = sessionmaker_for(engine)
    app.state.read_sessions = read_sessionmaker_for(engine)   # GET and HEAD: they only read
    app.state.session_ttl = session_ttl   # seconds a registration session stays open (None: 24 h)
    for module in (health, auth, registration, legacy, artifacts, jobs, sessions, labels):
        app.include_router(module.router, prefix=PREFIX)
    from roar.glaas import web

    web.mount(app)   # the web pages (docs/web.md), outside /api/v1

    @app.exception_handler(StoreError)
    async def _store(_request: Request, exc: StoreError):
        return _fail(exc.status, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError):
        return _fail(422, _one_line(exc))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        if exc.status_code == 404:
            return _fail(404, f"Endpoint not found: {request.method} {request.url.path}")
        if exc.status_code == 405:
            return _fail(405, f"{request.method} is not allowed on {request.url.path}")
        return _fail(exc.status_code, str(exc.detail))

    @app.exception_handler(OperationalError)
    async def _database(_request: Request, exc: OperationalError):
        log.error("database error: %s", exc)
        return _fail(503, "the database is unavailable: try again")

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception):
        log.exception("unexpected error")
        return _fail(500, "internal server error")

    app.add_middleware(BodyLimit, limit=max_body)
    return app
