"""`roar db rebuild`: the index, recomputed from the files in .roar/."""

from __future__ import annotations

import typer

from roar.cli.output import JSON, emit_json, emit_text
from roar.cli.printable import count


def register(app: typer.Typer) -> None:
    db = typer.Typer(help="The workspace index (.roar/roar.db).", no_args_is_help=True)
    app.add_typer(db, name="db")

    @db.command("rebuild")
    def rebuild_cmd(as_json: bool = JSON) -> None:
        """Rebuild the index from the job records, session files and label changes.
        A damaged index is moved aside first; a bad record is set aside (named here and by
        `roar status`, never deleted) and the others are indexed."""
        from roar.store.workspace import Workspace

        ws = Workspace.find()
        jobs = ws.rebuild()
        conn = ws.index()
        try:
            bad = conn.execute("SELECT file, error FROM bad_files ORDER BY file").fetchall()
        finally:
            conn.close()
        if as_json:
            from roar.store.index import bad_file_name

            emit_json({"jobs": jobs, "unreadable_records": [bad_file_name(name) for name, _ in bad]})
            return
        text = f"rebuilt the index: {count(jobs, 'job')}"
        if bad:
            # the error names the file, what is wrong with it and what to do
            text += f"; {len(bad)} bad record{'s' if len(bad) > 1 else ''} set aside:"
            text += "".join(f"\n  {error}" for _, error in bad)
        emit_text(text)
