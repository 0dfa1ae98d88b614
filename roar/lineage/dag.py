"""The DAG of one session as Python objects, for the text, dot and Mermaid pictures
and for tests: job and artifact nodes, the edges between them, which job fed which,
and what is stale. It is read from the facts the index keeps (roar.store.index);
`roar status` and `roar dag --json` read those facts directly and never build it.

An artifact node is one *version* of an artifact: its bytes as one job of the
session made them, or as the session found them (a source). The same bytes made
twice (a `cp` whose output is its input's bytes, a file re-made with the bytes it
had before) are two nodes, so every edge goes from an earlier job to a later one
and the graph has no cycle (docs/lineage.md, "Artifact versions"). Node keys:

    HASH                 the bytes as the session found them (no earlier job of it wrote them)
    HASH@UID             the bytes as job UID wrote them (a file, a composite, or a member of one)
    location:URL         a URL a `roar get` fetched: always a source
    location:URL@UID     the copy `roar put` job UID placed there

What the renderers (roar.lineage.dagformat) read, for anyone building a Dag from
other facts: `Dag.session` ({"id", "seq"}), `Dag.jobs` in order, each a JobNode with
`uid`, `name`, `command`, `status`, `stale` (reasons), `inputs` and `outputs` as
(path, node key), `fed_by` {input node key: producer uid}; `Dag.artifacts`
{node key: ArtifactNode} with `hash`, `kind` (file, composite, location), `paths`,
`producers` (the job that made the version, or none), `stale` and `member_of` (the
key of the composite version it is a member of).

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


def version_key(artifact: str, producer: str | None) -> str:
    """The node of an artifact's bytes as `producer` made them (None: as the session found them)."""
    return artifact if producer is None else f"{artifact}@{producer}"


def location_key(location: str, producer: str | None) -> str:
    """The node of a remote location: fetched (a source) or placed by the put job `producer`."""
    return f"location:{location}" if producer is None else f"location:{location}@{producer}"


@dataclass(slots=True)
class JobNode:
    uid: str
    step: int
    type: str
    command: str
    status: str | None
    exit_code: int | None
    started_at: float | None
    inputs: list[tuple[str, str]] = field(default_factory=list)    # (path, node key)
    outputs: list[tuple[str, str]] = field(default_factory=list)
    fed_by: dict[str, str] = field(default_factory=dict)            # input node key -> producer uid
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
    producers: list[str] = field(default_factory=list)   # the job that made this version: one at most
    consumers: list[str] = field(default_factory=list)
    stale: bool = False
    member_of: str | None = None   # the key of the composite version this one is a member of

    @property
    def source(self) -> bool:
        return not self.producers

    @property
    def producer(self) -> str | None:
        """The job that made this version; None: a source of the session."""
        return self.producers[0] if self.producers else None


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


def session_row(conn: sqlite3.Connection, session_id: str) -> dict[str, Any]:
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
    members = facts.member_of(conn, session_id)
    for node in artifacts.values():
        comp = members.get((node.hash, node.producer))
        if comp is not None:
            node.member_of = version_key(comp, node.producer)
    check_acyclic(jobs, artifacts)
    stale = facts.stale_jobs(conn, session_id, disk)
    for uid, reasons in stale.items():
        by_uid[uid].stale = reasons
    for node in artifacts.values():
        node.stale = node.producer in stale
    return Dag(session_row(conn, session_id), jobs, artifacts, final)


def check_acyclic(jobs: list[JobNode], artifacts: dict[str, ArtifactNode]) -> None:
    """Every edge goes forward in job order, so the graph has no cycle: a job's inputs were
    made by earlier jobs (PRODUCER) or are sources, its outputs are versions it made, and a
    member version is made by the job that made its composite."""
    position = {job.uid: job.position for job in jobs}
    for job in jobs:
        for _, key in job.inputs:
            made_by = artifacts[key].producer
            assert made_by is None or position[made_by] < job.position, (job.uid, key)
        for _, key in job.outputs:
            assert artifacts[key].producer == job.uid, (job.uid, key)
    for key, node in artifacts.items():
        assert node.member_of is None or artifacts.get(node.member_of, node).producer == node.producer, key


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
        made_by = None if is_input else uid     # an input is the version its producer made
        if is_input and not remote:
            made_by = producer
        # a get's URL and a put's copy are nodes of their own, not the local artifact with those bytes
        key = location_key(path, made_by) if remote else version_key(art, made_by)
        node = artifacts.get(key)
        if node is None:
            kind = "location" if remote else "composite" if art in kinds else "file"
            node = artifacts[key] = ArtifactNode(art, kind, size, producers=[made_by] if made_by else [])
        if path not in node.paths:
            node.paths.append(path)
        job = by_uid[uid]
        if is_input:
            job.inputs.append((path, key))
            node.consumers.append(uid)
            if made_by:
                job.fed_by[key] = made_by
        else:
            job.outputs.append((path, key))
            if is_final and not remote:
                final.append((path, art, uid))
    return artifacts, final
