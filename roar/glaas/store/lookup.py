"""Lookups from a hash: an artifact, who produced it, its DAG, a session's reproduction.

An artifact's existence is answered to anyone; everything else comes only from DAGs the
caller may see (roar.glaas.store.scope). A private DAG is, to anyone else, the same 404 as
a hash never registered.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timezone

from sqlalchemy import bindparam, func, literal_column, select
from sqlalchemy.orm import Session

from roar.glaas.models import Artifact, ArtifactHash, Dag, DagArtifact, Job, JobIO, Label, Project, User
from roar.glaas.store.errors import Conflict, Invalid, NotFound, Unauthorized
from roar.glaas.store.scope import Principal, scope_params, visible, visible_params
from roar.glaas.store.tokens import aware

HEX = re.compile(r"^[0-9a-f]{8,128}$")
JOB_UID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")   # as the schema takes them (roar.glaas.schemas)
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


# Lookups are Core statements built once, over the tables, with the caller as parameters
# (scope.visible_params): no statement is rebuilt per request and no ORM object is loaded,
# which is most of what a lookup cost in Python. Lineage is one set-based query a level (the
# first producers of a level's inputs, with their edges: _LEVEL), not queries per node.
_A, _H, _D, _DA = Artifact.__table__, ArtifactHash.__table__, Dag.__table__, DagArtifact.__table__
_J, _IO, _L = Job.__table__, JobIO.__table__, Label.__table__
_U, _P = User.__table__, Project.__table__

_FIND = (select(_A.c.id, _A.c.hash, _A.c.is_composite, _A.c.registered_at, _H.c.algorithm, _H.c.digest)
         .join(_H, _H.c.artifact_id == _A.c.id)
         .where(_A.c.id.in_(select(_H.c.artifact_id).where(_H.c.digest >= bindparam("lo"),
                                                          _H.c.digest < bindparam("hi"))
                            .distinct().limit(2).scalar_subquery()))
         .order_by(_A.c.id, _H.c.id))

_DAGS_OF = (select(_D.c.id, _D.c.hash, _D.c.visibility, _U.c.name, _P.c.slug, _DA.c.size, _DA.c.source_type,
                   _DA.c.extra, _DA.c.components)
            .select_from(_DA.join(_D, _D.c.id == _DA.c.dag_id)
                         .outerjoin(_U, _U.c.id == _D.c.owner_user_id)
                         .outerjoin(_P, _P.c.id == _D.c.project_id))
            .where(_DA.c.artifact_id == bindparam("artifact"), visible_params())
            .order_by(_D.c.created_at, _D.c.id))

_LABEL = (select(_L.c.version, _L.c.body)
          .where(_L.c.dag_id.in_(bindparam("dags", expanding=True)), _L.c.entity_key == bindparam("key"))
          .order_by(_L.c.version.desc()).limit(1))

# A level of lineage in one query: for each of a set of artifacts, the first visible job that
# wrote it (by its DAG's time, then the step: a window function, which SQLite has since 3.25),
# with all of that job's edges, in the order they were written. It was two queries a level
# (the producers, then their edges), each a round trip to PostgreSQL.
_RANKED = (select(_IO.c.artifact_id.label("made"), _J.c.id, _J.c.job_uid, _J.c.command, _J.c.step_number,
                  _J.c.job_type, _D.c.hash,
                  func.row_number().over(partition_by=_IO.c.artifact_id,
                                         order_by=(_D.c.created_at, _J.c.step_number, _J.c.id)).label("rank"))
           .select_from(_IO.join(_J, _J.c.id == _IO.c.job_id).join(_D, _D.c.id == _J.c.dag_id))
           .where(_IO.c.artifact_id.in_(bindparam("artifacts", expanding=True)), _IO.c.direction == "out",
                  visible_params())
           .subquery("ranked"))
_EDGE = _IO.alias("edge")
_LEVEL = (select(_RANKED.c.made, _RANKED.c.id, _RANKED.c.job_uid, _RANKED.c.command, _RANKED.c.step_number,
                 _RANKED.c.job_type, _RANKED.c.hash, _EDGE.c.id.label("edge_id"),
                 _EDGE.c.direction.label("edge_direction"), _EDGE.c.artifact_id.label("edge_artifact"),
                 _A.c.hash.label("edge_hash"), _EDGE.c.path.label("edge_path"))
          .select_from(_RANKED.join(_EDGE, _EDGE.c.job_id == _RANKED.c.id)
                       .join(_A, _A.c.id == _EDGE.c.artifact_id))
          .where(_RANKED.c.rank == literal_column("1"))
          .order_by(_EDGE.c.id))

# the edges of a set of jobs, in the order they were written
_EDGES = (select(_IO.c.job_id, _IO.c.direction, _IO.c.artifact_id, _A.c.hash, _IO.c.path)
          .join(_A, _A.c.id == _IO.c.artifact_id)
          .where(_IO.c.job_id.in_(bindparam("jobs", expanding=True)))
          .order_by(_IO.c.id))


@dataclass(frozen=True)
class Found:
    """An artifact as find_artifact finds it: its row and its digests."""

    id: int
    hash: str
    is_composite: bool
    registered_at: object
    hashes: tuple[tuple[str, str], ...]


def _run(session: Session, statement, **params):
    return session.connection().execute(statement, params)


def find_artifact(session: Session, prefix: str) -> Found:
    """The artifact one of whose digests is or starts with prefix (8 to 128 hex digits)."""
    prefix = prefix.lower()
    if not HEX.match(prefix):
        raise Invalid(f"{prefix!r} is not an artifact hash: give 8 to 128 hex digits")
    # a range over the digest index, not LIKE: the same plan on SQLite and PostgreSQL
    rows = _run(session, _FIND, lo=prefix, hi=prefix + "g").all()
    if not rows:
        raise NotFound(f"no artifact {prefix} is registered")
    if rows[0].id != rows[-1].id:
        raise Conflict(f"{prefix} is ambiguous: give more of the hash")
    first = rows[0]
    return Found(first.id, first.hash, bool(first.is_composite), first.registered_at,
                 tuple((r.algorithm, r.digest) for r in rows))


def _visible_dags_of(session: Session, who: Principal, artifact) -> list:
    """(dag id, hash, visibility, owner name, project slug, and the artifact as that DAG has it)
    for each DAG holding the artifact that the caller may see, the oldest first."""
    return _run(session, _DAGS_OF, artifact=artifact.id, **scope_params(who)).all()


def _scope_view(session: Session, dag: Dag) -> dict:
    owner = session.get(User, dag.owner_user_id) if dag.owner_user_id else None
    project = session.get(Project, dag.project_id) if dag.project_id else None
    return {"owner_name": owner.name if owner else None, "project_name": project.slug if project else None,
            "visibility": dag.visibility}


def artifact_view(session: Session, who: Principal, artifact: Found) -> dict:
    out = {"id": artifact.hash, "hash": artifact.hash,
           "hashes": [{"algorithm": a, "digest": d} for a, d in artifact.hashes],
           "isComposite": artifact.is_composite, "registeredAt": _iso(artifact.registered_at),
           "size": None, "sourceType": None, "metadata": None, "labels": [], "scope": None,
           "originalSessionHash": None}
    dags = _visible_dags_of(session, who, artifact)
    if not dags:
        return out   # registered, and nothing of it visible to this caller
    first = dags[0]
    labels = _run(session, _LABEL, dags=[d.id for d in dags], key=f"artifact:{artifact.hash}").all()
    # the size too is what a visible DAG said: a private DAG's size is its metadata
    size = next((d.size for d in dags if d.size is not None), None)
    out.update(size=size, sourceType=first.source_type, metadata=_json(first.extra),
               scope={"owner_name": first.name, "project_name": first.slug, "visibility": first.visibility},
               originalSessionHash=first.hash,
               labels=[{"version": lab.version, "metadata": json.loads(lab.body)} for lab in labels])
    return out


@dataclass(frozen=True)
class _Producer:
    id: int
    job_uid: str
    command: str
    step_number: int | None
    job_type: str | None
    hash: str                        # its DAG's


@dataclass(frozen=True)
class _Edge:
    artifact_id: int
    hash: str
    path: str | None


def _level(session: Session, who: Principal, artifact_ids) -> tuple[dict[int, _Producer],
                                                                    dict[tuple[int, str], list[_Edge]]]:
    """(artifact id -> the first visible job that wrote it, (job id, direction) -> that job's
    edges in the order written), for a set of artifacts: one query (_LEVEL)."""
    made: dict[int, _Producer] = {}
    edges: dict[tuple[int, str], list[_Edge]] = {}
    if not artifact_ids:
        return made, edges
    seen: set[int] = set()   # a job that first wrote several of them comes once per artifact
    for row in _run(session, _LEVEL, artifacts=sorted(set(artifact_ids)), **scope_params(who)):
        if row.made not in made:
            made[row.made] = _Producer(row.id, row.job_uid, row.command, row.step_number, row.job_type,
                                       row.hash)
        if row.edge_id not in seen:
            seen.add(row.edge_id)
            edges.setdefault((row.id, row.edge_direction), []).append(
                _Edge(row.edge_artifact, row.edge_hash, row.edge_path))
    return made, edges


def _producer(session: Session, who: Principal, artifact_id: int) -> tuple[Job, Dag] | None:
    row = session.execute(select(Job, Dag).join(JobIO, JobIO.job_id == Job.id).join(Dag, Dag.id == Job.dag_id)
                          .where(JobIO.artifact_id == artifact_id, JobIO.direction == "out", visible(who))
                          .order_by(Dag.created_at, Job.step_number, Job.id).limit(1)).first()
    return tuple(row) if row else None


def _edges_of(session: Session, job_ids) -> dict[tuple[int, str], list]:
    """(job id, direction) -> its edges (rows of _EDGES), for a set of jobs."""
    out: dict[tuple[int, str], list] = {}
    if not job_ids:
        return out
    ids = sorted(set(job_ids))
    for start in range(0, len(ids), 900):   # under SQLite's limit on bound parameters
        for row in _run(session, _EDGES, jobs=ids[start:start + 900]):
            out.setdefault((row.job_id, row.direction), []).append(row)
    return out


def _edge_views(rows) -> list[dict]:
    return [{"hash": r.hash, "path": r.path} for r in rows or ()]


def lineage(session: Session, who: Principal, artifact: Found, depth: int = 1) -> dict:
    """The artifact, the job that produced it and, up to depth levels, the jobs upstream."""
    if not 1 <= depth <= MAX_DEPTH:
        raise Invalid(f"depth must be 1 to {MAX_DEPTH}")
    out = {"artifact": artifact_view(session, who, artifact), "depth": depth, "producedBy": None,
           "inputs": [], "upstream": []}
    made, edges = _level(session, who, [artifact.id])
    job = made.get(artifact.id)
    if job is None:
        return out
    out["producedBy"] = {"jobUid": job.job_uid, "command": job.command, "sessionHash": job.hash,
                         "stepNumber": job.step_number, "jobType": job.job_type}
    inputs = edges.get((job.id, "in"), [])
    out["inputs"] = _edge_views(inputs)
    # one level at a time: the first producers of the level's inputs, with their edges
    frontier, seen = [(job, inputs)], {job.id}
    for _ in range(depth - 1):
        made, edges = _level(session, who, [e.artifact_id for _, ins in frontier for e in ins])
        new = []
        for _, ins in frontier:
            for e in ins:
                up = made.get(e.artifact_id)
                if up is not None and up.id not in seen:
                    seen.add(up.id)
                    new.append(up)
        for up in new:
            out["upstream"].append({"jobUid": up.job_uid, "command": up.command, "sessionHash": up.hash,
                                    "inputs": _edge_views(edges.get((up.id, "in"))),
                                    "outputs": _edge_views(edges.get((up.id, "out")))})
        frontier = [(up, edges.get((up.id, "in"), [])) for up in new]
        if not frontier:
            break
    return out


def _job_view(job: Job, dag: Dag, edges: dict, consumers: dict[str, list[str]]) -> dict:
    outputs = _edge_views(edges.get((job.id, "out")))
    children = sorted({uid for o in outputs for uid in consumers.get(o["hash"], []) if uid != job.job_uid})
    return {"jobUid": job.job_uid, "jobType": job.job_type, "command": job.command,
            "stepNumber": job.step_number, "timestamp": job.timestamp,
            "durationSeconds": job.duration_seconds,
            "exitCode": job.exit_code, "gitCommit": job.git_commit, "gitBranch": job.git_branch,
            "parentJobUid": job.parent_job_uid, "metadata": _json(job.extra), "sessionHash": dag.hash,
            "inputs": _edge_views(edges.get((job.id, "in"))), "outputs": outputs, "children": children}


def _consumers(session: Session, dag: Dag) -> dict[str, list[str]]:
    """artifact hash -> the uids of the DAG's jobs that read it."""
    consumers: dict[str, list[str]] = {}
    for uid, digest in session.execute(select(Job.job_uid, Artifact.hash).join(JobIO, JobIO.job_id == Job.id)
                                       .join(Artifact, Artifact.id == JobIO.artifact_id)
                                       .where(Job.dag_id == dag.id, JobIO.direction == "in")):
        consumers.setdefault(digest, []).append(uid)
    return consumers


