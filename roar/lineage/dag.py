"""The DAG of one session as Python objects, for the text, dot and Mermaid pictures
and for tests: job and artifact nodes, the edges between them, which job fed which,
and what is stale. It is read from the facts the index keeps (roar.store.index);
`roar status` and `roar dag --json` read those facts directly and never build it.

An output is stale when an input it was made from has since been re-made by
a later job of the session with other content, has changed on disk, or was
itself made by a stale job (docs/lineage.md, roar.lineage.facts).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from roar.lineage import facts
from roar.lineage.refs import step_name
from roar.store.index import from_db_path

if TYPE_CHECKING:
    from roar.lineage.disk import DiskCheck


@dataclass(slots=True)
class JobNode:
    uid: str
    step: int
    type: str
    command: str
    status: str | None
    exit_code: int | None
    started_at: float | None
    inputs: list[tuple[str, str]] = field(default_factory=list)    # (path, artifact)
    outputs: list[tuple[str, str]] = field(default_factory=list)
    fed_by: dict[str, str] = field(default_factory=dict)            # input artifact -> producer uid
    stale: list[str] = field(default_factory=list)                  # reasons
    position: int = 0                                               # index in Dag.jobs

    @property
    def name(self) -> str:
        return step_name(self.step, self.type)


@dataclass(slots=True)
class ArtifactNode:
    hash: str
    kind: str
    size: int | None
    paths: list[str] = field(default_factory=list)
    producers: list[str] = field(default_factory=list)
    consumers: list[str] = field(default_factory=list)
    stale: bool = False
    member_of: str | None = None   # the composite output of the session it came in

    @property
    def source(self) -> bool:
        return not self.producers


@dataclass
class Dag:
    session: dict[str, Any] | None
    jobs: list[JobNode]
    artifacts: dict[str, ArtifactNode]
    final: list[tuple[str, str, str]] = field(default_factory=list)   # (path, artifact, uid)

    def job(self, uid: str) -> JobNode:
        return self._by_uid[uid]

    def __post_init__(self) -> None:
        self._by_uid = {j.uid: j for j in self.jobs}

    def final_outputs(self) -> list[tuple[str, str, JobNode]]:
        """(path, artifact, job) of the latest outputs no later job of the session read
        (what the session made), in job order."""
        return [(path, art, self._by_uid[uid]) for path, art, uid in self.final]


def session_row(conn: sqlite3.Connection, session_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT id, seq, started_at, ended_at FROM sessions WHERE id = ?",
                       (session_id,)).fetchone()
    return dict(zip(("id", "seq", "started_at", "ended_at"), row, strict=True)) if row else None


def build(conn: sqlite3.Connection, session_id: str | None, disk: "DiskCheck | None" = None) -> Dag:
    """The session's DAG with staleness; `disk` compares inputs with their files now."""
    if session_id is None:
        return Dag(None, [], {})
    jobs = [JobNode(*row) for row in conn.execute(
        "SELECT uid, step, type, command, status, exit_code, started_at FROM jobs"
        " WHERE session_id = ? ORDER BY seq", (session_id,))]
    by_uid = {}
    for i, job in enumerate(jobs):
        job.position = i
        by_uid[job.uid] = job
    artifacts, final = _files(conn, session_id, by_uid)
    for job in jobs:   # a producer is an earlier job (PRODUCER): the job graph has no cycle
        assert all(by_uid[p].position < job.position for p in job.fed_by.values() if p in by_uid), job.uid
    for art, comp in facts.member_of(conn, session_id).items():
        if art in artifacts:
            artifacts[art].member_of = comp
    for uid, reasons in facts.stale_jobs(conn, session_id, disk).items():
        job = by_uid[uid]
        job.stale = reasons
        for _, art in job.outputs:
            artifacts[art].stale = True
    return Dag(session_row(conn, session_id), jobs, artifacts, final)


def _files(conn: sqlite3.Connection, session_id: str,
           by_uid: dict[str, JobNode]) -> tuple[dict[str, ArtifactNode], list[tuple[str, str, str]]]:
    """The artifact nodes, with the jobs' inputs and outputs filled in, and the final outputs."""
    kinds = facts.composites(conn, session_id)
    artifacts: dict[str, ArtifactNode] = {}
    final = []
    rows = conn.execute(
        "SELECT job, role = 'input', path, artifact, size, producer, rewritten = 0 AND read_later = 0, remote"
        " FROM job_files WHERE session_id = ? AND composite IS NULL ORDER BY seq, role, path", (session_id,))
    for uid, is_input, path, art, size, producer, is_final, remote in rows:
        path = from_db_path(path)
        # a get's URL and a put's copy are nodes of their own, not the local artifact with those bytes
        key = f"location:{path}" if remote else art
        node = artifacts.get(key)
        if node is None:
            kind = "location" if remote else "composite" if art in kinds else "file"
            node = artifacts[key] = ArtifactNode(art, kind, size)
        if path not in node.paths:
            node.paths.append(path)
        job = by_uid[uid]
        if is_input:
            job.inputs.append((path, key))
            node.consumers.append(uid)
            if producer:
                job.fed_by[art] = producer
        else:
            job.outputs.append((path, key))
            node.producers.append(uid)
            if is_final and not remote:
                final.append((path, art, uid))
    return artifacts, final
