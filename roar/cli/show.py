"""`roar show REF`: one job as text or JSON (the full inspection CLI builds on this)."""

from __future__ import annotations

import json
import sys

import typer


def register(app: typer.Typer) -> None:
    @app.command("show")
    def show_cmd(ref: str = typer.Argument(..., help="@N (step), or a job uid or unique prefix."),
                 as_json: bool = typer.Option(False, "--json", help="Print JSON (docs/json.md).")) -> None:
        """Show a recorded job."""
        from roar.lineage.refs import resolve_job
        from roar.record.render import job_json, job_text
        from roar.store.workspace import Workspace

        ws = Workspace.find()
        record = resolve_job(ws, ref)
        if as_json:
            sys.stdout.write(json.dumps(job_json(record), indent=2) + "\n")
        else:
            sys.stdout.write(job_text(record))
