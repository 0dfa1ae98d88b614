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

from roar.errors import CorruptStore, NotAWorkspace, RoarError

TRACING_VERBS = ("run", "build")


def main() -> NoReturn:
    _standard_fds()
    verb = sys.argv[1] if len(sys.argv) > 1 else ""
    if verb in TRACING_VERBS and not _reruns():
        from roar.tracer import preload

        preload.start()
    try:
        code = _dispatch(verb)
        if verb in TRACING_VERBS:
            _exit_now(code)
        sys.exit(code)
    except RoarError as error:
        _fail(error)
    except KeyboardInterrupt:
        say("roar: interrupted\n")
        sys.exit(130)
    except Exception as exc:
        _fail(_explain(exc))


def _dispatch(verb: str) -> int:
    from roar import privilege

    if verb in TRACING_VERBS:
        from roar.cli import runargs

        parsed = runargs.parse_fast(sys.argv[2:])
        if parsed is not None:   # drops to the user once the tracer is attached
            return runargs.execute(verb, **parsed, rerun=runargs.reruns(sys.argv[2:]))
    # no other verb but doctor (which loads the tracer and touches no file of the user's)
    # needs root: under sudo, become the invoking user before anything else. `reproduce
    # --run` starts a `roar run` per step and does this itself (roar.reproduce.acting).
    user = privilege.invoking_user()
    if user and verb != "doctor" and not (verb == "reproduce" and "--run" in sys.argv[2:]):
        privilege.drop(user)
    from roar.cli.main import app

    app()   # exits through SystemExit
    return 0


def _exit_now(code: int) -> NoReturn:
    """End a traced job without the interpreter's teardown (~10 ms of every job): by now the
    record is written and synced, the index committed, and every thread and process of the
    job's is done. Only the standard streams may still hold output."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code & 0xFF)


def _reruns() -> bool:
    """`roar run @N`: the job is looked up as the invoking user first, and a change of
    ids must not meet the preload thread loading the object as root."""
    from roar.cli import runargs

    return runargs.reruns(sys.argv[2:])


def _standard_fds() -> None:
    """Occupy a closed fd 0, 1 or 2 (`2>&-`) with /dev/null: else roar's next file
    would take its number and get its writes (libbpf's messages into the index...).
    Close-on-exec, so the command still finds it closed."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)   # the lowest free number: fd
    if sys.stdout is None:
        sys.stdout = open(1, "w", closefd=False)
    if sys.stderr is None:
        sys.stderr = open(2, "w", closefd=False, errors="backslashreplace")


def say(text: str) -> None:
    """Write to stderr. One that is gone (a closed pipe) is no reason to fail, nor to
    change the exit status: the job already ran and its status is what counts."""
    stream = sys.stderr
    if stream is None:
        return
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        sys.stderr = None   # nor at exit, where a failed flush would turn any status into 120


def _explain(exc: Exception) -> RoarError:
    """A one-line error for what escaped the commands (never a traceback)."""
    import sqlite3

    if isinstance(exc, sqlite3.OperationalError):
        return RoarError(f"the index .roar/roar.db: {exc}; try again")
    if isinstance(exc, sqlite3.DatabaseError):
        return CorruptStore(f"the index .roar/roar.db cannot be read ({exc}): run `roar db rebuild`")
    if isinstance(exc, FileNotFoundError) and exc.filename is None and not _cwd_exists():
        return NotAWorkspace("the current directory was deleted: cd to an existing directory")
    if isinstance(exc, PermissionError):
        return RoarError(f"permission denied: {exc.filename or exc}; run roar where you may read "
                         "and write, or with sudo")
    if os.environ.get("ROAR_DEBUG"):
        raise exc
    return RoarError(f"internal error ({exc.__class__.__name__}: {exc}); "
                     "rerun with ROAR_DEBUG=1 for the traceback and report it")


def _cwd_exists() -> bool:
    try:
        os.getcwd()
        return True
    except OSError:
        return False


def _fail(error: RoarError) -> NoReturn:
    from roar.cli.printable import printable

    say(f"roar: {printable(error.message)}\n")   # a message may name a file: one line, no escapes
    sys.exit(error.exit_code)
