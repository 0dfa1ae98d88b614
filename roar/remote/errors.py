"""The client's failures, with their exit codes (docs/register.md, docs/exit-codes.md): kept
in roar.errors with every other code, named here for the client's modules."""

from __future__ import annotations

from roar.errors import AuthRefused, ServerUnavailable

__all__ = ["AuthRefused", "ServerUnavailable"]
