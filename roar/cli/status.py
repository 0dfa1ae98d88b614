"""`roar status`: the current session at a glance."""

from __future__ import annotations

import typer

from roar.cli.output import JSON, emit_json, emit_text, printable_data
from roar.cli.printable import count

SHOWN_STEPS = 15
SHOWN_OUTPUTS = 15


def _text(st: dict) -> str:
    session = st["session"]
    if session is None:
        return f"workspace {st['workspace']}: no jobs recorded yet; start with `roar run CMD`\n"
    from roar.lineage.status import UNKNOWN

    # the warnings name every such step, the steps listed only the last ones
    unknown = [w for w in st["warnings"] if w["message"].startswith(UNKNOWN)]
    superseded = session.get("superseded") or 0
    lines = [f"session {session['number']} ({session['id']}): {count(session['jobs'], 'job')}"
             + (f" ({superseded} run again later, in `roar log`)" if superseded else "")
             + f", {len(st['stale'])} stale" + (f", {len(unknown)} unknown" if unknown else "")]
    lines += [f"  label {k}={v}" for k, v in sorted(session["labels"].items())]
    steps = st["steps"][-SHOWN_STEPS:]
    if session["jobs"] - superseded > len(steps):
        lines.append(f"  ... {count(session['jobs'] - superseded - len(steps), 'earlier step')} (`roar log`)")
    for s in steps:
        flag = "  STALE" if s["stale"] else ("  UNKNOWN" if s.get("unknown") else "")
        lines.append(f"  {s['step']:<5} {s['status'] or '-':<11} {s['command']}{flag}")
    if st["outputs"]:
        lines.append("outputs:")
        for o in st["outputs"][-SHOWN_OUTPUTS:]:
            lines.append(f"  {o['path']}  {o['hash'].rpartition(':')[2][:12]}  ({o['step']})"
                         + ("  STALE" if o["stale"] else ""))
        if st["outputs_total"] > SHOWN_OUTPUTS:
            lines.append(f"  ... and {st['outputs_total'] - SHOWN_OUTPUTS} more (`roar dag`)")
    if st["stale"]:
        lines.append("stale:")
        lines += [f"  {s['step']} {s['command']}: {'; '.join(s['reasons'])}" for s in st["stale"]]
    warnings = _grouped(st["warnings"])
    warnings += [f"  unreadable record {b['file']}: {b['message']}" for b in st["unreadable_records"]]
    if warnings:
        lines.append("warnings:")
        lines += warnings
    return "\n".join(lines) + "\n"


SHOWN_WARNING_STEPS = 5


def _grouped(warnings: list[dict]) -> list[str]:
    """One line per distinct message, naming the steps that gave it (the first few, then how
    many more), in the order each message first came."""
    steps: dict[str, list[str]] = {}
    for w in warnings:
        steps.setdefault(w["message"], []).append(w["step"])
    lines = []
    for message, names in steps.items():
        shown = ", ".join(names[:SHOWN_WARNING_STEPS])
        if len(names) > SHOWN_WARNING_STEPS:
            shown += f" and {len(names) - SHOWN_WARNING_STEPS} more"
        lines.append(f"  {shown}{f' ({len(names)} steps)' if len(names) > 1 else ''}: {message}")
    return lines


def register(app: typer.Typer) -> None:
    @app.command("status")
    def status_cmd(as_json: bool = JSON) -> None:
        """The current session: its steps and their status, latest outputs, what is stale, warnings."""
        from roar.lineage.status import status
        from roar.store.workspace import Workspace

        # the text shows the last steps and outputs only: read only those
        st = status(Workspace.find(), None if as_json else max(SHOWN_STEPS, SHOWN_OUTPUTS))
        if as_json:
            emit_json(st)
        else:
            emit_text(_text(printable_data(st)))
