"""Who the browser is: a Bearer token given once on the /login form, then kept in a cookie.

The cookie holds the token itself (the server keeps only its sha256, so there is nothing
else to look it up by). It is HttpOnly (no script can read it), SameSite=Strict (no other
site's page can make the browser send it), Secure when the page came over https, and a
session cookie: it ends when the browser closes. /login and /logout also refuse a POST
whose Origin (or Sec-Fetch-Site) names another site, so a foreign page cannot log the
browser in as someone else either. Without the cookie the browser is anonymous.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from roar.glaas.store import tokens
from roar.glaas.store.scope import ANONYMOUS, Principal

COOKIE = "glaas_token"
MAX_TOKEN = 256


def principal(request: Request, session: Session) -> tuple[Principal, bool]:
    """(who, whether a cookie was sent that no longer names a valid token)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return ANONYMOUS, False
    if len(token) > MAX_TOKEN:
        return ANONYMOUS, True
    who = tokens.principal(session, token)
    return (who, False) if who is not None else (ANONYMOUS, True)


def same_origin(request: Request) -> bool:
    """A form POST from one of this server's own pages."""
    fetch_site = request.headers.get("sec-fetch-site")   # set by the browser, not by pages
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:   # neither header: not a browser's cross-site form
        return True
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


def remember(response: Response, request: Request, token: str) -> None:
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")


def forget(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")
