"""Labels: key/value metadata on a session, job or artifact, with history.

Each change is a file under .roar/labels/ (written by Workspace) and a row of
`label_events`; the current labels are the latest value of each key, an
unset removes the key. Labels given to `roar run` are the job's first values.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from roar.errors import UsageError

KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/]*$")


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    """['k=v', ...] -> {k: v}; a pair without '=' or with a bad key is a UsageError."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"label {pair!r} has no '=': write key=value")
        check_key(key)
        result[key] = value
    if not result:
        raise UsageError("no labels given: write key=value ...")
    return result


def check_key(key: str) -> None:
    if not KEY.match(key):
        raise UsageError(f"bad label key {key!r}: use letters, digits and _ . - /")


def current(conn: sqlite3.Connection, kind: str, target: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for key, value in conn.execute(
            "SELECT key, value FROM label_events WHERE target_kind = ? AND target = ? ORDER BY at, id",
            (kind, target)):
        if value is None:
            labels.pop(key, None)
        else:
            labels[key] = value
    return labels


def history(conn: sqlite3.Connection, kind: str, target: str) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT at, key, value, origin FROM label_events WHERE target_kind = ? AND target = ?"
                        " ORDER BY at, id", (kind, target))
    return [{"at": at, "key": key, "value": value, "action": "unset" if value is None else "set",
             "origin": origin} for at, key, value, origin in rows]
