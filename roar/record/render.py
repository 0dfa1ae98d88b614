"""Presenting job records: the JSON form (docs/json.md) and the text form."""

from __future__ import annotations

from typing import Any

from roar.record.job import json_path


def _file_json(entry: dict[str, Any]) -> dict[str, Any]:
    out = dict(entry)
    out.update(json_path(entry["path"]))
    return out


def job_json(record: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in record.items() if k not in ("format",)}
    out["inputs"] = [_file_json(f) for f in record["inputs"]]
    out["outputs"] = [_file_json(f) for f in record["outputs"]]
    return _jsonable(out)


def _jsonable(value: Any) -> Any:
    """Paths that are not UTF-8 stay exact as surrogate escapes; json.dumps
    writes them as \\udcXX, which Python's json and os.fsencode turn back."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def step_name(record: dict[str, Any]) -> str:
    return f"@B{record['step']}" if record["type"] == "build" else f"@{record['step']}"


def job_text(record: dict[str, Any]) -> str:
    exit_ = record["exit"]
    lines = [
        f"job {record['uid']}  {step_name(record)}  ({record['type']})",
        f"  command: {record['command']}",
        f"  cwd:     {record['cwd']}",
        f"  exit:    {exit_['code'] if exit_['signal'] is None else 'signal ' + str(exit_['signal'])}"
        f" ({exit_['status']}), {record['duration_s']:.3f} s",
        f"  inputs ({len(record['inputs'])}):",
        *[f"    {f['hash'][:12]}  {f['path']}" for f in record["inputs"]],
        f"  outputs ({len(record['outputs'])}):",
        *[f"    {f['hash'][:12]}  {f['path']}" for f in record["outputs"]],
        f"  processes: {len(record['processes'])}",
    ]
    lines += [f"  warning: {w}" for w in record.get("warnings", [])]
    return "\n".join(lines) + "\n"
