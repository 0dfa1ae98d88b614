"""Labels: versioned JSON objects on a DAG, a job of it or an artifact in it.

Each change is a new version (merge of the current object with the new keys, minus
deleted keys); writing what is already there is a no-op and needs no permission, which
lets a client re-send the labels of a DAG it registered before. Who may change labels: the
DAG's owner or project members; for an anonymous DAG, its registration session, and the
first write of each entity's labels (the legacy path has no other credential).
"""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from roar.glaas.models import Dag, Job, Label
from roar.glaas.store.errors import BadRequest, Conflict, Forbidden, NotFound
from roar.glaas.store.scope import Principal, can_write, visible
from roar.glaas.store.tokens import now


def entity_key(doc: dict) -> str:
    kind = doc.get("entity_type")
    if kind == "dag":
        return "dag"
    if kind == "job" and doc.get("job_uid"):
        return f"job:{doc['job_uid']}"
    if kind == "artifact" and doc.get("artifact_hash"):
        return f"artifact:{doc['artifact_hash'].lower()}"
    need = {"job": "a job_uid", "artifact": "an artifact_hash"}.get(kind, "entity_type dag, job or artifact")
    raise BadRequest(f"label for entity_type {kind!r} needs {need}")


def _dag(session: Session, who: Principal, digest: str | None) -> Dag:
    dag = session.scalar(select(Dag).where(Dag.hash == (digest or "").lower(), visible(who)))
    if dag is None:
        raise NotFound(f"no session {digest} is registered (or it is not visible to you)")
    return dag


def _check_entity(session: Session, dag: Dag, key: str) -> None:
    if key.startswith("job:"):
        if session.scalar(select(Job.id).where(Job.job_uid == key[4:], Job.dag_id == dag.id)) is None:
            raise NotFound(f"no job {key[4:]} in session {dag.hash}")


def current(session: Session, dag: Dag, key: str) -> Label | None:
    return session.scalars(select(Label).where(Label.dag_id == dag.id, Label.entity_key == key)
                           .order_by(Label.version.desc()).limit(1)).first()


def _merge(base: dict, new: dict) -> dict:
    out = dict(base)
    for key, value in new.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merge(out[key], value) if both else value
    return out


def _drop(body: dict, dotted: str) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        body = body.get(part)
        if not isinstance(body, dict):
            return
    body.pop(last, None)


def write(session: Session, who: Principal, doc: dict, *, session_write: Dag | None = None,
          dry_run: bool = False) -> dict:
    """Apply one label doc; session_write is the DAG a registration session may write."""
    dag = session_write or _dag(session, who, doc.get("session_hash"))
    key = entity_key(doc)
    _check_entity(session, dag, key)
    if not isinstance(doc.get("metadata", {}), dict):
        raise BadRequest("label metadata must be a JSON object")
    cur = current(session, dag, key)
    base = json.loads(cur.body) if cur else {}
    if doc.get("base_version") is not None and doc["base_version"] != (cur.version if cur else 0):
        raise Conflict(f"labels of {key} changed meanwhile (now version {cur.version if cur else 0}): "
                       "pull them and try again")
    body = _merge(base, doc.get("metadata") or {})
    for dotted in doc.get("deleted_keys") or []:
        _drop(body, dotted)
    result = {"entityType": doc.get("entity_type"), "sessionHash": dag.hash, "jobUid": doc.get("job_uid"),
              "artifactHash": doc.get("artifact_hash"), "deletedKeys": doc.get("deleted_keys") or []}
    if cur is not None and body == base:
        return {**result, "action": "noop", "version": cur.version}
    allowed = (session_write is not None or can_write(who, dag)
               or (dag.owner_user_id is None and dag.project_id is None and cur is None))
    if not allowed:
        raise Forbidden(f"labels of session {dag.hash}: write access is required (its owner's token)")
    version = (cur.version if cur else 0) + 1
    if not dry_run:
        try:
            with session.begin_nested():
                session.add(Label(dag_id=dag.id, entity_key=key, version=version, body=json.dumps(body),
                                  created_at=now()))
        except IntegrityError:
            raise Conflict(f"labels of {key} changed meanwhile: pull them and try again") from None
    return {**result, "action": "created" if cur is None else "updated", "version": version}


def write_all(session: Session, who: Principal, docs: list[dict], **kw) -> dict:
    results = [write(session, who, doc, **kw) for doc in docs]
    session.commit()
    count = {a: sum(1 for r in results if r["action"] == a) for a in ("created", "updated", "noop")}
    return {"processed": len(results), "created": count["created"], "updated": count["updated"],
            "noops": count["noop"], "conflicts": 0,
            "deletedKeys": sorted({k for r in results for k in r["deletedKeys"]}), "results": results}


def _query_key(entity_type: str, job_uid: str | None, artifact_hash: str | None) -> str:
    return entity_key({"entity_type": entity_type, "job_uid": job_uid, "artifact_hash": artifact_hash})


def show_current(session: Session, who: Principal, entity_type: str, session_hash: str,
                 job_uid: str | None, artifact_hash: str | None) -> dict:
    dag = _dag(session, who, session_hash)
    cur = current(session, dag, _query_key(entity_type, job_uid, artifact_hash))
    if cur is None:
        raise NotFound("no labels on this entity")
    return {"version": cur.version, "canEdit": can_write(who, dag), "metadata": json.loads(cur.body),
            "sessionHash": dag.hash, "jobUid": job_uid, "artifactHash": artifact_hash,
            "entityType": entity_type}


def history(session: Session, who: Principal, entity_type: str, session_hash: str,
            job_uid: str | None, artifact_hash: str | None) -> dict:
    dag = _dag(session, who, session_hash)
    key = _query_key(entity_type, job_uid, artifact_hash)
    rows = session.scalars(select(Label).where(Label.dag_id == dag.id, Label.entity_key == key)
                           .order_by(Label.version)).all()
    if not rows:
        raise NotFound("no labels on this entity")
    return {"labels": [{"version": r.version, "metadata": json.loads(r.body)} for r in rows]}
