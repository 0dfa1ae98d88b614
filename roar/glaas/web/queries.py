"""The few questions the web pages ask that the API does not: every job that wrote or read
an artifact, a job by its uid, the recent DAGs, and search. Each filters by the caller's
scope with roar.glaas.store.scope.visible, exactly as the API's lookups do; the pages
build the rest from roar.glaas.store.lookup."""

from __future__ import annotations

import json
import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from roar.glaas.models import Artifact, ArtifactHash, Dag, Job, JobIO, Label, User
from roar.glaas.store.scope import Principal, visible

LIMIT = 200          # jobs listed per artifact and direction
SEARCH_LIMIT = 20    # results per kind
LABEL_SCAN = 2000    # label versions examined by one search
HEX = re.compile(r"^[0-9a-f]{4,128}$")
UID = re.compile(r"^[0-9A-Za-z_-]{4,64}$")


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def jobs_touching(session: Session, who: Principal, artifact_id: int, direction: str) -> list[dict]:
    """The visible jobs that wrote (out) or read (in) the artifact, oldest DAG first."""
    rows = session.execute(select(Job, Dag.hash, JobIO.path).join(JobIO, JobIO.job_id == Job.id)
                           .join(Dag, Dag.id == Job.dag_id)
                           .where(JobIO.artifact_id == artifact_id, JobIO.direction == direction,
                                  visible(who))
                           .order_by(Dag.created_at, Dag.id, Job.step_number).limit(LIMIT)).all()
    return [{"jobUid": j.job_uid, "command": j.command, "stepNumber": j.step_number, "jobType": j.job_type,
             "sessionHash": h, "path": p} for j, h, p in rows]


def producers_of(session: Session, who: Principal, digests: list[str],
                 direction: str) -> dict[str, list[dict]]:
    """For each artifact hash: the visible jobs that wrote it (out) or read it (in)."""
    if not digests:
        return {}
    rows = session.execute(select(Artifact.hash, Job.job_uid, Job.command, Job.step_number, Dag.hash)
                           .join(JobIO, JobIO.artifact_id == Artifact.id).join(Job, Job.id == JobIO.job_id)
                           .join(Dag, Dag.id == Job.dag_id)
                           .where(Artifact.hash.in_(sorted(set(digests))), JobIO.direction == direction,
                                  visible(who))
                           .order_by(Dag.created_at, Job.step_number).limit(LIMIT * 4)).all()
    out: dict[str, list[dict]] = {}
    for digest, uid, command, step, dag_hash in rows:
        out.setdefault(digest, []).append({"jobUid": uid, "command": command, "stepNumber": step,
                                           "sessionHash": dag_hash})
    return out


def job_row(session: Session, uid: str) -> tuple[Job, Dag] | None:
    """The job and its DAG, whoever may see them (the caller checks can_see)."""
    row = session.execute(select(Job, Dag).join(Dag, Dag.id == Job.dag_id).where(Job.job_uid == uid)).first()
    return tuple(row) if row else None


def dag_row(session: Session, digest: str) -> Dag | None:
    return session.scalar(select(Dag).where(Dag.hash == digest))


def recent(session: Session, who: Principal, limit: int = 20, own: bool = False) -> list[dict]:
    """The newest DAGs: public ones, or with own=True the caller's."""
    where = Dag.owner_user_id == who.user_id if own else Dag.visibility == "public"
    jobs = (select(Job.dag_id, func.count(Job.id).label("n"), func.max(Job.step_number).label("last"))
            .group_by(Job.dag_id).subquery())
    rows = session.execute(select(Dag, jobs.c.n, User.name).outerjoin(jobs, jobs.c.dag_id == Dag.id)
                           .outerjoin(User, User.id == Dag.owner_user_id)
                           .where(where, visible(who)).order_by(Dag.created_at.desc(), Dag.id.desc())
                           .limit(limit)).all()
    out = []
    for dag, n, owner in rows:
        last = session.scalar(select(Job.command).where(Job.dag_id == dag.id)
                              .order_by(Job.step_number.desc(), Job.id.desc()).limit(1))
        out.append({"hash": dag.hash, "createdAt": dag.created_at, "jobs": n or 0, "owner": owner,
                    "visibility": dag.visibility, "lastCommand": last})
    return out


