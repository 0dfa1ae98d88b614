"""`roar run` and `roar build`: parse, call roar.runner, print the summary."""

from __future__ import annotations

import sys
from typing import List

import typer


def _summary(record: dict) -> str:
    step = f"@B{record['step']}" if record["type"] == "build" else f"@{record['step']}"
    exit_ = record["exit"]
    how = f"exit {exit_['code']}" if exit_["signal"] is None else f"killed by signal {exit_['signal']}"
    if exit_["status"] == "interrupted":
        how += ", interrupted"
    lines = [f"roar: {step} {record['uid']}  {len(record['inputs'])} inputs, "
             f"{len(record['outputs'])} outputs, {how}"]
    lines += [f"roar: warning: {w}" for w in record["warnings"]]
    return "\n".join(lines)


def _run(kind: str, command: List[str], ring_buffer_mb: int, verbose: bool, quiet: bool) -> None:
    from roar.runner import RunOptions, run_job

    result = run_job(list(command), RunOptions(kind=kind, ring_mb=ring_buffer_mb, verbose=verbose))
    if not quiet or result.record["warnings"]:
        sys.stderr.write(_summary(result.record) + "\n")
    raise typer.Exit(result.exit_code)


COMMAND = typer.Argument(None, metavar="[--] CMD [ARGS]...", help="The command to trace.")
RING = typer.Option(16, "--ring-buffer-mb", help="Kernel ring buffer size (a power of two).")
VERBOSE = typer.Option(False, "--verbose", "-v", help="Show libbpf's and the verifier's log.")
QUIET = typer.Option(False, "--quiet", "-q", help="Print nothing unless there are warnings.")
CONTEXT = {"allow_interspersed_args": False, "ignore_unknown_options": True}


def register(app: typer.Typer) -> None:
    @app.command("run", context_settings=CONTEXT)
    def run_cmd(command: List[str] = COMMAND, ring_buffer_mb: int = RING, verbose: bool = VERBOSE,
                quiet: bool = QUIET) -> None:
        """Run CMD under the eBPF tracer (needs root: `sudo roar run ...`) and record it as a job.

        Exits with the command's own status (128+N when killed by signal N)."""
        _run("run", command or [], ring_buffer_mb, verbose, quiet)

    @app.command("build", context_settings=CONTEXT)
    def build_cmd(command: List[str] = COMMAND, ring_buffer_mb: int = RING, verbose: bool = VERBOSE,
                  quiet: bool = QUIET) -> None:
        """Like `run`, but a build step (install, compile): shown as @B1, @B2 and replayed first."""
        _run("build", command or [], ring_buffer_mb, verbose, quiet)
