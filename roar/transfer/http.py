"""Downloading one file over http:// or https:// (urllib: no extra dependency)."""

from __future__ import annotations

import base64
import shutil
import socket
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from roar import __version__
from roar.errors import ContextError
from roar.record.context.redact import strip_url

TIMEOUT_S = 30.0


def fetch(url: str, into: str) -> dict[str, Any]:
    """Write the body of `url` to the file `into`; return what the server said
    about it: {etag, last_modified, content_type}, and final_url after a redirect."""
    public = strip_url(url)
    request = _request(url)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, open(into, "wb") as out:
            expected = response.headers.get("Content-Length")
            shutil.copyfileobj(response, out, 1 << 20)
            written = out.tell()
            final = response.geturl()
            headers = response.headers
    except urllib.error.HTTPError as exc:
        raise ContextError(f"{public}: HTTP {exc.code} {exc.reason}; check the URL") from None
    except urllib.error.URLError as exc:
        reason = getattr(exc.reason, "strerror", None) or exc.reason
        raise ContextError(f"cannot reach {public}: {reason}; check the URL and the network") from None
    except (socket.timeout, TimeoutError):
        raise ContextError(f"{public}: no answer within {TIMEOUT_S:g} s; retry, or check the server") \
            from None
    except OSError as exc:
        raise ContextError(f"{public}: download failed ({exc.strerror or exc}); retry") from None
    if expected is not None and expected.isdigit() and int(expected) != written:
        raise ContextError(f"{public}: got {written} of {expected} bytes; retry the download")
    info = {"etag": headers.get("ETag"), "last_modified": headers.get("Last-Modified"),
            "content_type": headers.get("Content-Type")}
    if final != url:
        info["final_url"] = strip_url(final)
    return info


def _request(url: str) -> urllib.request.Request:
    """A request for `url`; a user:password in it becomes HTTP basic authentication."""
    headers = {"User-Agent": f"roar/{__version__}"}
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        userinfo = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(userinfo.encode()).decode()
        url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return urllib.request.Request(url, headers=headers)
