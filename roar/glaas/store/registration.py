"""Registration sessions: staged writes that become one DAG, atomically, at finalize.

Until finalize nothing of a session is in the lookup tables (it sits in `staged`), so an
abandoned or interrupted registration leaves nothing half-visible. Finalize computes the
DAG hash itself (roar.glaas.canonical) and writes the DAG, its jobs, artifacts and edges in
one transaction; the same DAG finalized twice, by one process or several, is one DAG.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, literal_column, select
from sqlalchemy.orm import Session

from roar.glaas.canonical import session_hash
from roar.glaas.models import Dag, Job, Project, RegistrationSession, Staged
from roar.glaas.store import writes
from roar.glaas.store.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from roar.glaas.store.scope import Principal, can_see
from roar.glaas.store.tokens import aware, now, sha256

TTL = timedelta(hours=24)
ANONYMOUS_MODE = "anonymous_public"


def expire(session: Session) -> int:
    """Drop the registration sessions left open past their end, and what they staged: an
    abandoned registration is never made visible, and its staging does not pile up."""
    gone = select(RegistrationSession.id).where(RegistrationSession.status == "open",
                                                RegistrationSession.expires_at < now())
    ids = list(session.scalars(gone.limit(1000)))
    if ids:
        session.execute(delete(Staged).where(Staged.session_id.in_(ids)))
        session.execute(delete(RegistrationSession).where(RegistrationSession.id.in_(ids),
                                                          RegistrationSession.status == "open"))
    session.commit()
    return len(ids)


def open_session(session: Session, who: Principal, mode: str | None, client_session_id: str | None,
                 ttl: timedelta = TTL) -> dict:
    expire(session)   # each new registration sweeps the abandoned ones (any server process may)
    anonymous = who.anonymous   # a token holder registers as themselves; the scope comes at finalize
    if anonymous and mode not in (None, ANONYMOUS_MODE):
        raise Unauthorized(f"mode {mode!r} needs a token: log in, or register anonymously (public)")
    token = "rst_" + secrets.token_urlsafe(24) if anonymous else None
    row = RegistrationSession(id="rs_" + secrets.token_hex(12), token_sha256=sha256(token) if token else None,
                              mode=ANONYMOUS_MODE if anonymous else "authenticated", user_id=who.user_id,
                              project_id=who.project_id, client_session_id=client_session_id, status="open",
                              created_at=now(), expires_at=now() + ttl)
    session.add(row)
    session.commit()
    out = {"registration_session_id": row.id, "mode": row.mode, "created": True, "status": row.status,
           "expires_at": row.expires_at.isoformat()}
    if token:
        out["registration_session_token"] = token
    return out


@dataclass(frozen=True)
class Opened:
    """A registration session as authorize() reads it (a Core row, not an ORM object: the
    staged writes, one request per job and direction, only read it)."""

    id: str
    token_sha256: str | None
    mode: str
    user_id: int | None
    status: str
    dag_id: int | None
    expires_at: datetime


_RS = RegistrationSession.__table__
_ST = Staged.__table__
_READ_RS = select(*(_RS.c[f] for f in Opened.__dataclass_fields__)).where(_RS.c.id == bindparam("rs"))
_JOB_STAGED = (select(literal_column("1")).select_from(_ST)
               .where(_ST.c.session_id == bindparam("rs"), _ST.c.kind == "job",
                      _ST.c.key == bindparam("uid")))
_STAGED_KEYS = select(_ST.c.key).where(_ST.c.session_id == bindparam("rs"), _ST.c.kind == bindparam("kind"),
                                       _ST.c.key.in_(bindparam("keys", expanding=True)))


def _upsert(dialect: str):
    """INSERT of one staged row that replaces the body of one already there, built once per
    dialect and run with many parameter sets (a cached statement, where a multi-row VALUES
    was compiled anew for each request)."""
    from sqlalchemy.dialects import postgresql, sqlite

    stmt = (postgresql if dialect == "postgresql" else sqlite).insert(_ST)
    return stmt.on_conflict_do_update(index_elements=["session_id", "kind", "key"],
                                      set_={"body": stmt.excluded.body})


_UPSERTS = {name: _upsert(name) for name in ("postgresql", "sqlite")}


def authorize(session: Session, rs_id: str, who: Principal, rs_token: str | None) -> Opened:
    """The registration session, if this caller is the one that opened it."""
    found = session.connection().execute(_READ_RS, {"rs": rs_id}).first()
    row = Opened(*found) if found is not None else None
    if row is not None and row.status == "open" and aware(row.expires_at) < now():
        expire(session)   # past its end: dropped now, as the next sweep would
        row = None
    if row is None:
        raise NotFound(f"no registration session {rs_id} (or it expired unfinished): start one with "
                       "POST /registration-sessions")
    if row.mode == ANONYMOUS_MODE:
        if rs_token is None:
            raise Unauthorized("this registration session needs its token: "
                               "Authorization: RegistrationSession <registration_session_token>")
        if not secrets.compare_digest(sha256(rs_token), row.token_sha256 or ""):
            raise Forbidden("wrong registration session token")
    elif who.anonymous:
        raise Unauthorized("this registration session was opened with a token: send it as Bearer")
    elif who.user_id != row.user_id:
        raise Forbidden("this registration session belongs to another user")
    return row


def _open(row: Opened) -> Opened:
    if row.status != "open":
        raise Conflict(f"registration session {row.id} is already finalized: start a new one")
    if aware(row.expires_at) < now():
        raise Conflict(f"registration session {row.id} expired: start a new one")
    return row


def _stage(session: Session, row: Opened, kind: str, key: str, body: dict) -> bool:
    """Stage one item (a later copy replaces an earlier one); True if it is new.

    One upsert statement, not a read then an ORM update: a finalize running at the same time
    deletes the staged rows, and an update of a row gone meanwhile was a 500 (fuzzing found it)."""
    from sqlalchemy.dialects import postgresql, sqlite

    existed = session.scalar(select(Staged.id).where(Staged.session_id == row.id, Staged.kind == kind,
                                                     Staged.key == key)) is not None
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(Staged).values(session_id=row.id, kind=kind, key=key, body=json.dumps(body))
    session.execute(stmt.on_conflict_do_update(index_elements=["session_id", "kind", "key"],
                                               set_={"body": stmt.excluded.body}))
    return not existed


def _stage_all(session: Session, row: Opened, kind: str, items: dict[str, dict]) -> None:
    """Stage many items (key -> body), where no count of new ones is wanted: one cached
    upsert statement, run with a parameter set per item (executemany)."""
    if not items:
        return
    conn = session.connection()
    rows = [{"session_id": row.id, "kind": kind, "key": key, "body": json.dumps(body)}
            for key, body in items.items()]
    conn.execute(_UPSERTS["postgresql" if conn.dialect.name == "postgresql" else "sqlite"], rows)


def _stage_many(session: Session, row: Opened, kind: str, items: list[tuple[str, dict]]) -> int:
    """Stage (key, body) items, a later copy of a key replacing an earlier one; returns how
    many keys were not staged before. One read of the keys already there, then one cached
    upsert run with a parameter set per key: it was a read and an upsert per item."""
    conn = session.connection()
    keys = list(dict.fromkeys(key for key, _ in items))
    there: set[str] = set()
    for start in range(0, len(keys), 500):   # under SQLite's limit on bound parameters
        there.update(conn.execute(_STAGED_KEYS, {"rs": row.id, "kind": kind,
                                                 "keys": keys[start:start + 500]}).scalars())
    _stage_all(session, row, kind, dict(items))
    return sum(key not in there for key in keys)


def stage_jobs(session: Session, row: Opened, who: Principal, jobs: list[dict]) -> dict:
    _open(row)
    uids = [j["job_uid"] for j in jobs]
    known = dict(session.execute(select(Job.job_uid, Dag).join(Dag, Dag.id == Job.dag_id)
                                 .where(Job.job_uid.in_(uids))).all())
    errors: list[str | None] = []   # aligned with jobs: a non-empty entry fails that job
    seen_hashes: list[str] = []     # finalized DAGs (visible to the caller) that hold these jobs
    staging: list[tuple[str, dict]] = []
    for job in jobs:
        dag_row = known.get(job["job_uid"])
        errors.append(None)
        if dag_row is None:
            staging.append((job["job_uid"], job))
        elif can_see(who, dag_row):
            if dag_row.hash not in seen_hashes:
                seen_hashes.append(dag_row.hash)
        else:
            errors[-1] = f"job {job['job_uid']} already belongs to another DAG"
    created = _stage_many(session, row, "job", staging)
    restaged = len(staging) - created   # each copy after the first of a key counts here, as before
    session.commit()
    return {"job_ids": [None if e else u for u, e in zip(uids, errors, strict=True)], "errors": errors,
            "created_count": created, "existing_count": restaged,
            "already_registered_session_hashes": seen_hashes, "existing_binding_prepared": False}


def stage_artifacts(session: Session, row: Opened, artifacts: list[dict]) -> dict:
    _open(row)
    created = _stage_many(session, row, "artifact",
                          [(writes.primary_digest(a["hashes"]), a) for a in artifacts])
    session.commit()
    return {"created": created, "updated": len(artifacts) - created, "errors": 0}


def stage_composite(session: Session, row: Opened, composite: dict) -> dict:
    _open(row)
    created = _stage(session, row, "artifact", composite["hash"], composite)
    session.commit()
    return {"artifact_id": composite["hash"], "created": created}


def stage_edges(session: Session, row: Opened, job_uid: str, direction: str,
                edges: list[dict]) -> int:
    _open(row)
    if session.connection().execute(_JOB_STAGED, {"rs": row.id, "uid": job_uid}).first() is None:
        raise NotFound(f"job {job_uid} is not in this registration session: send it with jobs/batch first")
    items: dict[str, dict] = {}   # in the order first sent, each with its last copy
    for e in edges:
        items[f"{job_uid}:{e['hash']}"] = {**e, "job_uid": job_uid}
    _stage_all(session, row, direction, items)
    session.commit()
    return len(edges)


def _staged(session: Session, row: Opened) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {"job": [], "artifact": [], "in": [], "out": []}
    for kind, body in session.execute(select(Staged.kind, Staged.body).where(Staged.session_id == row.id)
                                      .order_by(Staged.id)):
        out[kind].append(json.loads(body))
    return out


def _scope(session: Session, row: Opened, who: Principal, request: dict | None) -> dict:
    """owner, project and visibility of the DAG this session will publish."""
    if row.mode == ANONYMOUS_MODE:
        return {"owner_user_id": None, "project_id": None, "visibility": "public"}
    request = request or {}
    visibility = request.get("visibility") or "private"
    project_id = who.project_id
    wanted = request.get("project_id")
    if wanted is not None:
        project = session.scalar(select(Project).where(Project.slug == str(wanted))) or (
            session.get(Project, int(wanted)) if str(wanted).isdigit() else None)
        if project is None or project.id not in who.member_of:
            raise Forbidden(f"project {wanted!r}: not a project of this token's user")
        project_id = project.id
    return {"owner_user_id": who.user_id, "project_id": project_id, "visibility": visibility}


def _lineage_jobs(staged: dict[str, list[dict]]) -> list[dict]:
    steps = {j["job_uid"]: j["step_number"] for j in staged["job"]}
    edges: dict[tuple[str, str], list[dict]] = {}
    for direction in ("in", "out"):
        for e in staged[direction]:
            edges.setdefault((e["job_uid"], direction), []).append(e)
    return [{**j, "parent_step_number": steps.get(j.get("parent_job_uid")),
             "inputs": edges.get((j["job_uid"], "in"), []), "outputs": edges.get((j["job_uid"], "out"), [])}
            for j in staged["job"]]


def _check_expected(staged: dict[str, list[dict]], expected: dict | None) -> None:
    if not expected:
        return
    have = {"jobs": len(staged["job"]), "inputs": len(staged["in"]), "outputs": len(staged["out"])}
    wrong = {k: (v, have[k]) for k, v in expected.items() if k in have and v is not None and v != have[k]}
    if wrong:
        detail = ", ".join(f"{k}: expected {want}, staged {got}" for k, (want, got) in wrong.items())
        raise BadRequest(f"Staged lineage counts did not match ({detail}): send the missing items, then "
                         "finalize again")


def finalize(session: Session, row: Opened, who: Principal, body: dict, base_url: str) -> dict:
    if row.status == "finalized":
        dag_row = session.get(Dag, row.dag_id)
        return receipt(dag_row, base_url, created=False, mode=row.mode)
    _open(row)
    staged = _staged(session, row)
    if not staged["job"]:
        raise BadRequest("nothing to finalize: send the jobs (jobs/batch) first")
    _check_expected(staged, body.get("expected"))
    jobs = _lineage_jobs(staged)
    identity = "anonymous" if row.mode == ANONYMOUS_MODE else who.creator_identity
    git = {"repo": body.get("git_repo"), "commit": body.get("git_commit"), "branch": body.get("git_branch")}
    digest = session_hash(identity, git, jobs)
    dag_row, created = writes.dag(session, {
        "hash": digest, "git_repo": (git["repo"] or "").strip() or None, "git_commit": git["commit"],
        "git_branch": git["branch"], "creator_identity": identity, "legacy": False,
        **_scope(session, row, who, body.get("scope_request"))})
    if created:
        _publish(session, dag_row, staged, jobs)
    orm_row = session.get(RegistrationSession, row.id)
    orm_row.status, orm_row.dag_id = "finalized", dag_row.id
    session.execute(delete(Staged).where(Staged.session_id == row.id))
    session.commit()
    return receipt(dag_row, base_url, created=created, mode=row.mode)


def _publish(session: Session, dag_row: Dag, staged: dict[str, list[dict]], jobs: list[dict]) -> None:
    from roar.glaas.store.publish import publish

    publish(session, dag_row, staged["artifact"], jobs)


def receipt(dag_row: Dag, base_url: str, created: bool, mode: str) -> dict:
    url = f"{base_url.rstrip('/')}/dag/{dag_row.hash}"
    return {"published_session_hash": dag_row.hash, "session_hash": dag_row.hash, "hash": dag_row.hash,
            "published_url": url, "url": url, "status": "finalized", "mode": mode, "created": created}


def finalized_dag(session: Session, row: Opened) -> Dag:
    if row.status != "finalized" or row.dag_id is None:
        raise Conflict("labels come after finalize: finalize this registration session first")
    return session.get(Dag, row.dag_id)
