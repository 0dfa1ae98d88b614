"""`roar reset`: start a new session."""

from __future__ import annotations

import typer

from roar.cli.output import JSON, emit_json, emit_text


def register(app: typer.Typer) -> None:
    @app.command("reset")
    def reset_cmd(as_json: bool = JSON) -> None:
        """Start a new session: @N counts from 1 again and `roar dag` starts empty.
        Earlier jobs and artifacts stay queryable by uid, hash or path."""
        from roar.store.workspace import Workspace

        session = Workspace.find().reset()
        if as_json:
            emit_json({"id": session["id"], "number": session["seq"], "started_at": session["started_at"],
                       "new": not session.get("empty")})
        elif session.get("empty"):
            emit_text(f"session {session['seq']} ({session['id']}) has no jobs yet: it stays the current one")
        else:
            emit_text(f"session {session['seq']} ({session['id']}) started; earlier jobs stay "
                      "queryable by uid, hash or path (`roar log`)")
