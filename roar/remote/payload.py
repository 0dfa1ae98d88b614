"""The DAG a registration sends, built from the local store: which jobs, and exactly the
bodies that leave the machine.

- REF selects the jobs: an artifact, the jobs of its lineage (back to its sources); a
  job, it and every job upstream of it; a session, all its jobs.
- Everything sent comes from the job records, which roar redacted when it wrote them
  (roar.record.context.redact): the command and argv as recorded, and of the environment
  only the variables the job was seen to read (`env_read`), with their recorded values.
  The record's full initial environment, its process list and the host name stay local.
  Strings are passed through the same redaction once more on the way out, so a record
  written by an older roar cannot leak what today's rules catch.
- Paths inside the workspace are sent relative to its root (the same lineage registered
  from another clone gets the same DAG hash); others (URLs, /usr/...) as they are.
- The DAG hash is computed here over exactly these bodies, as the server computes it
  (roar.glaas.canonical), and the remote job uids derive from it: sha256(hash + NUL +
  local uid)[:32], so registering again sends the same uids and the server recognizes them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from roar import __version__
from roar.errors import RefNotFound
from roar.record.context.redact import scrub_argv, scrub_value, strip_url

SOURCE_TYPES = {"https": "https", "s3": "s3", "gs": "gs", "hf": "hf"}
TREE_ALGORITHM = "composite-blake3"   # our tree hash, under the protocol's composite algorithm


@dataclass
class Plan:
    kind: str                          # artifact | job | session (what REF named)
    id: str
    target: str | None                 # the artifact asked for
    root: str
    local_uids: list[str]
    jobs: list[dict[str, Any]]         # POST jobs/batch bodies (job_uid: the remote uid)
    artifacts: list[dict[str, Any]]    # POST artifacts/batch entries
    composites: list[dict[str, Any]]   # POST artifacts/composites bodies
    inputs: dict[str, list[dict[str, Any]]]    # remote uid -> edges
    outputs: dict[str, list[dict[str, Any]]]
    git: dict[str, str | None]
    identity: str
    hash: str                          # the DAG hash, as the server will compute it
    labels: list[dict[str, Any]] = field(default_factory=list)   # label docs (register pushes them)
    session_id: str | None = None      # the local session of the latest job (its labels are the DAG's)

    @property
    def counts(self) -> dict[str, int]:
        return {"jobs": len(self.jobs), "inputs": sum(map(len, self.inputs.values())),
                "outputs": sum(map(len, self.outputs.values()))}


def remote_uid(dag_hash: str, local_uid: str) -> str:
    return hashlib.sha256(f"{dag_hash}\0{local_uid}".encode()).hexdigest()[:32]


def select(conn, ref: str) -> tuple[Any, list[str]]:
    """(the resolved Ref, the local job uids to send, oldest first)."""
    from roar.lineage import queries, refs

    found = refs.resolve(conn, ref)
    if found.kind == "artifact":
        uids = [j["uid"] for j in queries.lineage(conn, found.id)["jobs"]]
        if not uids:
            raise RefNotFound(f"artifact {found.id[:12]} was made by no recorded job: there is no lineage "
                              "to register (register the artifact a job made from it)")
    elif found.kind == "job":
        uids = [found.id]
        for art, in conn.execute("SELECT artifact FROM job_files WHERE job = ? AND role = 'input'"
                                 " AND composite IS NULL AND remote = 0", (found.id,)).fetchall():
            uids += [j["uid"] for j in queries.lineage(conn, art)["jobs"] if j["uid"] not in uids]
    else:
        uids = [r[0] for r in conn.execute("SELECT uid FROM jobs WHERE session_id = ?", (found.id,))]
        if not uids:
            raise RefNotFound(f"session {found.id} has no jobs: nothing to register")
    order = dict(conn.execute(f"SELECT uid, seq FROM jobs WHERE uid IN ({','.join('?' * len(uids))})", uids))
    return found, sorted(uids, key=lambda u: order.get(u, 0))


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class _Paths:
    def __init__(self, root: str) -> None:
        self.prefix = root.rstrip("/") + "/"

    def __call__(self, path: Any) -> str:
        path = _text(path)
        if "://" in path:
            return strip_url(path)
        if path + "/" == self.prefix:
            return "."
        return path[len(self.prefix):] if path.startswith(self.prefix) else path


def _redacted(value: Any) -> Any:
    """The record's strings once more through the record's own redaction."""
    if isinstance(value, str):
        return scrub_value(value)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def _packages(context: dict) -> dict[str, dict[str, str]]:
    packages = context.get("packages") or {}
    pip = {d["name"]: d.get("version") or "" for interp in packages.get("python") or []
           for d in interp.get("distributions") or [] if d.get("name") and d["name"] != "roar"}
    dpkg = {p["name"]: p.get("version") or "" for p in packages.get("system") or []
            if p.get("name") and p.get("manager", "dpkg") == "dpkg"}
    return {"pip": dict(sorted(pip.items())), "dpkg": dict(sorted(dpkg.items()))}


def _metadata(record: dict, paths: _Paths, trees: list[str]) -> dict[str, Any]:
    context = record.get("context") or {}
    machine = context.get("machine") or {}
    git = context.get("git") or {}
    python = [{"exe": i.get("exe"), "version": i.get("version")}
              for i in (context.get("packages") or {}).get("python") or []]
    runtime = {"os": machine.get("os"), "arch": machine.get("arch"), "kernel": machine.get("kernel"),
               "cpu": machine.get("cpu"), "memory_bytes": machine.get("memory_bytes"),
               "gpu": machine.get("gpus"), "container": machine.get("container"), "python": python,
               "env_vars": record.get("env_read")}
    meta = {
        "roar_version": __version__,
        "packages": _packages(context),
        "runtime": runtime,
        "git": {"commit": git.get("commit"), "branch": git.get("branch"), "dirty": git.get("dirty"),
                "repo": git.get("remote")} if git else None,
        "cwd": paths(record.get("cwd") or ""),
        "roar": {"uid": record["uid"], "status": (record.get("exit") or {}).get("status"),
                 "signal": (record.get("exit") or {}).get("signal"),
                 "argv": scrub_argv([_text(a) for a in record.get("argv") or []]),
                 "argv_redacted": bool(record.get("argv_redacted")), "ended_at": record.get("ended_at"),
                 "composites": trees},   # which of its artifacts are directories (tree hashes)
    }
    return _redacted(meta)


def _artifact(entry: dict, path: str) -> dict[str, Any]:
    known = sorted((entry.get("hashes") or {}).items())
    hashes = [{"algorithm": alg, "digest": digest} for alg, digest in known
              if alg in ("blake3", "sha256", "sha512", "md5")]
    if entry.get("hash") and not any(h["digest"] == entry["hash"] for h in hashes):
        hashes.insert(0, {"algorithm": "blake3", "digest": entry["hash"]})
    body: dict[str, Any] = {"hashes": hashes, "size": entry.get("size")}
    scheme = path.split("://", 1)[0] if "://" in path else None
    if scheme:
        body["source_type"] = SOURCE_TYPES.get(scheme)
        body["source_url"] = path
    return body


def _composite(entry: dict) -> dict[str, Any]:
    members = sorted(entry.get("members") or [], key=lambda m: _text(m["name"]))
    return {"hash": entry["hash"], "hashes": [{"algorithm": TREE_ALGORITHM, "digest": entry["hash"]}],
            "size": entry.get("size"), "component_count_total": len(members),
            "components": [{"relative_path": _text(m["name"]), "leaf_kind": "file",
                            "component_algorithm": "blake3", "component_digest": m["hash"],
                            "component_size": m.get("size"), "component_type": "file"} for m in members]}


def _edges(entries: list[dict], paths: _Paths, artifacts: dict, composites: dict) -> list[dict]:
    from roar.artifacts import composite

    singles, grouped = composite.group(entries)
    edges: dict[str, dict] = {}
    for entry in singles + grouped:
        if not entry.get("hash"):
            continue      # never hashed (unreadable): nothing to name it by
        path = paths(entry["path"])
        if entry.get("kind") == "composite":
            composites.setdefault(entry["hash"], _composite(entry))
        else:
            artifacts.setdefault(entry["hash"], _artifact(entry, path))
        edge = {"hash": entry["hash"], "path": path, "size": entry.get("size")}
        if entry["hash"] not in edges or path < edges[entry["hash"]]["path"]:
            edges[entry["hash"]] = edge   # one edge per artifact and direction, as the server keeps them
    return sorted(edges.values(), key=lambda e: (e["hash"], e["path"]))


def _git(records: list[dict]) -> dict[str, str | None]:
    for record in reversed(records):   # the latest job's commit: the one to check out
        git = (record.get("context") or {}).get("git") or {}
        if git.get("commit"):
            return {"repo": strip_url(git["remote"]) if git.get("remote") else None, "commit": git["commit"],
                    "branch": git.get("branch")}
    return {"repo": None, "commit": None, "branch": None}


def build(ws, ref: str, identity: str) -> Plan:
    """The plan for REF in workspace `ws`, for a registration as `identity`."""
    from roar.glaas.canonical import session_hash  # plain hashlib + json: no server imports
    from roar.store import labels as local_labels

    conn = ws.index()
    try:
        found, uids = select(conn, ref)
        records = [ws.read_record(uid) for uid in uids]
        job_labels = {uid: local_labels.current(conn, "job", uid) for uid in uids}
        session_ids = sorted({r["session"] for r in records})
        session_labels = {}
        for sid in session_ids:
            session_labels.update(local_labels.current(conn, "session", sid))
        art_labels: dict[str, dict] = {}
    finally:
        conn.close()
    paths = _Paths(str(ws.root))
    artifacts: dict[str, dict] = {}
    composites: dict[str, dict] = {}
    jobs, ins, outs = [], [], []
    for record in records:
        ins.append(_edges(record.get("inputs") or [], paths, artifacts, composites))
        outs.append(_edges(record.get("outputs") or [], paths, artifacts, composites))
        trees = sorted({e["hash"] for e in ins[-1] + outs[-1] if e["hash"] in composites})
        jobs.append({"command": scrub_value(_text(record["command"])), "timestamp": record.get("started_at"),
                     "git_commit": ((record.get("context") or {}).get("git") or {}).get("commit"),
                     "git_branch": ((record.get("context") or {}).get("git") or {}).get("branch"),
                     "duration_seconds": record.get("duration_s"), "exit_code": record.get("exit_code"),
                     "job_type": record["type"], "step_number": record["step"],
                     "metadata": json.dumps(_metadata(record, paths, trees), sort_keys=True,
                                            separators=(",", ":"))})
    git = _git(records)
    canonical = [{**job, "inputs": i, "outputs": o, "parent_step_number": None}
                 for job, i, o in zip(jobs, ins, outs, strict=True)]
    digest = session_hash(identity, git, canonical)
    for job, uid in zip(jobs, uids, strict=True):
        job["job_uid"] = remote_uid(digest, uid)
    conn = ws.index()
    try:
        for art in list(artifacts) + list(composites):
            found_labels = local_labels.current(conn, "artifact", art)
            if found_labels:
                art_labels[art] = found_labels
    finally:
        conn.close()
    docs = []
    if session_labels:
        docs.append({"entity_type": "dag", "session_hash": digest, "metadata": session_labels})
    docs += [{"entity_type": "job", "session_hash": digest, "job_uid": job["job_uid"],
              "metadata": job_labels[uid]} for job, uid in zip(jobs, uids, strict=True) if job_labels[uid]]
    docs += [{"entity_type": "artifact", "session_hash": digest, "artifact_hash": art, "metadata": meta}
             for art, meta in art_labels.items()]
    target = found.id if found.kind == "artifact" else None
    return Plan(found.kind, found.id, target, str(ws.root), uids, jobs,
                list(artifacts.values()), list(composites.values()),
                {j["job_uid"]: i for j, i in zip(jobs, ins, strict=True)},
                {j["job_uid"]: o for j, o in zip(jobs, outs, strict=True)}, git, identity, digest,
                _redacted(docs), records[-1]["session"])
