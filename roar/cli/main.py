"""The `roar` command: a Typer app whose verbs live one module each.

roar.cli.entry is the console script: it prints errors and chooses exit codes
(docs/exit-codes.md). Heavy imports happen inside the commands, so `roar --help`
stays quick.
"""

from __future__ import annotations

import sys


def _import_typer_without_rich():
    """typer imports rich (~70 ms) whenever it is installed, to format help roar formats
    plainly (rich_markup_mode=None). Hide rich while typer loads: typer then keeps click's own
    formatting, and rich stays importable for anything else."""
    missing = object()
    saved = sys.modules.get("rich", missing)
    sys.modules["rich"] = None     # `import rich` raises ImportError while this is here
    try:
        import typer
    finally:
        if saved is missing:
            del sys.modules["rich"]
        else:
            sys.modules["rich"] = saved
    return typer


typer = _import_typer_without_rich()

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


# The one-line summaries of `roar --help`. Click cuts a docstring's first sentence at the
# terminal's width with "...", so each verb gets a summary short enough for 80 columns.
SUMMARIES = {
    "run": "Trace a command and record it as a job (needs root).",
    "build": "Like run, for a setup step (install, compile).",
    "show": "Show a job, an artifact or a session.",
    "get": "Fetch a file or URL and record where it came from.",
    "put": "Copy files to a location and record where they went.",
    "status": "The current session: its steps and what is stale.",
    "dag": "Draw the session's jobs and artifacts.",
    "log": "Recent jobs of every session, newest first.",
    "label": "Key=value labels on a session, job or artifact.",
    "reset": "Start a new session.",
    "db": "The workspace index (.roar/roar.db).",
    "doctor": "Say whether roar run will work here, and how to fix it.",
    "completion": "Print a shell completion script (bash or zsh).",
    "reproduce": "Print the recipe that remakes an artifact; run and verify it.",
    "diff": "Compare two jobs, or the jobs that made two artifacts.",
    "glaas": "Run and administer a GLaaS lineage server.",
    "register": "Publish an artifact's lineage to a GLaaS server.",
    "login": "Save a GLaaS server and token for register and show.",
    "logout": "Forget the saved GLaaS server and token.",
    "whoami": "Ask the GLaaS server who you are to it.",
}


# The modules of the verbs, in --help's order. Each imports only what its options need: httpx
# and the server are imported by the commands that use them, and completion reads the whole
# app only when a script is asked for.
VERB_MODULES = ("run", "show", "get", "put", "status", "dag", "log", "label", "reset", "db", "doctor",
                "reproduce", "diff", "glaas", "register", "login", "completion")


def _register() -> None:
    from importlib import import_module

    for name in VERB_MODULES:
        import_module(f"roar.cli.{name}").register(app)
    for info in (*app.registered_commands, *app.registered_groups):
        name = info.name or (info.callback.__name__ if info.callback else None)
        if name in SUMMARIES:
            info.short_help = SUMMARIES[name]


_register()
