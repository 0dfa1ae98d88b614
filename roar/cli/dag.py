"""`roar dag`: the session's lineage graph as text, JSON, dot, Mermaid, SVG or PNG."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from roar.cli.output import JSON, emit_text


def register(app: typer.Typer) -> None:
    @app.command("dag")
    def dag_cmd(
        as_json: bool = JSON,
        fmt: str = typer.Option("text", "--format", "-f", help="text, json, dot, mermaid, svg or png."),
        output: Optional[str] = typer.Option(None, "--output", "-o", help="Write to this file."),
        session: Optional[str] = typer.Option(None, "--session", help="session:N or session:ID "
                                              "(default: the current session)."),
        remote: Optional[str] = typer.Option(None, "--remote", metavar="HASH", help="A registered session "
                                             "(or artifact) on the GLaaS server, drawn the same way."),
    ) -> None:
        """The session's jobs and artifacts and which job fed which; stale outputs are marked."""
        from roar.errors import UsageError
        from roar.lineage import dagformat

        if as_json and fmt not in ("text", "json"):
            raise UsageError(f"--json and --format {fmt} ask for two outputs: give one of them")
        fmt = "json" if as_json else fmt
        if fmt not in dagformat.FORMATS:
            raise UsageError(f"unknown format {fmt!r}: use one of {', '.join(dagformat.FORMATS)}")
        if remote is not None:
            if session:
                raise UsageError("--remote and --session name two DAGs: give one of them")
            from roar.cli.register import dag_remote

            dag_remote(remote, fmt, output)
            return
        if fmt == "json":
            _write_json(session, output)
            return
        dag = _build(session)
        if fmt in dagformat.IMAGE_FORMATS:
            data = dagformat.render_image(dagformat.to_dot(dag), fmt)
            if output:
                write_output(output, data)
            else:
                sys.stdout.buffer.write(data)
            return
        text = {"text": dagformat.to_text, "dot": dagformat.to_dot, "mermaid": dagformat.to_mermaid}[fmt](dag)
        if output:
            write_output(output, text.encode())
        else:
            emit_text(text)


def write_output(path: str, data: bytes) -> None:
    """-o FILE: a path that cannot be written is a one-line usage error."""
    from roar.errors import UsageError

    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}; give -o a path in a directory you can "
                         "write") from None


def _session_id(conn, session: str | None) -> str | None:
    from roar.lineage import refs
    from roar.store import index

    if not session:
        return index.current_session(conn)
    return refs.resolve(conn, session if session.startswith("session") else f"session:{session}").id


def _build(session: str | None):
    """The session's graph as objects (roar.lineage.dag), for text, dot and Mermaid."""
    from roar.lineage.status import session_dag
    from roar.store.workspace import Workspace

    ws = Workspace.find()
    conn = ws.index()
    try:
        return session_dag(ws, conn, _session_id(conn, session))
    finally:
        conn.close()


def _write_json(session: str | None, output: str | None) -> None:
    """Streamed from the index (roar.lineage.dagjson): the graph is never built as objects."""
    from roar.lineage import dagjson, facts
    from roar.lineage.status import disk_check
    from roar.store.workspace import Workspace

    ws = Workspace.find()
    conn = ws.index()
    try:
        sid = _session_id(conn, session)
        stale = {}
        if sid is not None:
            with disk_check(ws, conn) as disk:
                stale = facts.stale_jobs(conn, sid, disk)
        if output:
            try:
                f = open(output, "w", encoding="utf-8")
            except OSError as exc:
                from roar.errors import UsageError

                raise UsageError(f"cannot write {output}: {exc.strerror}; give -o a path in a directory "
                                 "you can write") from None
            with f:
                dagjson.write(conn, sid, stale, f)
        else:
            dagjson.write(conn, sid, stale, sys.stdout)
    finally:
        conn.close()
