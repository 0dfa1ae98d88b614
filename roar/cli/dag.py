"""`roar dag`: the session's lineage graph as text, JSON, dot, Mermaid, SVG or PNG."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from roar.cli.output import JSON, emit_json, emit_text


def register(app: typer.Typer) -> None:
    @app.command("dag")
    def dag_cmd(
        as_json: bool = JSON,
        fmt: str = typer.Option("text", "--format", "-f", help="text, json, dot, mermaid, svg or png."),
        output: Optional[str] = typer.Option(None, "--output", "-o", help="Write to this file."),
        session: Optional[str] = typer.Option(None, "--session", help="session:N or session:ID "
                                              "(default: the current session)."),
    ) -> None:
        """The session's jobs and artifacts and which job fed which; stale outputs are marked."""
        from roar.errors import UsageError
        from roar.lineage import dagformat, refs
        from roar.lineage.status import session_dag
        from roar.store.workspace import Workspace

        fmt = "json" if as_json else fmt
        if fmt not in dagformat.FORMATS:
            raise UsageError(f"unknown format {fmt!r}: use one of {', '.join(dagformat.FORMATS)}")
        ws = Workspace.find()
        conn = ws.index()
        try:
            sid = None
            if session:
                found = refs.resolve(conn, session if session.startswith("session") else f"session:{session}")
                sid = found.id
            dag = session_dag(ws, conn, sid)
        finally:
            conn.close()
        if fmt in dagformat.IMAGE_FORMATS:
            data = dagformat.render_image(dagformat.to_dot(dag), fmt)
            if output:
                with open(output, "wb") as f:
                    f.write(data)
            else:
                sys.stdout.buffer.write(data)
            return
        if fmt == "json":
            if output:
                import json

                with open(output, "w") as f:
                    json.dump(dagformat.to_json(dag), f, indent=2, ensure_ascii=False)
            else:
                emit_json(dagformat.to_json(dag))
            return
        text = {"text": dagformat.to_text, "dot": dagformat.to_dot, "mermaid": dagformat.to_mermaid}[fmt](dag)
        if output:
            with open(output, "w") as f:
                f.write(text)
        else:
            emit_text(text)
