"""What a SRC or DEST string names: an http(s) URL, an s3:// object or prefix, or a local path."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from roar.errors import UsageError
from roar.record.context.redact import strip_url

SCHEMES = ("http", "https", "file", "s3")


@dataclass(frozen=True)
class Location:
    scheme: str          # http | https | file | s3
    url: str             # as given (may hold credentials: never record it)
    path: str = ""       # file: absolute local path; s3: the key (or prefix)
    bucket: str = ""     # s3 only

    @property
    def public(self) -> str:
        """The URL safe to record and print: credentials and secret query parameters removed."""
        return "file://" + self.path if self.scheme == "file" else strip_url(self.url)


def parse(text: str, allowed: tuple[str, ...] = SCHEMES) -> Location:
    """A Location; a string without a scheme is a local path (file://)."""
    if "://" not in text:
        loc = Location("file", text, os.path.abspath(text))
    else:
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme == "file":
            if parts.netloc not in ("", "localhost"):
                raise UsageError(f"{text}: file:// URLs must be local (file:///path)")
            loc = Location("file", text, os.path.abspath(unquote(parts.path)))
        elif scheme == "s3":
            if not parts.netloc:
                raise UsageError(f"{text}: an s3 URL needs a bucket: s3://BUCKET/KEY")
            loc = Location("s3", text, parts.path.lstrip("/"), parts.netloc)
        else:
            loc = Location(scheme, text)
    if loc.scheme not in allowed:
        raise UsageError(f"unsupported location {strip_url(text)}: use one of "
                         + ", ".join(f"{s}://" for s in allowed))
    return loc
