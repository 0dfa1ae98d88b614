"""Helpers the CLI modules share: JSON on stdout, and the --json option."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

JSON = typer.Option(False, "--json", help="Print JSON (fields in docs/json.md).")


def emit_json(value: Any) -> None:
    """Indented on a terminal; one compact line otherwise (much faster for big graphs)."""
    indent = 2 if sys.stdout.isatty() else None
    sys.stdout.write(json.dumps(value, indent=indent, ensure_ascii=False, default=str) + "\n")


def emit_text(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
