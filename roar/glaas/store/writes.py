"""Writing published lineage: artifacts, DAGs, jobs and edges, each insert-if-absent on
its unique key (INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL alike), so two
processes registering the same thing at once end with one row."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from roar.glaas.models import Artifact, ArtifactHash, Dag, DagArtifact, Job, JobIO
from roar.glaas.store.errors import Conflict
from roar.glaas.store.tokens import now

PRIMARY = ("blake3", "sha256", "composite-blake3", "composite-sha256", "sha512", "md5")


def insert_ignore(session: Session, model, values: dict, keys: list[str]) -> None:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(dialect.insert(model).values(**values).on_conflict_do_nothing(index_elements=keys))


def primary_digest(hashes: list[dict]) -> str:
    for algorithm in PRIMARY:
        for h in hashes:
            if h["algorithm"] == algorithm:
                return h["digest"]
    return hashes[0]["digest"]


def artifact(session: Session, digest: str, hashes: list[dict] | None = None, size: int | None = None,
             composite: bool = False) -> Artifact:
    """The artifact with this primary digest, made if absent; a known size is kept."""
    insert_ignore(session, Artifact, {"hash": digest, "size": size, "is_composite": composite,
                                      "registered_at": now()}, ["hash"])
    row = session.scalar(select(Artifact).where(Artifact.hash == digest))
    if row.size is None and size is not None:
        row.size = size
    if composite and not row.is_composite:
        row.is_composite = True
    for h in hashes or [{"algorithm": "blake3" if len(digest) == 64 else "unknown", "digest": digest}]:
        insert_ignore(session, ArtifactHash, {"artifact_id": row.id, "algorithm": h["algorithm"],
                                              "digest": h["digest"]}, ["algorithm", "digest"])
    return row


def dag(session: Session, values: dict) -> tuple[Dag, bool]:
    """(the DAG with values['hash'], whether this call made it)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    made = session.execute(dialect.insert(Dag).values(**values, created_at=now())
                           .on_conflict_do_nothing(index_elements=["hash"]).returning(Dag.id)).scalar()
    return session.scalar(select(Dag).where(Dag.hash == values["hash"])), made is not None


def job(session: Session, dag_row: Dag, body: dict) -> Job:
    """Add a job to a DAG; a job uid already in another DAG is a conflict."""
    existing = session.scalar(select(Job).where(Job.job_uid == body["job_uid"]))
    if existing is not None:
        if existing.dag_id != dag_row.id:
            raise Conflict(f"job {body['job_uid']} already belongs to another DAG: a job can belong to "
                           "only one DAG")
        return existing
    row = Job(dag_id=dag_row.id, job_uid=body["job_uid"], command=body["command"],
              timestamp=body.get("timestamp"), git_commit=body.get("git_commit"),
              git_branch=body.get("git_branch"), duration_seconds=body.get("duration_seconds"),
              exit_code=body.get("exit_code"), job_type=body.get("job_type") or "run",
              step_number=body["step_number"], parent_job_uid=body.get("parent_job_uid"),
              extra=body.get("metadata"))
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise Conflict(f"job {body['job_uid']} was registered meanwhile in another DAG: a job can belong "
                       "to only one DAG") from None
    return row


def edge(session: Session, job_row: Job, direction: str, digest: str, path: str | None) -> None:
    art = artifact(session, digest)
    insert_ignore(session, JobIO, {"job_id": job_row.id, "artifact_id": art.id, "direction": direction,
                                   "path": path}, ["job_id", "direction", "artifact_id"])
    insert_ignore(session, DagArtifact, {"dag_id": job_row.dag_id, "artifact_id": art.id},
                  ["artifact_id", "dag_id"])


def dag_artifact(session: Session, dag_row: Dag, body: dict) -> bool:
    """Record an artifact (a batch entry or a composite) as this DAG registered it; True if new."""
    hashes = body.get("hashes") or [{"algorithm": "blake3", "digest": body["hash"]}]
    digest = body.get("hash") or primary_digest(hashes)
    art = artifact(session, digest, hashes, body.get("size"), composite=bool(body.get("components")))
    existing = session.scalar(select(DagArtifact).where(DagArtifact.dag_id == dag_row.id,
                                                        DagArtifact.artifact_id == art.id))
    if existing is None:
        existing = DagArtifact(dag_id=dag_row.id, artifact_id=art.id)
        session.add(existing)
        created = True
    else:
        created = False
    existing.size = body.get("size") if body.get("size") is not None else existing.size
    existing.source_type = body.get("source_type") or existing.source_type
    existing.source_url = body.get("source_url") or existing.source_url
    existing.extra = body.get("metadata") or existing.extra
    if body.get("components"):
        existing.components = json.dumps(body["components"])
    session.flush()
    return created
