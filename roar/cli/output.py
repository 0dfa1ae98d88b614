"""Helpers the CLI modules share: JSON on stdout, text with control characters escaped,
and the --json option."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from roar.cli.printable import printable, printable_data  # noqa: F401 (the CLI's one escaping)

JSON = typer.Option(False, "--json", help="Print JSON (fields in docs/json.md).")

def emit_json(value: Any) -> None:
    """Indented on a terminal; one compact line otherwise (much faster for big graphs)."""
    indent = 2 if sys.stdout.isatty() else None
    sys.stdout.write(json.dumps(value, indent=indent, ensure_ascii=False, default=str) + "\n")


def emit_text(text: str) -> None:
    """Text for people: the renderers escape each field (so a newline in a name cannot
    fake a line); escaping here too keeps any field they missed from driving the terminal."""
    text = printable(text, keep="\n")
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
