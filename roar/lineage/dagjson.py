"""`roar dag --json`, streamed: the session's graph written as JSON straight from the
index rows (docs/json.md), without building the graph as objects first.

The shape is that of roar.lineage.dagformat for the other formats: {"session",
"nodes": [jobs in order, then artifact versions in order of first appearance],
"edges", "job_edges"}. One pass over the session's file rows (in job order) writes
the edges and keeps, per artifact version (roar.lineage.dag), only what its node
needs (size, the job that made it, its paths as JSON text).
"""

from __future__ import annotations

import json
import sqlite3
from typing import IO

from roar.lineage.dag import location_key, version_key
from roar.lineage.facts import composites, member_of
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
    edges, fed, versions = _edges(conn, session_id)
    kinds = composites(conn, session_id)
    members = member_of(conn, session_id)
    nodes = []
    for node_id, (art, size, producer, path, more, location) in versions.items():
        kind = "location" if location else "composite" if art in kinds else "file"
        nodes.append(f'{{"id": {node_id}, "kind": "{kind}", "hash": "{art}", '
                     f'"producer": {"null" if producer is None else _quote(producer)}, '
                     f'"size": {"null" if size is None else int(size)}, '
                     f'"paths": [{path if more is None else ", ".join([path, *more])}], '
                     f'"source": {"true" if producer is None else "false"}, '
                     f'"stale": {"true" if producer in stale else "false"}}}')
        comp = None if location else members.get((art, producer))
        if comp is not None:
            edges.append(f'{{"from": "artifact:{comp}@{producer}", "to": {node_id}, "role": "member"}}')
    _write_lines(out, jobs + nodes)
    del jobs, nodes
    out.write('\n],\n"edges": [\n')
    _write_lines(out, edges)
    out.write('\n],\n"job_edges": [\n')
    _write_lines(out, fed)
    out.write("\n]}\n")


def _edges(conn: sqlite3.Connection, session_id: str) -> tuple[list[str], list[str], dict[str, list]]:
    """(edge lines, job-edge lines, {node id as JSON: [artifact, size, the job that made this
    version or None, first path as JSON, the other paths or None, a remote location]}), in one
    pass over the rows in job order. A node is one version of an artifact (roar.lineage.dag:
    HASH, HASH@UID, location:URL, location:URL@UID): an input is the version its producer
    made, an output the version its job made, so every edge goes forward in job order."""
    edges: list[str] = []
    fed: list[str] = []
    fed_seen: set[tuple[str, str]] = set()
    versions: dict[str, list] = {}
    quote = _quote
    for uid, is_input, path, art, size, producer, remote in conn.execute(
            "SELECT job, role = 'input', path, artifact, size, producer, remote FROM job_files"
            " WHERE session_id = ? AND composite IS NULL ORDER BY seq, role, path", (session_id,)):
        made_by = None if is_input and remote else producer if is_input else uid
        quoted = quote(path) if path.__class__ is str else _path(path)
        if remote:
            shown = path if path.__class__ is str else path.decode("utf-8", "replace")
            node_id = quote(location_key(shown, made_by))
        else:
            node_id = f'"artifact:{version_key(art, made_by)}"'
        if is_input:
            edges.append(f'{{"from": {node_id}, "to": "job:{uid}", "path": {quoted}, "role": "input"}}')
            if made_by and (uid, art) not in fed_seen:
                fed_seen.add((uid, art))
                fed.append(f'{{"from": "job:{made_by}", "to": "job:{uid}", "artifact": "{art}"}}')
        else:
            edges.append(f'{{"from": "job:{uid}", "to": {node_id}, "path": {quoted}, "role": "output"}}')
        node = versions.get(node_id)
        if node is None:
            versions[node_id] = [art, size, made_by, quoted, None, bool(remote)]
        elif quoted != node[3]:
            if node[4] is None:
                node[4] = [quoted]
            elif quoted not in node[4]:
                node[4].append(quoted)
    return edges, fed, versions


def _write_lines(out: IO[str], lines: list[str]) -> None:
    """Comma-separated, CHUNK lines at a time."""
    for start in range(0, len(lines), CHUNK):
        out.write(("" if start == 0 else ",\n") + ",\n".join(lines[start:start + CHUNK]))
