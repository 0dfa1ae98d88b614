"""Labels of a registered DAG, its jobs and artifacts: pushed from and pulled into the
workspace (`roar label push|pull REF`, and by `roar register`).

An entity's labels on the server are a versioned JSON object; roar's local labels are
flat key=value strings. Push makes the server's object equal to the local labels: it
sends them with the keys only the server has as deleted keys, based on the version it
read (a change meanwhile is a 409, "pull and try again"). Pull makes the local labels
equal to the server's: it sets what differs and unsets what the server does not have,
through the workspace's label history (so it can be seen, and undone, locally).
"""

from __future__ import annotations

from typing import Any

from roar.remote.http import Client, NotFound


def _query(doc: dict) -> dict[str, str]:
    query = {"entity_type": doc["entity_type"], "session_hash": doc["session_hash"]}
    for key in ("job_uid", "artifact_hash"):
        if doc.get(key):
            query[key] = doc[key]
    return query


def remote_current(client: Client, doc: dict) -> tuple[int, dict[str, Any]]:
    """(version, labels) of one entity on the server; (0, {}) when it has none."""
    try:
        found = client.get("/labels/current", params=_query(doc))
    except NotFound:
        return 0, {}
    return int(found.get("version") or 0), found.get("metadata") or {}


def push_docs(client: Client, docs: list[dict]) -> dict:
    """Make the server's labels of each entity those of `docs` (metadata: the local labels)."""
    out = []
    for doc in docs:
        version, remote = remote_current(client, doc)
        deleted = sorted(set(remote) - set(doc["metadata"]))
        out.append({**doc, "deleted_keys": deleted, "base_version": version})
    if not out:
        return {"processed": 0, "created": 0, "updated": 0, "noops": 0}
    return client.post("/labels/reconcile", {"session_hash": docs[0]["session_hash"],
                                             "mode": "sync_user_labels", "dry_run": False, "prune": False,
                                             "labels": out})


def pull_changes(client: Client, entities: list[dict], local: list[dict[str, str]]) -> list[dict[str, Any]]:
    """For each entity (a label doc without metadata) and its local labels: the changes
    {key: value or None} that make the local labels equal the server's."""
    changes = []
    for doc, mine in zip(entities, local, strict=True):
        _, remote = remote_current(client, doc)
        theirs = _flatten(remote)
        delta: dict[str, Any] = {k: v for k, v in theirs.items() if mine.get(k) != v}
        delta.update({k: None for k in mine if k not in theirs})
        changes.append(delta)
    return changes


def _flat(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def entities(plan) -> list[tuple[dict, str, str]]:
    """(label doc without metadata, local kind, local id) of everything a plan registers."""
    out = [({"entity_type": "dag", "session_hash": plan.hash}, "session", plan.session_id)]
    out += [({"entity_type": "job", "session_hash": plan.hash, "job_uid": job["job_uid"]}, "job", uid)
            for job, uid in zip(plan.jobs, plan.local_uids, strict=True)]
    digests = [a["hashes"][0]["digest"] for a in plan.artifacts if a.get("hashes")]
    digests += [c["hash"] for c in plan.composites]
    out += [({"entity_type": "artifact", "session_hash": plan.hash, "artifact_hash": d}, "artifact", d)
            for d in digests]
    return out


def sync(client: Client, ws, plan, direction: str) -> dict[str, int]:
    """Push the plan's local labels to its registered DAG, or pull them from it.
    {"entities", "changed"}: how many entities were looked at, how many changed."""
    from roar.errors import RefNotFound
    from roar.store import labels as local_labels

    try:
        client.get(f"/sessions/{plan.hash}")
    except NotFound:
        raise RefNotFound(f"this lineage is not registered on {client.url} as {plan.identity} (session "
                          f"{plan.hash}): roar register it first") from None
    found = entities(plan)
    conn = ws.index()
    try:
        local = [local_labels.current(conn, kind, ident) if ident else {} for _, kind, ident in found]
    finally:
        conn.close()
    if direction == "push":
        docs = [{**doc, "metadata": mine} for (doc, _, _), mine in zip(found, local, strict=True)]
        pairs = [(d, remote_current(client, d)) for d in docs]
        changed = [d for d, (_, theirs) in pairs if _flatten(theirs) != d["metadata"]]
        if changed:
            push_docs(client, changed)
        return {"entities": len(docs), "changed": len(changed)}
    changes = pull_changes(client, [doc for doc, _, _ in found], local)
    count = 0
    for (_, kind, ident), delta in zip(found, changes, strict=True):
        if delta and ident:
            ws.add_label_changes(kind, ident, delta)
            count += 1
    return {"entities": len(found), "changed": count}


def _flatten(remote: dict) -> dict[str, str]:
    return {k: v if isinstance(v, str) else _flat(v) for k, v in remote.items()}
