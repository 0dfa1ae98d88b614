"""`roar run` and `roar build`: parse, call roar.runner, print the summary."""

from __future__ import annotations

import sys
from typing import List

import typer

from roar.errors import UsageError


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


def parse_size(text: str) -> int:
    """'16M', '64K', '1G' or bytes: a power of two of at least 4 KiB (the kernel's rule)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    number, unit = (text[:-1], units.get(text[-1:].upper())) if text[-1:].isalpha() else (text, 1)
    if unit is None or not number.isdigit():
        raise UsageError(f"bad size {text!r}: use a power of two like 64K, 16M or 1G")
    size = int(number) * unit
    if size < 4096 or size & (size - 1):
        raise UsageError(f"ring buffer size {text} must be a power of two of at least 4K, e.g. 16M")
    return size


def hash_algorithms(extra: List[str]) -> tuple[str, ...]:
    """blake3 always, plus each --hash algorithm hashlib knows."""
    import hashlib

    names = [name.lower() for name in extra]
    for name in names:
        if name != "blake3" and name not in hashlib.algorithms_available:
            raise UsageError(f"unknown hash algorithm {name!r}: use one of blake3, sha256, sha1, md5, sha512")
    return tuple(dict.fromkeys(["blake3", *names]))


def _run(kind: str, command: List[str], ring_buffer: str, hashes: List[str], verbose: bool,
         quiet: bool) -> None:
    from roar.runner import RunOptions, run_job

    options = RunOptions(kind=kind, ring_bytes=parse_size(ring_buffer), verbose=verbose,
                         hash_algorithms=hash_algorithms(hashes))
    result = run_job(list(command), options)
    if not quiet or result.record["warnings"]:
        sys.stderr.write(_summary(result.record) + "\n")
    raise typer.Exit(result.exit_code)


COMMAND = typer.Argument(None, metavar="[--] CMD [ARGS]...", help="The command to trace.")
RING = typer.Option("16M", "--ring-buffer", metavar="SIZE",
                    help="Kernel ring buffer size, a power of two (64K, 16M, ...).")
HASH = typer.Option([], "--hash", metavar="ALGORITHM",
                    help="Also hash inputs and outputs with ALGORITHM (sha256, ...); repeatable.")
VERBOSE = typer.Option(False, "--verbose", "-v", help="Show libbpf's and the verifier's log.")
QUIET = typer.Option(False, "--quiet", "-q", help="Print nothing unless there are warnings.")
CONTEXT = {"allow_interspersed_args": False, "ignore_unknown_options": True}


def register(app: typer.Typer) -> None:
    @app.command("run", context_settings=CONTEXT)
    def run_cmd(command: List[str] = COMMAND, ring_buffer: str = RING, hashes: List[str] = HASH,
                verbose: bool = VERBOSE, quiet: bool = QUIET) -> None:
        """Run CMD under the eBPF tracer (needs root: `sudo roar run ...`) and record it as a job.

        Exits with the command's own status (128+N when killed by signal N)."""
        _run("run", command or [], ring_buffer, hashes, verbose, quiet)

    @app.command("build", context_settings=CONTEXT)
    def build_cmd(command: List[str] = COMMAND, ring_buffer: str = RING, hashes: List[str] = HASH,
                  verbose: bool = VERBOSE, quiet: bool = QUIET) -> None:
        """Like `run`, but a build step (install, compile): shown as @B1, @B2 and replayed first."""
        _run("build", command or [], ring_buffer, hashes, verbose, quiet)
