"""Reading registered lineage back: an artifact and where it came from, a session, and a
registered DAG as roar.lineage.dag objects, so the local renderers draw it.

Only what the server lets the caller see comes back: an artifact's existence is public,
its jobs and session follow the DAG's scope (a private DAG is, to anyone else, a hash
that exists with nothing attached, and its session a 404).
"""

from __future__ import annotations

import re
from typing import Any

from roar.errors import AmbiguousRef, RefNotFound, UsageError
from roar.remote.http import Client, Conflict, NotFound

HEX = re.compile(r"^[0-9a-f]{8,128}$")
SESSION = re.compile(r"^[0-9a-f]{64}$")
JOB_UID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")   # as the server takes them


def looks_remote(ref: str) -> bool:
    """A ref the server could know: an artifact hash or prefix, a session hash, or a job uid
    (hex, as roar and roar-cli make them). `--remote` tries any job uid."""
    return bool(HEX.match(ref.lower().rpartition(":")[2]))


def _hex(ref: str) -> str:
    digits = ref.strip().lower().rpartition(":")[2]
    if not HEX.match(digits):
        raise UsageError(f"{ref!r} cannot name anything registered: give an artifact hash (8 to 128 hex "
                         "digits, or a unique prefix), a session hash (64) or a job uid")
    return digits


def _artifact(client: Client, prefix: str) -> dict | None:
    try:
        return client.get(f"/artifacts/{prefix}")
    except NotFound:
        return None
    except Conflict:
        raise AmbiguousRef(f"{prefix} matches several registered artifacts on {client.url}: give more of "
                           "the hash") from None


def session(client: Client, digest: str) -> dict:
    try:
        return client.get(f"/sessions/{digest}")
    except NotFound:
        raise RefNotFound(f"no session {digest} is registered on {client.url} (or it is not visible to you: "
                          "roar whoami)") from None


def job(client: Client, uid: str) -> dict | None:
    """A registered job by its uid (GET /jobs/{uid}, this server's addition), or None."""
    try:
        return client.get(f"/jobs/{uid}")
    except NotFound:
        return None


def find(client: Client, ref: str) -> tuple[str, dict]:
    """("artifact", its view with its lineage), ("session", the DAG) or ("job", the job).
    A hash is tried as an artifact, then as a session (64 digits) or a job uid; a uid
    that is not hex only as a job."""
    stripped = ref.strip()
    if not HEX.match(stripped.lower().rpartition(":")[2]) and JOB_UID.match(stripped):
        found = job(client, stripped)
        if found is None:
            raise RefNotFound(_no_job(client, stripped))
        return "job", found
    digits = _hex(ref)
    art = _artifact(client, digits)
    if art is not None:
        return "artifact", _with_lineage(client, art)
    if SESSION.match(digits):
        try:
            return "session", session(client, digits)
        except RefNotFound:
            pass
    found = job(client, stripped if JOB_UID.match(stripped) else digits)
    if found is not None:
        return "job", found
    if SESSION.match(digits):
        raise RefNotFound(f"no artifact, session or job {digits} is registered on {client.url} (or it is not "
                          "visible to you: roar whoami)")
    raise RefNotFound(f"no artifact or job {digits} is registered on {client.url} (or it is not visible to "
                      "you: roar whoami)")


def _no_job(client: Client, uid: str) -> str:
    return (f"no job {uid} is registered on {client.url} (or it is not visible to you: roar whoami); a job's "
            "uid there is not its local one: `roar show ARTIFACT --remote` names it")


def _with_lineage(client: Client, art: dict) -> dict:
    digest = art["hash"]
    lineage = client.get(f"/artifacts/{digest}/lineage")
    produced = lineage.get("producedBy")
    session_hash = produced["sessionHash"] if produced else art.get("originalSessionHash")
    others: list[dict] = []
    dag = None
    if session_hash:
        dag = session(client, session_hash)
        others = [a for a in artifacts_of(dag) if a["hash"] != digest]
    return {"artifact": art, "produced_by": produced, "session": session_hash,
            "session_artifacts": others, "dag": dag}


