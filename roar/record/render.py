"""Presenting jobs and artifacts for `roar show`: the JSON form (docs/json.md)
and the text form."""

from __future__ import annotations

import os
from typing import Any

from roar.record.job import json_path


def _file_json(entry: dict[str, Any]) -> dict[str, Any]:
    out = dict(entry)
    out.update(json_path(entry["path"]))
    return out


def job_json(record: dict[str, Any], links: dict[str, Any] | None = None,
             labels: dict[str, str] | None = None) -> dict[str, Any]:
    """The record; with `links` (roar.lineage.queries.job_links) each input gets
    `made_by` and each output `read_by`; with `labels`, the current labels."""
    out = {k: v for k, v in record.items() if k not in ("format",)}
    out["inputs"] = [_file_json(f) for f in record["inputs"]]
    out["outputs"] = [_file_json(f) for f in record["outputs"]]
    if links is not None:
        for f in out["inputs"]:
            f["made_by"] = links["made_by"].get(f.get("hash"))
        for f in out["outputs"]:
            f["read_by"] = links["read_by"].get(f.get("hash"), [])
    if labels is not None:
        out["labels"] = labels
    return _jsonable(out)


def _jsonable(value: Any) -> Any:
    """JSON is UTF-8: a name that is not (a surrogate-escaped str) is shown with
    replacement characters; files keep their exact bytes in `path_b64`."""
    if isinstance(value, dict):
        return {_jsonable(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return os.fsencode(value).decode("utf-8", "replace")
    return value


def step_name(record: dict[str, Any]) -> str:
    return f"@B{record['step']}" if record["type"] == "build" else f"@{record['step']}"


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _short(hash_: str | None) -> str:
    return (hash_ or "-").rpartition(":")[2][:12]


def job_text(record: dict[str, Any], links: dict[str, Any] | None = None,
             labels: dict[str, str] | None = None) -> str:
    exit_ = record["exit"]
    made_by = (links or {}).get("made_by", {})
    read_by = (links or {}).get("read_by", {})
    lines = [
        f"job {record['uid']}  {step_name(record)}  ({record['type']})",
        f"  command: {record['command']}",
        f"  cwd:     {record['cwd']}",
        f"  started: {_when(record.get('started_at'))}   ended: {_when(record.get('ended_at'))}",
        f"  exit:    {exit_['code'] if exit_['signal'] is None else 'signal ' + str(exit_['signal'])}"
        f" ({exit_['status']}), {record['duration_s']:.3f} s",
        f"  inputs ({len(record['inputs'])}):",
    ]
    for f in record["inputs"]:
        producer = made_by.get(f.get("hash"))
        lines.append(f"    {_short(f.get('hash'))}  {f['path']}" + (f"  <- {producer['step']} {producer['uid']}"
                                                                      if producer else ""))
    lines.append(f"  outputs ({len(record['outputs'])}):")
    for f in record["outputs"]:
        readers = read_by.get(f.get("hash"), [])
        lines.append(f"    {_short(f.get('hash'))}  {f['path']}"
                     + (f"  -> {', '.join(r['step'] for r in readers)}" if readers else ""))
    lines.append(f"  processes ({len(record['processes'])}):")
    lines += _process_tree(record["processes"])
    shown = labels if labels is not None else record.get("labels") or {}
    if shown:
        lines.append("  labels:")
        lines += [f"    {k}={v}" for k, v in sorted(shown.items())]
    lines += [f"  warning: {w}" for w in record.get("warnings", [])]
    return "\n".join(lines) + "\n"


def _process_tree(processes: list[dict[str, Any]]) -> list[str]:
    pids = {p["pid"] for p in processes}
    children: dict[Any, list[dict[str, Any]]] = {}
    for p in processes:
        children.setdefault(p["ppid"] if p["ppid"] in pids else None, []).append(p)
    lines: list[str] = []

    def walk(parent: Any, depth: int) -> None:
        for p in children.get(parent, []):
            argv = " ".join(p.get("argv") or []) or p.get("exe") or "?"
            code = p.get("exit_code")
            end = f"signal {p['signal']}" if p.get("signal") else f"exit {code}"
            lines.append(f"    {'  ' * depth}{p['pid']} {argv[:100]}  ({end})")
            walk(p["pid"], depth + 1)

    walk(None, 0)
    return lines


def artifact_text(info: dict[str, Any]) -> str:
    """`roar show` of an artifact (info from roar.lineage.queries.artifact)."""
    size = "-" if info["size"] is None else f"{info['size']} bytes"
    lines = [f"artifact {info['hash']}  ({info['kind']}, {size})", "  hashes:"]
    lines += [f"    {alg}: {digest}" for alg, digest in info["hashes"].items()]
    lines.append("  paths:")
    lines += [f"    {p}" for p in info["paths"]]
    if info.get("members") is not None:
        lines.append(f"  members ({len(info['members'])}):")
        lines += [f"    {_short(m['hash'])}  {m['name']}" for m in info["members"]]
    if info["member_of"]:
        lines.append("  member of: " + ", ".join(_short(c) for c in info["member_of"]))
    for title, jobs in (("produced by", info["produced_by"]), ("consumed by", info["consumed_by"])):
        lines.append(f"  {title}:" + ("" if jobs else " -"))
        lines += [f"    {_job_line(j)}" for j in jobs]
    if info["labels"]:
        lines.append("  labels:")
        lines += [f"    {k}={v}" for k, v in sorted(info["labels"].items())]
    lines.append("  lineage:")
    lines += lineage_lines(info["lineage"], info["paths"][-1] if info["paths"] else info["hash"])
    return "\n".join(lines) + "\n"


def _job_line(job: dict[str, Any]) -> str:
    return f"{job['step']:<5} {job['uid']}  session {job['session']}  [{job['status']}]  {job['command']}"


def lineage_lines(lineage: dict[str, Any], name: str) -> list[str]:
    """The lineage as an indented tree: each artifact, the job that made it, its inputs."""
    jobs = {j["uid"]: j for j in lineage["jobs"]}
    lines: list[str] = []
    shown: set[str] = set()

    def artifact(path: str, hash_: str, made_by: str | None, depth: int) -> None:
        pad = "    " + "  " * depth
        if made_by is None:
            lines.append(f"{pad}{path}  {_short(hash_)}  (source)")
            return
        job = jobs.get(made_by)
        if job is None:
            lines.append(f"{pad}{path}  {_short(hash_)}  <- {made_by} (lineage truncated)")
            return
        lines.append(f"{pad}{path}  {_short(hash_)}  <- {job['step']} {job['command']}  (session {job['session']})")
        if made_by in shown:
            lines.append(f"{pad}  (inputs of {job['step']} shown above)")
            return
        shown.add(made_by)
        for entry in job["inputs"]:
            artifact(entry["path"], entry["hash"], entry["made_by"], depth + 1)

    artifact(name, lineage["artifact"], lineage["made_by"], 0)
    if lineage.get("truncated"):
        lines.append("    ... (lineage truncated)")
    return lines


def session_text(summary: dict[str, Any]) -> str:
    state = "current" if summary["current"] else f"ended {_when(summary['ended_at'])}"
    lines = [f"session {summary['number']} ({summary['id']})  started {_when(summary['started_at'])}, {state}"]
    lines += [f"  label {k}={v}" for k, v in sorted(summary["labels"].items())]
    lines.append(f"  jobs ({len(summary['jobs'])}):")
    lines += [f"    {j['step']:<5} {j['uid']}  [{j['status']}]  {j['command']}" for j in summary["jobs"]]
    return "\n".join(lines) + "\n"
