"""The `roar` command: a Typer app whose verbs live one module each.

roar.cli.entry is the console script: it prints errors and chooses exit codes
(docs/exit-codes.md). Heavy imports happen inside the commands, so `roar --help`
stays quick.
"""

from __future__ import annotations

import sys

import typer

app = typer.Typer(
    name="roar",
    help="Record what every command read and wrote, and how to make it again.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    """`roar 0.1.0, BPF object 1a2b3c4d5e6f7a8b, libbpf 1.1`: what a bug report needs."""
    if value:
        from roar import __version__
        from roar.errors import RoarError
        from roar.tracer import libbpf
        from roar.tracer.loader import object_id

        try:
            major, minor = libbpf.lib().version
            lib = f"libbpf {major}.{minor}"
        except RoarError:
            lib = "libbpf not found"
        sys.stdout.write(f"roar {__version__}, BPF object {object_id() or 'missing'}, {lib}\n")
        raise typer.Exit()


@app.callback()
def main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Print roar's version and exit.")) -> None:
    """Record what every command read and wrote, and how to make it again."""


def _register() -> None:
    from roar.cli import dag, db, doctor, get, label, log, put, reset, run, show, status

    for module in (run, show, get, put, status, dag, log, label, reset, db, doctor):
        module.register(app)


_register()
