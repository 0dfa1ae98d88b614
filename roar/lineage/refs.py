"""Resolving what users type to name a session, a job or an artifact.

- `@N` / `@BN`: step N (build step N) of the current session;
- `session` (the current one), `session:N` (its number) or `session:ID` (id prefix);
- a job uid or unique prefix; an artifact digest (any algorithm) or unique prefix;
- a path: the latest artifact recorded at that path (docs/refs.md).
"""

from __future__ import annotations

import os
import sqlite3
import string
from dataclasses import dataclass

from roar.errors import AmbiguousRef, RefNotFound, UsageError
from roar.store import index

HEX = set(string.hexdigits.lower())
MAX_CANDIDATES = 10
MAX_NUMBER = 2**63 - 1   # SQLite's largest INTEGER: a bigger one cannot be a step or session


def step_name(step: int, kind: str) -> str:
    """How a step is named, and typed back as a ref: `@N`, `@BN` for a build step."""
    return f"@B{step}" if kind == "build" else f"@{step}"


@dataclass(frozen=True)
class Ref:
    kind: str      # session | job | artifact
    id: str        # session id, job uid or artifact hash
    path: str | None = None   # set when the ref was a path


def resolve(conn: sqlite3.Connection, ref: str, cwd: str | None = None) -> Ref:
    if not ref.strip():
        raise UsageError("an empty reference: give @N, session[:N], a job uid, an artifact hash or a path")
    if "://" in ref:
        return _url(conn, ref)
    if ref.startswith("@"):
        return Ref("job", _step(conn, ref))
    if ref == "session" or ref.startswith("session:"):
        return Ref("session", _session(conn, ref))
    looks_like_path = "/" in ref or os.path.lexists(os.path.join(cwd or os.getcwd(), ref))
    if looks_like_path:
        found = _path(conn, ref, cwd)
        if found:
            return found
    digits = ref.lower().rpartition(":")[2]
    if digits and set(digits) <= HEX:
        found = _prefix(conn, ref.lower())
        if found:
            return found
    if not looks_like_path:
        found = _path(conn, ref, cwd)
        if found:
            return found
    if looks_like_path:
        raise RefNotFound(f"{ref} was never recorded as an input or output of a job")
    raise RefNotFound(f"nothing matches {ref!r}: not a step, job uid, artifact hash or recorded path "
                      "(`roar log` lists the jobs)")


def _url(conn: sqlite3.Connection, ref: str) -> Ref:
    """A URL a get fetched or a put wrote: recorded as it is, never a local path."""
    found = _recorded(conn, ref)
    if found is None:
        raise RefNotFound(f"{ref} was never recorded as the source of a get or the target of a put")
    return found


def _step(conn: sqlite3.Connection, ref: str) -> str:
    build = ref[1:2].upper() == "B"
    number = ref[2:] if build else ref[1:]
    if not _is_number(number):
        raise RefNotFound(f"bad step reference {ref}: use @N or @BN, e.g. @1")
    session = index.current_session(conn)
    kind = "type = 'build'" if build else "type != 'build'"
    row = conn.execute(f"SELECT uid FROM jobs WHERE session_id = ? AND step = ? AND {kind}",
                       (session, _number(ref, number))).fetchone()
    if row is None:
        raise RefNotFound(f"no step {ref} in the current session: `roar log` lists the jobs")
    return row[0]


def _session(conn: sqlite3.Connection, ref: str) -> str:
    if ref == "session":
        current = index.current_session(conn)
        if current is None:
            raise RefNotFound("no session yet: it begins with the first `roar run`")
        return current
    key = ref.split(":", 1)[1].lower()
    if not key:
        raise UsageError("`session:` needs a session number or id prefix after the colon, e.g. session:2")
    rows = (conn.execute("SELECT id FROM sessions WHERE seq = ?", (_number(ref, key),)).fetchall()
            if _is_number(key) else [])
    rows = rows or conn.execute("SELECT id FROM sessions WHERE id >= ? AND id < ? ORDER BY seq",
                                (key, key + "g")).fetchall()
    if not rows:
        raise RefNotFound(f"no session {key!r}: `roar log` lists the jobs of every session")
    if len(rows) > 1:
        raise AmbiguousRef(f"{ref!r} matches several sessions: {', '.join(r[0] for r in rows)}")
    return rows[0][0]


def _is_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes "²", which int() refuses."""
    return text.isascii() and text.isdigit()


def _number(ref: str, digits: str) -> int:
    """The number in a ref, a UsageError when SQLite could not hold it."""
    # the length first: int() refuses more than 4300 digits
    if len(digits.lstrip("0")) > len(str(MAX_NUMBER)) or int(digits) > MAX_NUMBER:
        raise UsageError(f"{ref[:40]}{'...' if len(ref) > 40 else ''} is too large: steps and sessions "
                         f"are numbered from 1 to at most {MAX_NUMBER}")
    return int(digits)


def _prefix(conn: sqlite3.Connection, ref: str) -> Ref | None:
    algorithm, _, prefix = ref.rpartition(":")
    upper = prefix + "g"   # digests are lowercase hex: every one starting with prefix sorts below
    candidates: list[Ref] = []
    if not algorithm:
        candidates += [Ref("job", r[0]) for r in conn.execute(
            "SELECT uid FROM jobs WHERE uid >= ? AND uid < ? ORDER BY uid LIMIT ?",
            (prefix, upper, MAX_CANDIDATES + 1))]
    query = "SELECT DISTINCT artifact FROM artifact_hashes WHERE digest >= ? AND digest < ?"
    params: tuple = (prefix, upper)
    if algorithm:
        query += " AND algorithm = ?"
        params += (algorithm,)
    query += f" LIMIT {MAX_CANDIDATES + 1}"
    candidates += [Ref("artifact", r[0]) for r in conn.execute(query, params)]
    if len(candidates) > 1:
        listed = ", ".join(f"{c.kind} {c.id}" for c in candidates[:MAX_CANDIDATES])
        more = " and more" if len(candidates) > MAX_CANDIDATES else ""
        raise AmbiguousRef(f"{ref!r} matches several: {listed}{more}; give more characters")
    return candidates[0] if candidates else None


def _path(conn: sqlite3.Connection, ref: str, cwd: str | None) -> Ref | None:
    absolute = os.path.abspath(os.path.join(cwd or os.getcwd(), ref))
    for path in dict.fromkeys((os.path.realpath(absolute), absolute)):
        found = _recorded(conn, path)
        if found:
            return found
    return None


def _recorded(conn: sqlite3.Connection, path: str) -> Ref | None:
    """The latest artifact recorded at exactly `path` (a file path or a URL)."""
    row = conn.execute(
        "SELECT jf.artifact FROM job_files jf JOIN jobs j ON j.uid = jf.job WHERE jf.path = ?"
        " ORDER BY j.seq DESC, jf.role = 'output' DESC LIMIT 1", (index.db_path(path),)).fetchone()
    return Ref("artifact", row[0], path) if row else None
