"""`roar diff A B`: two jobs, or the jobs that made two artifacts, compared (text or
--json). Exit 0 when they are the same, 1 when they differ, as diff(1) does (docs/diff.md).
The comparison is in roar.reproduce.diff."""

from __future__ import annotations

import shlex
from typing import Any

import typer

from roar.cli.output import JSON, emit_json, emit_text, printable_data
from roar.cli.render import _jsonable  # one rule for non-UTF-8 names in JSON

REF_HELP = "A job (@N, uid) or an artifact (hash, prefix, path: the job that made it)."
HASH_SHOWN = 16


def register(app: typer.Typer) -> None:
    @app.command("diff")
    def diff_cmd(a: str = typer.Argument(..., metavar="A", help=REF_HELP),
                 b: str = typer.Argument(..., metavar="B", help=REF_HELP), as_json: bool = JSON,
                 lineage: bool = typer.Option(False, "--lineage",
                                              help="Compare two artifacts' whole lineages, step by step.")
                 ) -> None:
        """Compare two jobs, or the jobs that made two artifacts: command, exit, inputs and outputs by
        path and hash, variables read, packages, programs, git. Exit 0 same, 1 different."""
        from roar.reproduce import diff

        if lineage:
            _lineage(diff.lineages(a, b), as_json)
        side_a, side_b = diff.load(a, b)
        result = diff.compare(side_a.record, side_b.record)
        result = {"a": _side(side_a), "b": _side(side_b), **result}
        if as_json:
            emit_json(_jsonable(result))
        else:
            emit_text(diff_text(printable_data(result)))
        raise typer.Exit(0 if result["same"] else 1)


def _lineage(result: dict[str, Any], as_json: bool) -> None:
    """Each step pair on one line (same, differs in which sections, or one side's only), the
    details of each differing pair in --json."""
    steps = [{"state": s["state"], "a": _job(s["a"]), "b": _job(s["b"]), "differences": s["differences"]}
             for s in result["steps"]]
    if as_json:
        emit_json(_jsonable({"same": result["same"], "origins": result["origins"], "steps": steps}))
    else:
        emit_text(lineage_text(printable_data(steps), result["same"]))
    raise typer.Exit(0 if result["same"] else 1)


def _job(record: dict[str, Any] | None) -> dict[str, Any] | None:
    if record is None:
        return None
    from roar.lineage.refs import step_name

    step = record.get("step")
    return {"uid": record["uid"], "step": step_name(step, record["type"]) if step else None,
            "command": record.get("command") or shlex.join(record.get("argv") or [])}


def lineage_text(steps: list[dict[str, Any]], same: bool) -> str:
    lines = []
    for s in steps:
        a, b = s["a"], s["b"]
        names = " / ".join(f"{j['step'] or j['uid'][:12]}" for j in (a, b) if j)
        command = (a or b)["command"]
        if s["state"] == "differs":
            what = ", ".join(k for k in ("command", "exit", "inputs", "outputs", "env_read", "packages",
                                         "programs", "git") if s["differences"][k])
            lines.append(f"differs  {names}  {command}  ({what})")
        else:
            label = {"same": "same   ", "only_a": "only A ", "only_b": "only B "}[s["state"]]
            lines.append(f"{label}  {names}  {command}")
    lines.append("same lineage" if same else f"{sum(s['state'] != 'same' for s in steps)} of {len(steps)} "
                 "steps differ (`roar diff A B` on a pair for the details)")
    return "\n".join(lines)


def _side(side) -> dict[str, Any]:
    from roar.lineage.refs import step_name

    r = side.record
    return {"ref": side.ref, "uid": r["uid"], "step": step_name(r["step"], r["type"]),
            "session": r["session"],
            "command": r["command"], "artifact": side.via}


def diff_text(result: dict[str, Any]) -> str:
    lines = [_head("A", result["a"]), _head("B", result["b"])]
    for change in result["command"]:
        value = shlex.join if change["field"] == "argv" else str
        lines += [f"{change['field']}:", f"  A {value(change['a'])}", f"  B {value(change['b'])}"]
    if result["exit"]:
        lines.append("exit: " + ", ".join(f"{c['field']} A {c['a']} B {c['b']}" for c in result["exit"]))
    for section in ("inputs", "outputs"):
        if result[section]:
            lines.append(f"{section}:")
            lines += [f"  {_state(f)}  {f['path']}  {_pair(f, _short)}" for f in result[section]]
    if result["env_read"]:
        lines.append("env_read:")
        lines += [f"  {_state(v)}  {v['name']}  {_pair(v, _value)}" for v in result["env_read"]]
    if result["packages"]:
        lines.append("packages:")
        lines += [f"  {_state(p)}  {p['kind']} {p['name']}  {_pair(p, str)}" for p in result["packages"]]
    if result["programs"]:
        lines.append("programs:")
        lines += [f"  {_state(p)}  {p['path']}  {_pair(p, _short)}" for p in result["programs"]]
    if result["git"]:
        lines.append("git: " + ", ".join(f"{c['field']} A {c['a']} B {c['b']}" for c in result["git"]))
    lines += [f"note: {n}" for n in result["notes"]]
    if result["same"]:
        lines.append("same: command, exit, files, variables read, packages, programs and git (times aside)")
    else:
        lines.append("differ in: " + ", ".join(s for s in ("command", "exit", "inputs", "outputs", "env_read",
                                                            "packages", "programs", "git") if result[s]))
    return "\n".join(lines)


def _head(name: str, side: dict[str, Any]) -> str:
    via = f"  (made {_short(side['artifact'])})" if side["artifact"] else ""
    return f"{name}: {side['step']} {side['uid']}  {side['command']}{via}"


def _state(entry: dict[str, Any]) -> str:
    return {"changed": "changed", "only_a": "only A ", "only_b": "only B "}[entry["state"]]


def _pair(entry: dict[str, Any], shown) -> str:
    if entry["state"] == "only_a":
        return shown(entry["a"])
    if entry["state"] == "only_b":
        return shown(entry["b"])
    return f"A {shown(entry['a'])}  B {shown(entry['b'])}"


def _short(digest: str | None) -> str:
    return digest[:HASH_SHOWN] if digest else "(no hash)"


def _value(value: str | None) -> str:
    return "unset" if value is None else repr(value)

