"""`roar log`: recent jobs, newest first."""

from __future__ import annotations

import time

import typer

from roar.cli.output import JSON, emit_json, emit_text, printable_data

MAX_COUNT = 2**63 - 1   # SQLite's LIMIT takes no bigger number


def register(app: typer.Typer) -> None:
    @app.command("log")
    def log_cmd(
        count: int = typer.Option(20, "--count", "-n", help="How many jobs (0: all)."),
        session_only: bool = typer.Option(False, "--session", help="Only the current session."),
        as_json: bool = JSON,
    ) -> None:
        """Recent jobs of every session (newest first): when, step, status, command."""
        from roar.errors import UsageError
        from roar.lineage import queries
        from roar.store import index
        from roar.store.workspace import Workspace

        if count < 0:
            raise UsageError(f"--count {count}: give how many jobs to list, or 0 for all")
        if count > MAX_COUNT:
            raise UsageError(f"--count is too large: give at most {MAX_COUNT}, or 0 for all")
        conn = Workspace.find().index()
        try:
            sid = index.current_session(conn) if session_only else None
            jobs = queries.log(conn, count or None, sid) if (sid or not session_only) else []
        finally:
            conn.close()
        if as_json:
            emit_json(jobs)
            return
        if not jobs:
            emit_text("no jobs recorded yet")
            return
        jobs = printable_data(jobs)    # a command may hold a newline or ESC
        emit_text("\n".join(
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(j['started_at'] or 0))}  "
            f"s{j['session']} {j['step']:<5} {j['uid']}  {j['status'] or '-':<11} {j['command']}"
            for j in jobs))
