"""The `roar` console script.

It is the one place that turns errors into a one-line message and an exit code
(docs/exit-codes.md). For the verbs that trace a command it starts loading the
BPF object in the background (roar.tracer.preload) and parses the common form
itself (roar.cli.runargs), so a job does not pay for importing the CLI
framework; everything else goes to the Typer app in roar.cli.main.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from roar.errors import CorruptStore, RoarError

TRACING_VERBS = ("run", "build")


def main() -> NoReturn:
    verb = sys.argv[1] if len(sys.argv) > 1 else ""
    if verb in TRACING_VERBS:
        from roar.tracer import preload

        preload.start()
    try:
        sys.exit(_dispatch(verb))
    except RoarError as error:
        _fail(error)
    except KeyboardInterrupt:
        sys.stderr.write("roar: interrupted\n")
        sys.exit(130)
    except Exception as exc:
        _fail(_explain(exc))


def _dispatch(verb: str) -> int:
    if verb in TRACING_VERBS:
        from roar.cli import runargs

        parsed = runargs.parse_fast(sys.argv[2:])
        if parsed is not None:
            return runargs.execute(verb, **parsed)
    from roar.cli.main import app

    app()   # exits through SystemExit
    return 0


def _explain(exc: Exception) -> RoarError:
    """A one-line error for what escaped the commands (never a traceback)."""
    import sqlite3

    if isinstance(exc, sqlite3.OperationalError):
        return RoarError(f"the index .roar/roar.db: {exc}; try again")
    if isinstance(exc, sqlite3.DatabaseError):
        return CorruptStore(f"the index .roar/roar.db cannot be read ({exc}): run `roar db rebuild`")
    if isinstance(exc, PermissionError):
        return RoarError(f"permission denied: {exc.filename or exc}; run roar where you may read "
                         "and write, or with sudo")
    if os.environ.get("ROAR_DEBUG"):
        raise exc
    return RoarError(f"internal error ({exc.__class__.__name__}: {exc}); "
                     "rerun with ROAR_DEBUG=1 for the traceback and report it")


def _fail(error: RoarError) -> NoReturn:
    sys.stderr.write(f"roar: {error.message}\n")
    sys.exit(error.exit_code)
