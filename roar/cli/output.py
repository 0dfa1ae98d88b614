"""Helpers the CLI modules share: JSON on stdout, text with control characters escaped,
and the --json option."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import typer

JSON = typer.Option(False, "--json", help="Print JSON (fields in docs/json.md).")

# C0 (newline, tab, ESC, BEL, ...), DEL, C1 and lone surrogates: a file name, command or label
# holding one must not move the cursor, recolour or retitle the terminal, or fake a line.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in NAMED:
        return NAMED[char]
    if 0xDC80 <= code <= 0xDCFF:     # a byte that is not UTF-8 (os.fsdecode's surrogate escape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, keep: str = "") -> str:
    """`text` with every control character but those in `keep` escaped as Python writes
    it (`\\x1b`, `\\n`, `\\x07`); a non-UTF-8 byte of a file name shows as `\\xNN`."""
    if keep:
        return CONTROL.sub(lambda m: m.group() if m.group() in keep else _escape(m), text)
    return CONTROL.sub(_escape, text)


def printable_data(value: Any) -> Any:
    """A copy of `value` (dicts, lists, tuples of plain data) with every string printable:
    what text renderers get, so no field of a record can reach the terminal raw."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable_data(k): printable_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(printable_data(v) for v in value)
    return value


def emit_json(value: Any) -> None:
    """Indented on a terminal; one compact line otherwise (much faster for big graphs)."""
    indent = 2 if sys.stdout.isatty() else None
    sys.stdout.write(json.dumps(value, indent=indent, ensure_ascii=False, default=str) + "\n")


def emit_text(text: str) -> None:
    """Text for people: the renderers escape each field (so a newline in a name cannot
    fake a line); escaping here too keeps any field they missed from driving the terminal."""
    text = printable(text, keep="\n")
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