def artifacts_of(dag: dict) -> list[dict]:
    """The artifacts of a DAG, in order of first appearance: {hash, paths, made_by (uid or None)}."""
    seen: dict[str, dict] = {}
    for job in _ordered(dag["jobs"]):
        for role in ("inputs", "outputs"):
            for edge in sorted(job.get(role) or [], key=lambda e: e.get("path") or ""):
                entry = seen.setdefault(edge["hash"], {"hash": edge["hash"], "paths": [], "made_by": None})
                if edge.get("path") and edge["path"] not in entry["paths"]:
                    entry["paths"].append(edge["path"])
                if role == "outputs" and entry["made_by"] is None:
                    entry["made_by"] = job["jobUid"]
    return list(seen.values())


def _ordered(jobs: list[dict]) -> list[dict]:
    """In the order they ran (the server lists them by step)."""
    if all(isinstance(j.get("timestamp"), (int, float)) for j in jobs):
        return sorted(jobs, key=lambda j: j["timestamp"])
    return list(jobs)


def dag_of(client: Client, ref: str) -> dict:
    """The registered DAG a session hash names, or that produced an artifact."""
    digits = _hex(ref)
    if SESSION.match(digits):
        try:
            return client.get(f"/sessions/{digits}")
        except NotFound:
            pass
    try:
        return client.get(f"/artifacts/{digits}/dag")
    except NotFound:
        raise RefNotFound(f"no session or artifact {digits} with a lineage visible to you is registered on "
                          f"{client.url}") from None
    except Conflict:
        raise AmbiguousRef(f"{digits} matches several registered artifacts on {client.url}: give more of "
                           "the hash") from None


def _meta(job: dict) -> dict[str, Any]:
    meta = job.get("metadata")
    roar = meta.get("roar") if isinstance(meta, dict) else None
    return roar if isinstance(roar, dict) else {}


def to_dag(view: dict):
    """A registered DAG as roar.lineage.dag objects, keyed as the local builder keys its
    nodes (one node per version of an artifact); no staleness: nothing to compare with."""
    from roar.lineage.dag import ArtifactNode, Dag, JobNode, location_key, version_key

    jobs: list[JobNode] = []
    artifacts: dict[str, ArtifactNode] = {}
    last_made: dict[str, str] = {}     # artifact hash -> the latest job that wrote those bytes
    for position, raw in enumerate(_ordered(view["jobs"])):
        meta = _meta(raw)
        code = raw.get("exitCode")
        status = meta.get("status") or ("ok" if code == 0 else "failed")
        job = JobNode(raw["jobUid"], raw["stepNumber"], raw.get("jobType") or "run", raw.get("command") or "",
                      status, code, raw.get("timestamp"), position=position)
        trees = set(meta.get("composites") or [])
        for role in ("inputs", "outputs"):
            for edge in sorted(raw.get(role) or [], key=lambda e: e.get("path") or ""):
                path, digest = edge.get("path") or edge["hash"], edge["hash"]
                remote = "://" in path
                if role == "inputs":
                    made_by = None if remote else last_made.get(digest)
                    key = location_key(path, None) if remote else version_key(digest, made_by)
                else:
                    made_by = job.uid
                    key = location_key(path, made_by) if remote else version_key(digest, made_by)
                node = artifacts.get(key)
                if node is None:
                    kind = "location" if remote else "composite" if digest in trees else "file"
                    node = artifacts[key] = ArtifactNode(digest, kind, None)
                    if made_by:
                        node.producers.append(made_by)
                if path not in node.paths:
                    node.paths.append(path)
                if role == "inputs":
                    job.inputs.append((path, key))
                    node.consumers.append(job.uid)
                    if made_by:
                        job.fed_by[key] = made_by
                else:
                    job.outputs.append((path, key))
        for path, key in job.outputs:
            if "://" not in path:
                last_made[artifacts[key].hash] = job.uid
        jobs.append(job)
    return Dag({"id": view.get("sessionHash"), "seq": None}, jobs, artifacts)
