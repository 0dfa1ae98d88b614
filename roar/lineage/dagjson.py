"""`roar dag --json`, streamed: the session's graph written as JSON straight from the
index rows (docs/json.md), without building the graph as objects first.

The shape is that of roar.lineage.dagformat for the other formats: {"session",
"nodes": [jobs in order, then artifacts in order of first appearance], "edges",
"job_edges"}. One pass over the session's file rows (in job order) writes the
edges and keeps, per artifact, only what its node needs (size, whether a job of
the session made it, its paths as JSON text).
"""

from __future__ import annotations

import json
import sqlite3
from typing import IO

from roar.lineage.facts import composites, member_of, stale_outputs
from roar.lineage.refs import step_name as name

_quote = json.encoder.c_encode_basestring or json.encoder.py_encode_basestring   # C: ~10x json.dumps

CHUNK = 20_000    # lines written at a time


def _path(value: str | bytes) -> str:
    """A path from the index as a JSON string: a name that is not UTF-8 (a BLOB) is shown
    with replacement characters, like `roar show --json`."""
    return _quote(value if isinstance(value, str) else value.decode("utf-8", "replace"))


def write(conn: sqlite3.Connection, session_id: str | None, stale: dict[str, list[str]],
          out: IO[str]) -> None:
    """The JSON of the session's graph to `out`; `stale` from roar.lineage.facts.stale_jobs."""
    if session_id is None:
        out.write('{"session": null, "nodes": [], "edges": [], "job_edges": []}\n')
        return
    sid, seq, started, ended = conn.execute(
        "SELECT id, seq, started_at, ended_at FROM sessions WHERE id = ?", (session_id,)).fetchone()
    session = {"id": sid, "started_at": started, "ended_at": ended, "number": seq}
    out.write(f'{{"session": {json.dumps(session)},\n"nodes": [\n')
    jobs = [json.dumps({"id": f"job:{uid}", "kind": "job", "uid": uid, "step": name(step, kind), "type": kind,
                        "command": command, "status": status, "exit_code": code,
                        "stale": uid in stale, "stale_reasons": stale.get(uid, [])}, ensure_ascii=False)
            for uid, step, kind, command, status, code in conn.execute(
                "SELECT uid, step, type, command, status, exit_code FROM jobs WHERE session_id = ?"
                " ORDER BY seq", (session_id,))]
    edges, fed, artifacts, locations = _edges(conn, session_id)
    made_stale = stale_outputs(conn, session_id, stale)
    kinds = composites(conn, session_id)
    nodes = [f'{{"id": "artifact:{art}", "kind": "{"composite" if art in kinds else "file"}", '
             f'"hash": "{art}", '
             f'"size": {"null" if size is None else int(size)}, '
             f'"paths": [{path if more is None else ", ".join([path, *more])}], '
             f'"source": {"false" if made else "true"}, "stale": {"true" if art in made_stale else "false"}}}'
             for art, (size, made, path, more) in artifacts.items()]
    nodes += [f'{{"id": {_quote("location:" + path)}, "kind": "location", "hash": "{art}", '
              f'"size": {"null" if size is None else int(size)}, "paths": [{_quote(path)}], '
              f'"source": {"false" if made else "true"}, "stale": false}}'
              for path, (size, art, made) in locations.items()]
    _write_lines(out, jobs + nodes)
    del jobs, nodes
    members = member_of(conn, session_id)
    edges += [f'{{"from": "artifact:{members[art]}", "to": "artifact:{art}", "role": "member"}}'
              for art in artifacts if art in members]
    out.write('\n],\n"edges": [\n')
    _write_lines(out, edges)
    out.write('\n],\n"job_edges": [\n')
    _write_lines(out, fed)
    out.write("\n]}\n")


def _edges(conn: sqlite3.Connection, session_id: str) -> tuple[list[str], list[str], dict[str, list],
                                                              dict[str, tuple]]:
    """(edge lines, job-edge lines, {artifact: [size, made in the session, first path as
    JSON, the other paths or None]}, {remote location: (size, artifact, made by a put)}), in
    one pass over the rows in job order. A get's URL and a put's copy are location nodes of
    their own, never the local artifact with the same bytes: so the graph has no cycle."""
    edges: list[str] = []
    fed: list[str] = []
    fed_seen: set[tuple[str, str]] = set()
    artifacts: dict[str, list] = {}
    locations: dict[str, tuple] = {}
    quote = _quote
    for uid, is_input, path, art, size, producer, remote in conn.execute(
            "SELECT job, role = 'input', path, artifact, size, producer, remote FROM job_files"
            " WHERE session_id = ? AND composite IS NULL ORDER BY seq, role, path", (session_id,)):
        if remote:
            path = path if path.__class__ is str else path.decode("utf-8", "replace")
            ends = (quote("location:" + path), f'"job:{uid}"')
            edges.append(f'{{"from": {ends[not is_input]}, "to": {ends[is_input]}, "path": {quote(path)}, '
                         f'"role": "{"input" if is_input else "output"}"}}')
            made = not is_input or locations.get(path, (0, 0, False))[2]
            locations[path] = (size, art, made)
            continue
        quoted = quote(path) if path.__class__ is str else _path(path)
        if is_input:
            edges.append(f'{{"from": "artifact:{art}", "to": "job:{uid}", "path": {quoted}, '
                         '"role": "input"}')
            if producer and (uid, art) not in fed_seen:
                fed_seen.add((uid, art))
                fed.append(f'{{"from": "job:{producer}", "to": "job:{uid}", "artifact": "{art}"}}')
        else:
            edges.append(f'{{"from": "job:{uid}", "to": "artifact:{art}", "path": {quoted}, '
                         '"role": "output"}')
        node = artifacts.get(art)
        if node is None:
            artifacts[art] = [size, not is_input, quoted, None]
            continue
        if not is_input:
            node[1] = True
        if quoted != node[2]:
            if node[3] is None:
                node[3] = [quoted]
            elif quoted not in node[3]:
                node[3].append(quoted)
    return edges, fed, artifacts, locations


def _write_lines(out: IO[str], lines: list[str]) -> None:
    """Comma-separated, CHUNK lines at a time."""
    for start in range(0, len(lines), CHUNK):
        out.write(("" if start == 0 else ",\n") + ",\n".join(lines[start:start + CHUNK]))
