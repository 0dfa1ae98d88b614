"""`roar label set|show|unset|push|pull`: key=value labels on a session, job or artifact,
and their sync with the DAG a registration made (roar.remote.labels)."""

from __future__ import annotations

from typing import List

import typer

from roar.cli.output import JSON, emit_json, emit_text

REF = typer.Argument(..., help="session[:N], @N, a job uid, an artifact hash or prefix, or a path.")
PAIRS = typer.Argument(..., metavar="KEY=VALUE...")
KEYS = typer.Argument(..., metavar="KEY...")


def _target(ref: str):
    from roar.lineage import refs
    from roar.store.workspace import Workspace

    ws = Workspace.find()
    conn = ws.index()
    try:
        return ws, refs.resolve(conn, ref)
    finally:
        conn.close()


def register(app: typer.Typer) -> None:
    # not no_args_is_help: Click then answers `roar label @1 a=b` (no verb) with the help and exit 0
    label = typer.Typer(help="Labels: key=value metadata on a session, job or artifact, with history.")
    app.add_typer(label, name="label")

    @label.command("set")
    def set_cmd(ref: str = REF, pairs: List[str] = PAIRS) -> None:
        """Set labels (a later set of the same key replaces it; history is kept)."""
        from roar.store import labels

        changes = labels.parse_assignments(pairs)
        ws, target = _target(ref)
        ws.add_label_changes(target.kind, target.id, dict(changes))
        emit_text(f"labelled {target.kind} {target.id}: " + ", ".join(f"{k}={v}" for k, v in changes.items()))

    @label.command("unset")
    def unset_cmd(ref: str = REF, keys: List[str] = KEYS) -> None:
        """Remove labels (the history keeps their old values)."""
        from roar.errors import RefNotFound
        from roar.store import labels

        for key in keys:
            labels.check_key(key)
        ws, target = _target(ref)
        conn = ws.index()
        try:
            current = labels.current(conn, target.kind, target.id)
        finally:
            conn.close()
        missing = [key for key in keys if key not in current]
        if missing:   # nothing to remove: no history is written
            raise RefNotFound(f"{target.kind} {target.id} has no label {', '.join(missing)}: "
                              f"`roar label show {ref}` lists its labels")
        ws.add_label_changes(target.kind, target.id, {key: None for key in keys})
        emit_text(f"unset on {target.kind} {target.id}: {', '.join(keys)}")

    @label.command("show")
    def show_cmd(ref: str = REF, history: bool = typer.Option(False, "--history", help="Every change."),
                 as_json: bool = JSON) -> None:
        """The current labels (or, with --history, every change)."""
        from roar.store import labels

        ws, target = _target(ref)
        conn = ws.index()
        try:
            current = labels.current(conn, target.kind, target.id)
            changes = labels.history(conn, target.kind, target.id)
        finally:
            conn.close()
        if as_json:
            emit_json({"kind": target.kind, "id": target.id, "labels": current, "history": changes})
        elif history:
            import time

            emit_text("\n".join(
                f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(c['at']))}  "
                + (f"set {c['key']}={c['value']}" if c["value"] is not None else f"unset {c['key']}")
                + ("  (at run time)" if c["origin"] == "record" else "")
                for c in changes) or "no label changes")
        else:
            emit_text("\n".join(f"{k}={v}" for k, v in sorted(current.items())) or "no labels")

    anonymous = typer.Option(False, "--anonymous", help="The DAG registered with --anonymous.")

    @label.command("push")
    def push_cmd(ref: str = REF, anonymous: bool = anonymous) -> None:
        """Send the labels of REF's registered lineage (`roar register REF`) to the GLaaS server."""
        from roar.cli.register import sync_labels

        sync_labels(ref, "push", anonymous)

    @label.command("pull")
    def pull_cmd(ref: str = REF, anonymous: bool = anonymous) -> None:
        """Make the local labels of REF's registered lineage those of the GLaaS server."""
        from roar.cli.register import sync_labels

        sync_labels(ref, "pull", anonymous)
