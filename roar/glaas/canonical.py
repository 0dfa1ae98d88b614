"""The DAG (session) hash the server computes at finalize: the authoritative one.

sha256 of compact, key-sorted JSON of {canonical_version: 1, creator_identity, git{repo,
commit,branch}, jobs[...]}, the form GLaaS clients compute too (docs/glaas.md), so the
same lineage from the same creator gets the same hash on either side:
- strings are stripped, and an empty one is null; no creator is "anonymous";
- a job is {command, job_type, step_number, parent_step_number, inputs, outputs,
  metadata}; its metadata is the parsed JSON object (anything else is {});
- inputs/outputs are [{hash, path}], one per hash (the smallest path), sorted;
- floats that are integers become integers, others keep 16 significant digits,
  non-finite ones become null; jobs are sorted by step, then by their own JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value).strip() or None


def _json_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _json_value(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return int(value) if value.is_integer() else float(format(value, ".16g"))
    return value


def _edges(edges: list[dict]) -> list[dict]:
    by_hash: dict[str, str | None] = {}
    for edge in edges:
        digest = _text(edge.get("hash"))
        if digest is None:
            continue
        path = _text(edge.get("path"))
        if digest not in by_hash or (path or "") < (by_hash[digest] or ""):
            by_hash[digest] = path
    edges_out = [{"hash": h, "path": p} for h, p in by_hash.items()]
    return sorted(edges_out, key=lambda e: (e["hash"], e["path"] or ""))


def _metadata(raw: Any) -> dict:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    return _json_value(raw) if isinstance(raw, dict) else {}


def session_hash(creator_identity: str | None, git: dict, jobs: list[dict]) -> str:
    """jobs: {command, job_type, step_number, parent_step_number, inputs, outputs, metadata}."""
    normalized = [
        {
            "command": job.get("command"),
            "job_type": job.get("job_type") or "run",
            "step_number": job.get("step_number"),
            "parent_step_number": job.get("parent_step_number"),
            "inputs": _edges(job.get("inputs") or []),
            "outputs": _edges(job.get("outputs") or []),
            "metadata": _metadata(job.get("metadata")),
        }
        for job in jobs
    ]
    normalized.sort(key=lambda j: (j["step_number"], json.dumps(j, sort_keys=True, separators=(",", ":"))))
    payload = {
        "canonical_version": 1,
        "creator_identity": _text(creator_identity) or "anonymous",
        "git": {key: _text(git.get(key)) for key in ("repo", "commit", "branch")},
        "jobs": normalized,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