def dag_view(session: Session, dag: Dag) -> dict:
    jobs = session.scalars(select(Job).where(Job.dag_id == dag.id).order_by(Job.step_number, Job.id)).all()
    consumers = _consumers(session, dag)
    edges = _edges_of(session, [j.id for j in jobs])
    return {"sessionHash": dag.hash, "gitRepo": dag.git_repo or "", "gitCommit": dag.git_commit,
            "gitBranch": dag.git_branch, "scope": _scope_view(session, dag),
            "createdAt": _iso(dag.created_at), "jobs": [_job_view(j, dag, edges, consumers) for j in jobs]}


def artifact_dag(session: Session, who: Principal, artifact: Found) -> dict:
    """The DAG that produced the artifact (else the first that holds it), as the caller may see it."""
    found = _producer(session, who, artifact.id)
    if found:
        dag = found[1]
    else:
        first = next(iter(_visible_dags_of(session, who, artifact)), None)
        dag = session.get(Dag, first.id) if first is not None else None
    if dag is None:
        raise NotFound(f"no registered lineage of artifact {artifact.hash} is visible to you")
    view = dag_view(session, dag)
    return {"artifact": artifact_view(session, who, artifact),
            "dag": {k: view[k] for k in ("sessionHash", "gitRepo", "gitCommit", "gitBranch")}, **view}


