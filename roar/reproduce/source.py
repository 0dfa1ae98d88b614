"""Where a recipe's job records come from.

A RecordSource turns a reference into the job records it needs. The local workspace is
asked first; then, for an artifact hash (or prefix) it does not know, the configured GLaaS
server (`RemoteSource`): `find_records` asks each source in turn and the first that knows
the reference answers.

A registered DAG holds what `roar register` sent (docs/register.md), not the records
themselves: RemoteSource rebuilds records from it with what a recipe reads (steps,
commands, argv, inputs and outputs with their hashes, git, packages, machine). Paths were
registered relative to the workspace root; they are placed under REMOTE_ROOT, a directory
only root could create, which the reproduction maps to its own directory like any root.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from roar.errors import NotAWorkspace, RefNotFound


@dataclass
class Found:
    """The records a reference stands for, oldest first, and what it named."""

    kind: str                      # artifact | job | session
    id: str
    records: list[dict[str, Any]]
    target_hash: str | None = None        # the artifact asked for
    target_path: str | None = None
    origin: str = "local"
    root: str | None = None               # the workspace root the records were made in
    notes: list[str] = field(default_factory=list)


class RecordSource(Protocol):
    def lookup(self, ref: str) -> Found | None:
        """The records for `ref`, or None when this source does not know it."""


class LocalSource:
    def __init__(self, start: Path | None = None) -> None:
        self.start = start

    def lookup(self, ref: str) -> Found | None:
        from roar.lineage import queries, refs
        from roar.store.workspace import Workspace

        try:
            ws = Workspace.find(self.start)
        except NotAWorkspace:
            return None
        conn = ws.index()
        try:
            try:
                found = refs.resolve(conn, ref)
            except RefNotFound:
                return None
            if found.kind == "artifact":
                lineage = queries.lineage(conn, found.id)
                uids = [j["uid"] for j in lineage["jobs"]]
            elif found.kind == "job":
                uids = _job_and_ancestors(conn, found.id)
            else:
                uids = [r[0] for r in conn.execute("SELECT uid FROM jobs WHERE session_id = ?", (found.id,))]
            order = {uid: seq for uid, seq in conn.execute(
                f"SELECT uid, seq FROM jobs WHERE uid IN ({','.join('?' * len(uids))})", uids)}
        finally:
            conn.close()
        records = [ws.read_record(uid) for uid in sorted(uids, key=lambda u: order.get(u, 0))]
        return Found(found.kind, found.id, records,
                     target_hash=found.id if found.kind == "artifact" else None,
                     target_path=found.path, root=str(ws.root))


def _job_and_ancestors(conn, uid: str) -> list[str]:
    """A job and every job that made one of its inputs, transitively."""
    from roar.lineage import queries

    uids = [uid]
    for art, in conn.execute("SELECT artifact FROM job_files WHERE job = ? AND role = 'input'"
                             " AND composite IS NULL", (uid,)).fetchall():
        for job in queries.lineage(conn, art)["jobs"]:
            if job["uid"] not in uids:
                uids.append(job["uid"])
    return uids


REMOTE_ROOT = "/glaas-registered"


class RemoteSource:
    """An artifact registered on the configured GLaaS server (roar login, GLAAS_URL)."""

    def lookup(self, ref: str) -> Found | None:
        from roar.remote import config, lookup

        if not lookup.looks_remote(ref):
            return None
        settings = config.load()
        if not settings.url:
            return None
        from roar.remote.http import Client

        with Client(settings.url, settings.token) as client:
            try:
                view = lookup.dag_of(client, ref)
            except RefNotFound:
                return None
        digest = view.get("artifact", {}).get("hash") or lookup._hex(ref)
        root = f"{REMOTE_ROOT}/{view['sessionHash'][:16]}"
        records = [_record(job, view, root) for job in lookup._ordered(view["jobs"])]
        kind = "artifact" if view.get("artifact") else "session"
        return Found(kind, digest, records, target_hash=digest if kind == "artifact" else None,
                     origin=f"{settings.url}/s/{view['sessionHash']}", root=root,
                     notes=[f"registered on {settings.url} as session {view['sessionHash']}"])


def _under(root: str, path: str | None) -> str:
    if not path or path == ".":
        return root
    return path if "://" in path or path.startswith("/") else f"{root}/{path}"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _context(job: dict[str, Any], view: dict[str, Any], meta: dict[str, Any], root: str) -> dict[str, Any]:
    runtime, packages = _dict(meta.get("runtime")), _dict(meta.get("packages"))
    interpreter = next((i for i in runtime.get("python") or [] if isinstance(i, dict)), {})
    pip, dpkg = _dict(packages.get("pip")), _dict(packages.get("dpkg"))
    commit = job.get("gitCommit") or view.get("gitCommit")
    dists = [{"name": n, "version": v} for n, v in pip.items()]
    python = [{"exe": interpreter.get("exe"), "version": interpreter.get("version"), "distributions": dists}]
    git = {"root": root, "remote": view.get("gitRepo") or None, "commit": commit,
           "branch": job.get("gitBranch"), "dirty": _dict(meta.get("git")).get("dirty")}
    machine = {k: runtime.get(k) for k in ("os", "arch", "kernel", "cpu", "memory_bytes")}
    return {
        "git": git if commit else None,
        "packages": {"python": python if pip or interpreter else [],
                     "system": [{"name": n, "version": v, "manager": "dpkg"} for n, v in dpkg.items()]},
        "machine": machine if runtime else None,
    }


def _record(job: dict[str, Any], view: dict[str, Any], root: str) -> dict[str, Any]:
    """A job record, as much of one as the recipe reads, from a registered job."""
    import shlex

    meta = _dict(job.get("metadata"))
    mine = _dict(meta.get("roar"))
    argv = mine.get("argv") if isinstance(mine.get("argv"), list) else None
    try:
        argv = argv or shlex.split(job.get("command") or "")
    except ValueError:
        argv = [job.get("command") or ""]

    def files(role: str) -> list[dict[str, Any]]:
        return [{"path": _under(root, e.get("path")), "hash": e.get("hash"), "hashes": {}, "size": None,
                 "external": False} for e in job.get(role) or []]

    record: dict[str, Any] = {
        "uid": job["jobUid"], "step": job.get("stepNumber") or 1, "type": job.get("jobType") or "run",
        "command": job.get("command") or "", "argv": argv, "argv_redacted": bool(mine.get("argv_redacted")),
        "cwd": _under(root, meta.get("cwd") or ""), "inputs": files("inputs"), "outputs": files("outputs"),
        "context": _context(job, view, meta, root),
    }
    if record["type"] == "get" and record["inputs"] and record["outputs"]:
        source, destination = record["inputs"][0]["path"], record["outputs"][0]["path"]
        record["transfer"] = {"source": source, "destination": destination, "sources": [source]}
    return record


def find_records(ref: str, sources: list[RecordSource] | None = None) -> Found:
    """The first source's answer: the local workspace, then the configured server."""
    for source in sources if sources is not None else [LocalSource(), RemoteSource()]:
        found = source.lookup(ref)
        if found is not None:
            return found
    raise RefNotFound(f"nothing matches {ref!r} in this workspace: give an artifact hash or path, "
                      "@N, a job uid or session (`roar log` lists the jobs)")
