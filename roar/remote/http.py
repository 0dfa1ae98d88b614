"""Requests to a GLaaS server (/api/v1), with retries, and refusals turned into RoarErrors.

- A connection that fails or breaks, a timeout, a 5xx reply and a 429 are retried with
  exponential backoff (0.25 s doubling, at most 4 s apart; ROAR_GLAAS_RETRIES attempts,
  default 6). Every call of the registration is idempotent on the server, so a repeat is
  harmless (a repeated POST /registration-sessions only opens a session nobody uses).
- {"success": true, "data": X} is unwrapped to X; a refusal's `detail` becomes the message.
- 401/403 are AuthRefused (exit 13), 404 RefNotFound (3), other 4xx a RoarError (1),
  5xx or no connection after the retries ServerUnavailable (12).
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

from roar import __version__
from roar.errors import RefNotFound, RoarError, UsageError
from roar.remote.config import check_transport
from roar.remote.errors import AuthRefused, ServerUnavailable

API = "/api/v1"
TIMEOUT_S = 30.0
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


def _attempts() -> int:
    raw = os.environ.get("ROAR_GLAAS_RETRIES", "6")
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise UsageError(f"ROAR_GLAAS_RETRIES={raw!r}: give a number of attempts from 1 to 100")
    return int(raw)


class NotFound(RefNotFound):
    """A 404 from the server (the caller usually words its own message)."""


class Conflict(RoarError):
    """A 409 from the server: an ambiguous prefix, labels changed meanwhile."""


class Client:
    """One server, one credential: a Bearer token, a registration session's token, or none."""

    def __init__(self, url: str, token: str | None = None, on_retry: Callable[[str], None] | None = None):
        import httpx

        if token:
            check_transport(url)
        self.url = url
        self.token = token
        self.rs_token: str | None = None
        self.on_retry = on_retry
        self.attempts = _attempts()
        headers = {"User-Agent": f"roar/{__version__}", "X-Roar-Version": __version__}
        self._http = httpx.Client(base_url=url + API, timeout=TIMEOUT_S, follow_redirects=False,
                                  headers=headers)
        self._errors = (httpx.TransportError,)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _headers(self, auth: bool) -> dict[str, str]:
        if not auth:
            return {}
        if self.rs_token:
            return {"Authorization": f"RegistrationSession {self.rs_token}"}
        if self.token:
            return {"Authorization": f"Bearer {self.token}"}
        return {}

    def get(self, path: str, params: dict | None = None, auth: bool = True) -> Any:
        return self.request("GET", path, params=params, auth=auth)

    def post(self, path: str, body: Any = None, auth: bool = True) -> Any:
        return self.request("POST", path, body=body, auth=auth)

    def request(self, method: str, path: str, body: Any = None, params: dict | None = None,
                auth: bool = True) -> Any:
        delay = 0.25
        for attempt in range(1, self.attempts + 1):
            last = attempt == self.attempts
            try:
                reply = self._http.request(method, path, json=body, params=params,
                                           headers=self._headers(auth))
            except self._errors as exc:
                if last:
                    raise ServerUnavailable(f"cannot reach the GLaaS server at {self.url} ({_why(exc)}) "
                                            f"after {self.attempts} attempts: check the URL (roar whoami) "
                                            "and that the server runs") from None
                self._retrying(f"{_why(exc)}; retrying in {delay:g} s")
            else:
                if reply.status_code not in RETRY_STATUS or last:
                    return _unwrap(self.url, method, path, reply)
                self._retrying(f"HTTP {reply.status_code} from {path}; retrying in {delay:g} s")
            time.sleep(delay)
            delay = min(delay * 2, 4.0)
        raise AssertionError("unreachable")

    def _retrying(self, message: str) -> None:
        if self.on_retry:
            self.on_retry(message)


def _why(exc: Exception) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return text.splitlines()[0][:200]


def _detail(reply) -> str:
    try:
        doc = reply.json()
    except ValueError:
        return reply.text.strip().splitlines()[0][:200] if reply.text.strip() else reply.reason_phrase
    if isinstance(doc, dict):
        for key in ("detail", "message"):
            if isinstance(doc.get(key), str):
                return doc[key]
        err = doc.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"]
    return reply.reason_phrase


def _unwrap(url: str, method: str, path: str, reply) -> Any:
    status = reply.status_code
    if 200 <= status < 300:
        if not reply.content:
            return {}
        try:
            doc = reply.json()
        except ValueError:
            raise ServerUnavailable(f"{url} answered {method} {path} with something that is not JSON: "
                                    "is it a GLaaS server?") from None
        if isinstance(doc, dict) and doc.get("success") is True and "data" in doc:
            return doc["data"]
        return doc
    detail = _detail(reply)
    if status in (401, 403):
        raise AuthRefused(f"the GLaaS server at {url} refused: {detail}")
    if status == 404:
        if detail.startswith("Endpoint not found"):
            raise ServerUnavailable(f"{url} does not offer {method} {API}{path}: is it a GLaaS server "
                                    "(and a recent one)?")
        raise NotFound(detail)
    if status == 409:
        raise Conflict(f"the GLaaS server at {url} refused: {detail}")
    if status >= 500:
        raise ServerUnavailable(f"the GLaaS server at {url} failed (HTTP {status}: {detail}); "
                                "try again later")
    raise RoarError(f"the GLaaS server at {url} refused {method} {path} (HTTP {status}): {detail}")
