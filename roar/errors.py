"""roar's error types and the exit codes the CLI maps them to.

Library code raises a RoarError whose message says what is wrong and what to
do; only the CLI prints it (one line, no traceback) and exits with its code.
The codes are documented in docs/exit-codes.md; a test keeps the two in step.
"""

from __future__ import annotations


class RoarError(Exception):
    exit_code = 1

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class UsageError(RoarError):
    """Bad arguments: an empty command, a label without '=', ..."""

    exit_code = 2


class RefNotFound(RoarError):
    exit_code = 3


class AmbiguousRef(RoarError):
    exit_code = 4


class CorruptStore(RoarError):
    """A record or the index cannot be read."""

    exit_code = 5


class NotAWorkspace(RoarError):
    exit_code = 6


class ContextError(RoarError):
    """get/put: unreachable URL, missing source, checksum mismatch, DEST exists."""

    exit_code = 7


class Untrusted(RoarError):
    """Refused for safety: a workspace, link, repository or sudo identity that
    someone else may have planted (docs/security.md)."""

    exit_code = 8


class WorkspaceUnwritable(RoarError):
    exit_code = 120


class NoPrivilege(RoarError):
    """Not root and no CAP_BPF + CAP_PERFMON."""

    exit_code = 121


class KernelUnsupported(RoarError):
    """No BTF, BPF load or attach refused by the kernel."""

    exit_code = 122


class LibbpfMissing(RoarError):
    exit_code = 123


class TracerError(RoarError):
    """A libbpf step failed for another reason."""

    exit_code = 124


class CommandNotExecutable(RoarError):
    exit_code = 126


class CommandNotFound(RoarError):
    exit_code = 127


class ReproduceRefused(RoarError):
    """reproduce --run will not start: a source input missing or changed, a commit that
    cannot be checked out, a distribution that cannot be installed, a --dir in use."""

    exit_code = 9


class StepFailed(RoarError):
    """reproduce --run: a step exited non-zero or ran past --step-timeout."""

    exit_code = 10


class NotReproduced(RoarError):
    """reproduce --verify: the requested artifact came out with other bytes (or not at all)."""

    exit_code = 11


class ServerUnavailable(RoarError):
    """GLaaS: no server configured, or it could not be reached (after the retries), answered
    5xx every time, or does not speak the GLaaS API."""

    exit_code = 12


class AuthRefused(RoarError):
    """GLaaS: the server refused the credentials (401) or the action (403)."""

    exit_code = 13


ALL_ERRORS: tuple[type[RoarError], ...] = (
    RoarError,
    UsageError,
    RefNotFound,
    AmbiguousRef,
    CorruptStore,
    NotAWorkspace,
    ContextError,
    Untrusted,
    WorkspaceUnwritable,
    NoPrivilege,
    KernelUnsupported,
    LibbpfMissing,
    TracerError,
    CommandNotExecutable,
    CommandNotFound,
    ReproduceRefused,
    StepFailed,
    NotReproduced,
    ServerUnavailable,
    AuthRefused,
)
