"""The DAG of one session, built from the index: job and artifact nodes, the
edges between them, which job fed which, and what is stale.

An output is stale when an input it was made from has since been re-made by
a later job of the session with other content, has changed on disk, or was
itself made by a stale job (docs/lineage.md).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from roar.lineage.disk import DiskCheck
from roar.store import index


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
    members_out: list[tuple[str, str, str]] = field(default_factory=list)  # (path, artifact, composite)
    fed_by: dict[str, str] = field(default_factory=dict)            # input artifact -> producer uid
    stale: list[str] = field(default_factory=list)                  # reasons
    position: int = 0                                               # index in Dag.jobs

    @property
    def name(self) -> str:
        return f"@B{self.step}" if self.type == "build" else f"@{self.step}"


@dataclass(slots=True)
class ArtifactNode:
    hash: str
    kind: str
    size: int | None
    paths: list[str] = field(default_factory=list)
    producers: list[str] = field(default_factory=list)
    consumers: list[str] = field(default_factory=list)
    stale: bool = False
    last_read: int = -1            # position of the last job that read it
    member_of: str | None = None   # the composite output of the session it came in

    @property
    def source(self) -> bool:
        return not self.producers


@dataclass
class Dag:
    session: dict[str, Any] | None
    jobs: list[JobNode]
    artifacts: dict[str, ArtifactNode]

    def job(self, uid: str) -> JobNode:
        return self._by_uid[uid]

    def __post_init__(self) -> None:
        self._by_uid = {j.uid: j for j in self.jobs}

    def latest_outputs(self) -> list[tuple[str, str, JobNode]]:
        """(path, artifact, job) for every path's last write in the session, in job order."""
        last: dict[str, tuple[str, str, JobNode]] = {}
        for job in self.jobs:
            for path, art in job.outputs:
                last.pop(path, None)
                last[path] = (path, art, job)
        return list(last.values())

    def final_outputs(self) -> list[tuple[str, str, JobNode]]:
        """Latest outputs that no later job of the session read: what the session made."""
        return [(path, art, job) for path, art, job in self.latest_outputs()
                if self.artifacts[art].last_read <= job.position]


def session_row(conn: sqlite3.Connection, session_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT id, seq, started_at, ended_at FROM sessions WHERE id = ?",
                       (session_id,)).fetchone()
    return dict(zip(("id", "seq", "started_at", "ended_at"), row)) if row else None


def build(conn: sqlite3.Connection, session_id: str | None, disk: DiskCheck | None = None) -> Dag:
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
    composites = set()
    for uid, path, art, comp in conn.execute(
            "SELECT jf.job, jf.path, jf.artifact, jf.composite FROM jobs j JOIN job_files jf ON jf.job = j.uid"
            " WHERE j.session_id = ? AND jf.composite IS NOT NULL AND jf.role = 'output'", (session_id,)):
        by_uid[uid].members_out.append((index.from_db_path(path), art, comp))
        composites.add(comp)
    composites.update(r[0] for r in conn.execute(
        "SELECT DISTINCT jf.composite FROM jobs j JOIN job_files jf ON jf.job = j.uid"
        " WHERE j.session_id = ? AND jf.composite IS NOT NULL AND jf.role = 'input'", (session_id,)))
    artifacts: dict[str, ArtifactNode] = {}
    rows = conn.execute(
        "SELECT jf.job, jf.role = 'input', jf.path, jf.artifact, jf.size FROM jobs j"
        " JOIN job_files jf ON jf.job = j.uid WHERE j.session_id = ? AND jf.composite IS NULL"
        " ORDER BY j.seq, jf.role, jf.path", (session_id,))
    for uid, is_input, path, art, size in rows:
        node = artifacts.get(art)
        if node is None:
            node = artifacts[art] = ArtifactNode(art, "composite" if art in composites else "file", size)
        if path not in node.paths:
            node.paths.append(path)
        job = by_uid[uid]
        if is_input:
            job.inputs.append((path, art))
            node.consumers.append(uid)
            node.last_read = job.position
        else:
            job.outputs.append((path, art))
            node.producers.append(uid)
    dag = Dag(session_row(conn, session_id), jobs, artifacts)
    _link_and_mark(dag, disk)
    return dag


def _link_and_mark(dag: Dag, disk: DiskCheck | None) -> None:
    """In job order: who fed each input, then whether the job is stale."""
    last_write: dict[str, tuple[int, str, str]] = {}     # path -> (job index, artifact, uid)
    for i, job in enumerate(dag.jobs):
        for path, art in job.outputs:
            last_write[path] = (i, art, job.uid)
        for path, art, _ in job.members_out:
            last_write[path] = (i, art, job.uid)
    producer_so_far: dict[str, str] = {}
    stale_jobs: set[str] = set()
    for i, job in enumerate(dag.jobs):
        for path, art in job.inputs:
            producer = producer_so_far.get(art)
            if producer:
                job.fed_by[art] = producer
                if producer in stale_jobs:
                    job.stale.append(f"{path} was made by {dag.job(producer).name}, which is stale")
            later = last_write.get(path)
            if later and later[0] > i and later[1] != art:
                job.stale.append(f"{path} was re-made by {dag.job(later[2]).name}")
            elif (not later or later[0] <= i) and disk and disk.changed(path, dag.artifacts[art]):
                job.stale.append(f"{path} changed on disk")
        for path, art in job.outputs:
            producer_so_far[art] = job.uid
        for _, art, comp in job.members_out:
            producer_so_far[art] = job.uid
            if art in dag.artifacts and dag.artifacts[art].member_of is None:
                dag.artifacts[art].member_of = comp
        if job.stale:
            stale_jobs.add(job.uid)
            for _, art in job.outputs:
                dag.artifacts[art].stale = True
