"""The client's failures, with their exit codes (docs/register.md, docs/exit-codes.md)."""

from __future__ import annotations

from roar.errors import RoarError


class ServerUnavailable(RoarError):
    """No server configured, or it could not be reached (after the retries), answered 5xx
    every time, or does not speak the GLaaS API."""

    exit_code = 12


class AuthRefused(RoarError):
    """The server refused the credentials (401) or the action (403)."""

    exit_code = 13
