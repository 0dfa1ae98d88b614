"""`roar run` and `roar build` in the Typer app: help, and every invocation the
fast parser in runargs.py hands over. The options come from runargs.OPTIONS."""

from __future__ import annotations

from typing import List

import typer

from roar.cli import runargs

CONTEXT = {"allow_interspersed_args": False, "ignore_unknown_options": True}
COMMAND = typer.Argument(None, metavar="[--] CMD [ARGS]...", help="The command to trace.")
_OPT = {param: typer.Option(default, *names, help=help_, metavar="SIZE" if param == "ring_buffer" else None)
        for names, param, _value, default, help_ in runargs.OPTIONS}


def register(app: typer.Typer) -> None:
    @app.command("run", context_settings=CONTEXT)
    def run_cmd(command: List[str] = COMMAND, ring_buffer: str = _OPT["ring_buffer"],
                hashes: List[str] = _OPT["hashes"], labels: List[str] = _OPT["labels"],
                verbose: bool = _OPT["verbose"], quiet: bool = _OPT["quiet"],
                no_hold: bool = _OPT["no_hold"]) -> None:
        """Run CMD under the eBPF tracer (needs root: `sudo roar run ...`) and record it as a job.

        `roar run @N` (or a job uid) runs a recorded job's command again in its recorded working
        directory (`roar run -- @N` runs a command named @N). Exits with the command's own status
        (128+N when killed by signal N)."""
        raise typer.Exit(runargs.execute("run", command or [], ring_buffer, hashes, verbose, quiet, labels,
                                         no_hold=no_hold))

    @app.command("build", context_settings=CONTEXT)
    def build_cmd(command: List[str] = COMMAND, ring_buffer: str = _OPT["ring_buffer"],
                  hashes: List[str] = _OPT["hashes"], labels: List[str] = _OPT["labels"],
                  verbose: bool = _OPT["verbose"], quiet: bool = _OPT["quiet"],
                  no_hold: bool = _OPT["no_hold"]) -> None:
        """Like `run`, for a step that sets the work up (install, compile): numbered apart, as @B1, @B2,
        so that a recipe can put the build steps before the run steps."""
        raise typer.Exit(runargs.execute("build", command or [], ring_buffer, hashes, verbose, quiet,
                                         labels, no_hold=no_hold))
