"""The environment a job started with, secrets redacted before anything is written.

roar knows one whole environment: the one it passes to execve for the root
process of the job. Which variables the tree read, with the value each process
got, comes from the tracer's getenv probes (record["env_read"], read_variables);
variables that later processes set but nobody read are not observed
(docs/context.md says why).

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


def read_variables(reads: dict[str, str | None], env: dict[str, str]) -> dict[str, str | None]:
    """record["env_read"]: each variable the tree read, by name, with the value it got
    (None when it was not set), redacted by the rules above with the ROAR_REDACT patterns
    of `env`, the root process's environment."""
    from roar.tracer.envread import without_python_hook

    extra = extra_patterns(env)
    reads = {name: without_python_hook(name, value) for name, value in reads.items()}
    return {name: None if reads[name] is None else
            REDACTED if is_secret_name(name, extra) else scrub_value(reads[name])
            for name in sorted(reads)}


def add_reads(record: dict[str, object], collector, tracer, env: dict[str, str]) -> None:
    """Put `env_read` in a traced job's record, unless no getenv probe was attached; say in
    `warnings` what was not observed or not kept whole."""
    warnings: list[str] = record["warnings"]   # type: ignore[assignment]
    if tracer.env_read_note:
        warnings.append(f"variables read: {tracer.env_read_note}")
    if tracer.env_read_libcs:
        record["env_read"] = read_variables(collector.env_read, env)
        warnings += collector.env_cut