def search(session: Session, who: Principal, query: str) -> dict[str, list[dict]]:
    """Artifacts, jobs and sessions whose hash or uid starts with query, and entities with a
    label value containing it. An artifact's existence is public; a job or session is found
    only when visible, so a prefix never discloses a private hash."""
    q = query.strip()
    low = q.lower()
    out: dict[str, list[dict]] = {"artifacts": [], "jobs": [], "sessions": [], "labels": []}
    if HEX.match(low):
        ids = session.scalars(select(ArtifactHash.artifact_id)
                              .where(ArtifactHash.digest >= low, ArtifactHash.digest < low + "g")
                              .distinct().limit(SEARCH_LIMIT)).all()
        for art in session.scalars(select(Artifact).where(Artifact.id.in_(ids)).order_by(Artifact.hash)):
            out["artifacts"].append({"hash": art.hash})
        for dag in session.scalars(select(Dag).where(Dag.hash.like(_like_prefix(low), escape="\\"),
                                                     visible(who)).order_by(Dag.hash).limit(SEARCH_LIMIT)):
            out["sessions"].append({"hash": dag.hash})
    if UID.match(q):
        for job, dag in session.execute(select(Job, Dag).join(Dag, Dag.id == Job.dag_id)
                                        .where(Job.job_uid.like(_like_prefix(q), escape="\\"), visible(who))
                                        .order_by(Job.job_uid).limit(SEARCH_LIMIT)):
            out["jobs"].append({"jobUid": job.job_uid, "command": job.command, "sessionHash": dag.hash})
    if len(q) >= 2:
        out["labels"] = _label_matches(session, who, q)
    return out


def _label_matches(session: Session, who: Principal, q: str) -> list[dict]:
    needle = q.lower()
    rows = session.execute(select(Label, Dag.hash).join(Dag, Dag.id == Label.dag_id)
                           .where(visible(who), func.lower(Label.body).like("%" + _like_prefix(needle),
                                                                           escape="\\"))
                           .order_by(Label.dag_id, Label.entity_key, Label.version.desc())
                           .limit(LABEL_SCAN)).all()
    seen: set[tuple[int, str]] = set()
    out: list[dict] = []
    for label, dag_hash in rows:
        if (label.dag_id, label.entity_key) in seen:
            continue   # an older version of an entity already looked at
        seen.add((label.dag_id, label.entity_key))
        if not _is_latest(session, label):
            continue
        try:
            body = json.loads(label.body)
        except ValueError:
            continue
        hits = [(k, v) for k, v in _leaves("", body) if needle in v.lower()]
        if hits:
            kind, _, ident = label.entity_key.partition(":")
            out.append({"kind": kind, "id": ident or dag_hash, "sessionHash": dag_hash,
                        "key": hits[0][0], "value": hits[0][1]})
        if len(out) >= SEARCH_LIMIT:
            break
    return out


def _is_latest(session: Session, label: Label) -> bool:
    newest = session.scalar(select(func.max(Label.version)).where(Label.dag_id == label.dag_id,
                                                                  Label.entity_key == label.entity_key))
    return newest == label.version


def _leaves(prefix: str, value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(f"{prefix}.{k}" if prefix else str(k), v)
    elif isinstance(value, list):
        for v in value[:100]:
            yield from _leaves(prefix, v)
    elif value is not None:
        yield prefix, str(value)


def job_edges(session: Session, job: Job, direction: str) -> list[dict]:
    """A job's inputs or outputs. No size: a size is scoped metadata, shown on the artifact's
    page from the DAGs the caller may see (roar.glaas.store.lookup.artifact_view)."""
    rows = session.execute(select(Artifact.hash, JobIO.path).join(Artifact, Artifact.id == JobIO.artifact_id)
                           .where(JobIO.job_id == job.id, JobIO.direction == direction)
                           .order_by(JobIO.id).limit(LIMIT * 5)).all()
    return [{"hash": h, "path": p} for h, p in rows]
