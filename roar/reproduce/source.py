"""Where a recipe's job records come from.

A RecordSource turns a reference into the job records it needs. The local workspace is
the one source today; a GLaaS server is the next (`RemoteSource`, by the same protocol):
`find_records` asks each source in turn and the first that knows the reference answers.
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


def find_records(ref: str, sources: list[RecordSource] | None = None) -> Found:
    """The first source's answer: the local workspace, then (later) the configured server."""
    for source in sources if sources is not None else [LocalSource()]:
        found = source.lookup(ref)
        if found is not None:
            return found
    raise RefNotFound(f"nothing matches {ref!r} in this workspace: give an artifact hash or path, "
                      "@N, a job uid or session (`roar log` lists the jobs)")
