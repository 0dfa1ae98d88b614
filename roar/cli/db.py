"""`roar db rebuild`: the index, recomputed from the files in .roar/."""

from __future__ import annotations

import typer

from roar.cli.output import JSON, emit_json, emit_text


def register(app: typer.Typer) -> None:
    db = typer.Typer(help="The workspace index (.roar/roar.db).", no_args_is_help=True)
    app.add_typer(db, name="db")

    @db.command("rebuild")
    def rebuild_cmd(as_json: bool = JSON) -> None:
        """Rebuild the index from the job records, session files and label changes.
        A damaged index is moved aside first; unreadable records are listed by `roar status`."""
        from roar.store.workspace import Workspace

        ws = Workspace.find()
        jobs = ws.rebuild()
        conn = ws.index()
        try:
            bad = [r[0] for r in conn.execute("SELECT file FROM bad_files ORDER BY file")]
        finally:
            conn.close()
        if as_json:
            emit_json({"jobs": jobs, "unreadable_records": [f"jobs/{b}.msgpack" for b in bad]})
        else:
            emit_text(f"rebuilt the index: {jobs} jobs" + "".join(
                f"\nskipped unreadable record {ws.jobs_dir / b}.msgpack" for b in bad))
