"""The environment a job started with, secrets redacted before anything is written.

roar knows exactly one environment: the one it passes to execve for the root
process of the job. Variables that later processes set or change, and which
variables a program actually read, are not observed (docs/context.md says why).

A variable is redacted when its name is secret by the rules of
roar.record.context.redact, or when its name matches one of the
comma-separated, case-insensitive glob patterns in ROAR_REDACT (for example
`ROAR_REDACT="MY_INTERNAL_*,DB_DSN"`), taken from that same environment.
Whatever its name, every credential found in a value (a URL's user:password, a
well-known token format, a JWT, a connection string's `Password=`, a webhook
URL) is replaced, and a value holding a PEM private key is replaced whole.
"""

from __future__ import annotations

from roar.record.context.redact import REDACTED, is_secret_name, scrub_value

EXTRA_VARIABLE = "ROAR_REDACT"


def extra_patterns(env: dict[str, str]) -> list[str]:
    return [p.strip() for p in env.get(EXTRA_VARIABLE, "").split(",") if p.strip()]


def redacted(env: dict[str, str]) -> dict[str, str]:
    """The environment with every secret value replaced by "<redacted>" (or, for a
    URL with credentials, with its user:password part replaced)."""
    extra = extra_patterns(env)
    return {name: REDACTED if is_secret_name(name, extra) else scrub_value(env[name])
            for name in sorted(env)}


def capture(env: dict[str, str]) -> dict[str, object]:
    """context["environment"]: the root process's initial variables, redacted."""
    variables = redacted(env)
    return {
        "scope": "initial environment of the root process",
        "variables": variables,
        "redacted": [name for name, value in variables.items() if value != env[name]],
    }
