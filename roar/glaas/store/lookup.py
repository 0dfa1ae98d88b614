"""Lookups from a hash: an artifact, who produced it, its DAG, a session's reproduction.

An artifact's existence is answered to anyone; everything else comes only from DAGs the
caller may see (roar.glaas.store.scope). A private DAG is, to anyone else, the same 404 as
a hash never registered.
"""

from __future__ import annotations

import json
import re
from datetime import timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from roar.glaas.models import Artifact, ArtifactHash, Dag, DagArtifact, Job, JobIO, Label
from roar.glaas.store.errors import Conflict, Invalid, NotFound, Unauthorized
from roar.glaas.store.scope import Principal, visible
from roar.glaas.store.tokens import aware

HEX = re.compile(r"^[0-9a-f]{8,128}$")
MAX_DEPTH = 10


def _iso(value) -> str:
    return aware(value).astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _json(text: str | None):
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def find_artifact(session: Session, prefix: str) -> Artifact:
    """The artifact one of whose digests is or starts with prefix (8 to 128 hex digits)."""
    prefix = prefix.lower()
    if not HEX.match(prefix):
        raise Invalid(f"{prefix!r} is not an artifact hash: give 8 to 128 hex digits")
    # a range over the digest index, not LIKE: the same plan on SQLite and PostgreSQL
    rows = session.scalars(select(ArtifactHash.artifact_id).where(ArtifactHash.digest >= prefix,
                                                                  ArtifactHash.digest < prefix + "g")
                           .distinct().limit(2)).all()
    if not rows:
        raise NotFound(f"no artifact {prefix} is registered")
    if len(rows) > 1:
        raise Conflict(f"{prefix} is ambiguous: give more of the hash")
    return session.get(Artifact, rows[0])


def _visible_dags_of(session: Session, who: Principal, artifact: Artifact) -> list[tuple[Dag, DagArtifact]]:
    return list(session.execute(select(Dag, DagArtifact).join(DagArtifact, DagArtifact.dag_id == Dag.id)
                                .where(DagArtifact.artifact_id == artifact.id, visible(who))
                                .order_by(Dag.created_at, Dag.id)).tuples())


def _scope_view(session: Session, dag: Dag) -> dict:
    from roar.glaas.models import Project, User

    owner = session.get(User, dag.owner_user_id) if dag.owner_user_id else None
    project = session.get(Project, dag.project_id) if dag.project_id else None
    return {"owner_name": owner.name if owner else None, "project_name": project.slug if project else None,
            "visibility": dag.visibility}


def artifact_view(session: Session, who: Principal, artifact: Artifact) -> dict:
    hashes = session.execute(select(ArtifactHash.algorithm, ArtifactHash.digest)
                             .where(ArtifactHash.artifact_id == artifact.id).order_by(ArtifactHash.id)).all()
    out = {"id": artifact.hash, "hash": artifact.hash,
           "hashes": [{"algorithm": a, "digest": d} for a, d in hashes],
           "isComposite": artifact.is_composite, "registeredAt": _iso(artifact.registered_at),
           "size": None, "sourceType": None, "metadata": None, "labels": [], "scope": None,
           "originalSessionHash": None}
    dags = _visible_dags_of(session, who, artifact)
    if not dags:
        return out   # registered, and nothing of it visible to this caller
    dag, first = dags[0]
    labels = session.scalars(select(Label).where(Label.dag_id.in_([d.id for d, _ in dags]),
                                                 Label.entity_key == f"artifact:{artifact.hash}")
                             .order_by(Label.version.desc()).limit(1)).all()
    # the size too is what a visible DAG said: a private DAG's size is its metadata
    size = next((da.size for _, da in dags if da.size is not None), None)
    out.update(size=size, sourceType=first.source_type, metadata=_json(first.extra),
               scope=_scope_view(session, dag), originalSessionHash=dag.hash,
               labels=[{"version": lab.version, "metadata": json.loads(lab.body)} for lab in labels])
    return out


def _producer(session: Session, who: Principal, artifact_id: int) -> tuple[Job, Dag] | None:
    row = session.execute(select(Job, Dag).join(JobIO, JobIO.job_id == Job.id).join(Dag, Dag.id == Job.dag_id)
                          .where(JobIO.artifact_id == artifact_id, JobIO.direction == "out", visible(who))
                          .order_by(Dag.created_at, Job.step_number).limit(1)).first()
    return tuple(row) if row else None


def _edges(session: Session, job: Job, direction: str) -> list[dict]:
    rows = session.execute(select(Artifact.hash, JobIO.path).join(Artifact, Artifact.id == JobIO.artifact_id)
                           .where(JobIO.job_id == job.id, JobIO.direction == direction)
                           .order_by(JobIO.id)).all()
    return [{"hash": h, "path": p} for h, p in rows]


