"""Publishing a finalized registration: a new DAG's artifacts, jobs and edges written in bulk,
a few multi-row statements per table instead of several statements per row (a 1,000-job
session was some 19,000 statements). Same rules as roar.glaas.store.writes: artifacts and
their digests are insert-if-absent on their unique keys, so two servers publishing DAGs that
share artifacts at once end with one row each; a job uid already in another DAG is refused."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from roar.glaas.models import Artifact, ArtifactHash, Dag, DagArtifact, Job, JobIO
from roar.glaas.store.errors import Conflict
from roar.glaas.store.tokens import now
from roar.glaas.store.writes import primary_digest

CHUNK = 500   # rows per statement: well under SQLite's bound-parameter limit


def _chunks(rows: list, size: int = CHUNK) -> Iterator[list]:
    for i in range(0, len(rows), size):
        yield rows[i:i + size]


def _insert_ignore(session: Session, model, rows: list[dict], keys: list[str]) -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    for part in _chunks(rows):
        session.execute(dialect.insert(model).values(part).on_conflict_do_nothing(index_elements=keys))


def _ids(session: Session, digests: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in _chunks(sorted(set(digests))):
        out.update(session.execute(select(Artifact.hash, Artifact.id).where(Artifact.hash.in_(part))).all())
    return out


def _artifacts(session: Session, staged: list[dict],
               jobs: list[dict]) -> tuple[dict[str, int], dict[str, dict]]:
    """Make the artifacts this DAG names; (digest -> id, digest -> the staged entry)."""
    entries: dict[str, dict] = {}
    hashes: dict[str, list[dict]] = {}
    for body in staged:
        algorithms = body.get("hashes") or [{"algorithm": "blake3", "digest": body["hash"]}]
        digest = body.get("hash") or primary_digest(algorithms)
        entries[digest], hashes[digest] = body, algorithms
    for job in jobs:
        for e in (*job["inputs"], *job["outputs"]):
            hashes.setdefault(e["hash"], [{"algorithm": "blake3" if len(e["hash"]) == 64 else "unknown",
                                           "digest": e["hash"]}])
    stamp = now()
    _insert_ignore(session, Artifact, [{"hash": d, "size": entries.get(d, {}).get("size"),
                                        "is_composite": bool(entries.get(d, {}).get("components")),
                                        "registered_at": stamp} for d in hashes], ["hash"])
    ids = _ids(session, hashes)
    composites = [ids[d] for d, body in entries.items() if body.get("components")]
    for part in _chunks(composites):
        session.execute(update(Artifact).where(Artifact.id.in_(part)).values(is_composite=True))
    digests = [{"artifact_id": ids[d], "algorithm": h["algorithm"], "digest": h["digest"]}
               for d, algorithms in hashes.items() for h in algorithms]
    _insert_ignore(session, ArtifactHash, digests, ["algorithm", "digest"])
    return ids, entries


def publish(session: Session, dag_row: Dag, staged_artifacts: list[dict], jobs: list[dict]) -> None:
    """Write a DAG that this transaction just created: its artifacts, jobs and edges."""
    uids = [j["job_uid"] for j in jobs]
    for part in _chunks(uids):
        taken = session.scalars(select(Job.job_uid).where(Job.job_uid.in_(part)).limit(1)).first()
        if taken is not None:
            raise Conflict(f"job {taken} already belongs to another DAG: a job can belong to only one DAG")
    ids, entries = _artifacts(session, staged_artifacts, jobs)
    rows = {}
    for digest, art_id in ids.items():
        body = entries.get(digest, {})
        rows[art_id] = {"dag_id": dag_row.id, "artifact_id": art_id, "size": body.get("size"),
                        "source_type": body.get("source_type"), "source_url": body.get("source_url"),
                        "extra": body.get("metadata"),
                        "components": json.dumps(body["components"]) if body.get("components") else None}
    for part in _chunks(list(rows.values())):
        session.execute(insert(DagArtifact), part)
    try:
        with session.begin_nested():
            for part in _chunks(jobs):
                session.execute(insert(Job), [_job_row(dag_row, j) for j in part])
    except IntegrityError:   # a job uid registered meanwhile by another server
        raise Conflict("a job of this registration was registered meanwhile in another DAG: a job can belong "
                       "to only one DAG") from None
    job_ids = {}
    for part in _chunks(uids):
        job_ids.update(session.execute(select(Job.job_uid, Job.id).where(Job.job_uid.in_(part))).all())
    edges = [{"job_id": job_ids[j["job_uid"]], "artifact_id": ids[e["hash"]], "direction": direction,
              "path": e.get("path")}
             for j in jobs for direction, key in (("in", "inputs"), ("out", "outputs")) for e in j[key]]
    _insert_ignore(session, JobIO, edges, ["job_id", "direction", "artifact_id"])


def _job_row(dag_row: Dag, body: dict) -> dict:
    return {"dag_id": dag_row.id, "job_uid": body["job_uid"], "command": body["command"],
            "timestamp": body.get("timestamp"), "git_commit": body.get("git_commit"),
            "git_branch": body.get("git_branch"), "duration_seconds": body.get("duration_seconds"),
            "exit_code": body.get("exit_code"), "job_type": body.get("job_type") or "run",
            "step_number": body["step_number"], "parent_job_uid": body.get("parent_job_uid"),
            "extra": body.get("metadata")}