def job_view(session: Session, who: Principal, uid: str) -> dict:
    """A registered job by its uid, as its DAG's view lists it, with its DAG's scope and the
    job's current labels. A job whose DAG the caller may not see is the same 404 as one never
    registered."""
    if not JOB_UID.match(uid):
        raise Invalid(f"{uid!r} is not a job uid: give the hex uid `roar show` or a receipt printed")
    row = session.execute(select(Job, Dag).join(Dag, Dag.id == Job.dag_id)
                          .where(Job.job_uid == uid, visible(who))).first()
    if row is None:
        raise NotFound(f"no job {uid} is registered (or it is not visible to you)")
    job, dag = row
    consumers = _consumers(session, dag)
    view = _job_view(job, dag, _edges_of(session, [job.id]), consumers)
    label = _run(session, _LABEL, dags=[dag.id], key=f"job:{uid}").first()
    view.update(scope=_scope_view(session, dag), gitRepo=dag.git_repo or "",
                labels=[{"version": label.version, "metadata": json.loads(label.body)}] if label else [])
    return view


def find_dag(session: Session, who: Principal, digest: str) -> Dag:
    digest = digest.lower()
    if not re.match(r"^[0-9a-f]{64}$", digest):
        raise Invalid(f"{digest!r} is not a session hash: give 64 hex digits")
    dag = session.scalar(select(Dag).where(Dag.hash == digest, visible(who)))
    if dag is None:
        raise NotFound(f"no session {digest} is registered (or it is not visible to you)")
    return dag


def components(session: Session, who: Principal, artifact: Found) -> dict:
    dags = _visible_dags_of(session, who, artifact)
    members = next((json.loads(d.components) for d in dags if d.components), [])
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