def lineage(session: Session, who: Principal, artifact: Artifact, depth: int = 1) -> dict:
    """The artifact, the job that produced it and, up to depth levels, the jobs upstream."""
    if not 1 <= depth <= MAX_DEPTH:
        raise Invalid(f"depth must be 1 to {MAX_DEPTH}")
    out = {"artifact": artifact_view(session, who, artifact), "depth": depth, "producedBy": None,
           "inputs": [], "upstream": []}
    found = _producer(session, who, artifact.id)
    if found is None:
        return out
    job, dag = found
    out["producedBy"] = {"jobUid": job.job_uid, "command": job.command, "sessionHash": dag.hash,
                         "stepNumber": job.step_number, "jobType": job.job_type}
    out["inputs"] = _edges(session, job, "in")
    frontier, seen = [job], {job.id}
    for _ in range(depth - 1):
        nxt = []
        for j in frontier:
            for e in _edges(session, j, "in"):
                art_id = session.scalar(select(Artifact.id).where(Artifact.hash == e["hash"]))
                up = _producer(session, who, art_id)
                if up and up[0].id not in seen:
                    seen.add(up[0].id)
                    nxt.append(up[0])
                    out["upstream"].append({"jobUid": up[0].job_uid, "command": up[0].command,
                                            "sessionHash": up[1].hash, "inputs": _edges(session, up[0], "in"),
                                            "outputs": _edges(session, up[0], "out")})
        frontier = nxt
    return out


def _job_view(session: Session, job: Job, dag: Dag, consumers: dict[str, list[str]]) -> dict:
    outputs = _edges(session, job, "out")
    children = sorted({uid for o in outputs for uid in consumers.get(o["hash"], []) if uid != job.job_uid})
    return {"jobUid": job.job_uid, "jobType": job.job_type, "command": job.command,
            "stepNumber": job.step_number, "timestamp": job.timestamp,
            "durationSeconds": job.duration_seconds,
            "exitCode": job.exit_code, "gitCommit": job.git_commit, "gitBranch": job.git_branch,
            "parentJobUid": job.parent_job_uid, "metadata": _json(job.extra), "sessionHash": dag.hash,
            "inputs": _edges(session, job, "in"), "outputs": outputs, "children": children}


def dag_view(session: Session, dag: Dag) -> dict:
    jobs = session.scalars(select(Job).where(Job.dag_id == dag.id).order_by(Job.step_number, Job.id)).all()
    consumers: dict[str, list[str]] = {}
    for uid, digest in session.execute(select(Job.job_uid, Artifact.hash).join(JobIO, JobIO.job_id == Job.id)
                                       .join(Artifact, Artifact.id == JobIO.artifact_id)
                                       .where(Job.dag_id == dag.id, JobIO.direction == "in")):
        consumers.setdefault(digest, []).append(uid)
    return {"sessionHash": dag.hash, "gitRepo": dag.git_repo or "", "gitCommit": dag.git_commit,
            "gitBranch": dag.git_branch, "scope": _scope_view(session, dag),
            "createdAt": _iso(dag.created_at), "jobs": [_job_view(session, j, dag, consumers) for j in jobs]}


def artifact_dag(session: Session, who: Principal, artifact: Artifact) -> dict:
    """The DAG that produced the artifact (else the first that holds it), as the caller may see it."""
    found = _producer(session, who, artifact.id)
    dag = found[1] if found else next((d for d, _ in _visible_dags_of(session, who, artifact)), None)
    if dag is None:
        raise NotFound(f"no registered lineage of artifact {artifact.hash} is visible to you")
    view = dag_view(session, dag)
    return {"artifact": artifact_view(session, who, artifact),
            "dag": {k: view[k] for k in ("sessionHash", "gitRepo", "gitCommit", "gitBranch")}, **view}


def find_dag(session: Session, who: Principal, digest: str) -> Dag:
    digest = digest.lower()
    if not re.match(r"^[0-9a-f]{64}$", digest):
        raise Invalid(f"{digest!r} is not a session hash: give 64 hex digits")
    dag = session.scalar(select(Dag).where(Dag.hash == digest, visible(who)))
    if dag is None:
        raise NotFound(f"no session {digest} is registered (or it is not visible to you)")
    return dag


def components(session: Session, who: Principal, artifact: Artifact) -> dict:
    dags = _visible_dags_of(session, who, artifact)
    members = next((json.loads(da.components) for _, da in dags if da.components), [])
    return {"hash": artifact.hash, "components": [
        {"relativePath": m.get("relative_path"), "componentDigest": m.get("component_digest"),
         "componentAlgorithm": m.get("component_algorithm"), "componentSize": m.get("component_size"),
         "leafKind": m.get("leaf_kind")} for m in members]}


def sessions_of(session: Session, who: Principal, limit: int) -> dict:
    if who.anonymous:
        raise Unauthorized("listing sessions needs a token (Authorization: Bearer ...)")
    rows = session.scalars(select(Dag).where(Dag.owner_user_id == who.user_id)
                           .order_by(Dag.created_at.desc()).limit(limit)).all()
    return {"sessions": [{"hash": d.hash, "createdAt": _iso(d.created_at), "visibility": d.visibility,
                          "gitCommit": d.git_commit} for d in rows]}
