"""Text for a terminal: control characters escaped, so that a file name, command or
label from the workspace can neither drive the terminal nor fake a line. No heavy
imports: `roar run` prints its summary and errors through it without Typer."""

from __future__ import annotations

import re
from typing import Any

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


def count(n: int, noun: str) -> str:
    """`1 job`, `2 jobs`: a count with its noun, singular or plural."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
