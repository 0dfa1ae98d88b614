"""`roar doctor`: whether tracing will work here, one line per check with its fix."""

from __future__ import annotations

import typer

from roar.cli.output import JSON, emit_json, emit_text

MARKS = {True: "ok  ", False: "FAIL", None: "info"}


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor_cmd(as_json: bool = JSON) -> None:
        """Say whether `roar run` will work on this machine, and what to fix if not.

        Exits 0 only when it would; otherwise with the code `roar run` would exit with
        (docs/exit-codes.md)."""
        from roar.tracer import doctor

        checks = doctor.run_checks()
        failed = [c for c in checks if c.ok is False]
        if as_json:
            emit_json({"ok": not failed, "checks": doctor.as_dicts(checks)})
        else:
            width = max(len(c.name) for c in checks)
            lines = [f"{MARKS[c.ok]}  {c.name:<{width}}  {c.found}" + (f"\n      {'':<{width}}  fix: {c.fix}"
                                                                     if c.ok is False and c.fix else "")
                     for c in checks]
            lines.append("roar run will work here" if not failed else
                         f"roar run will not work here: {len(failed)} check{'s' if len(failed) > 1 else ''} "
                         "failed")
            emit_text("\n".join(lines))
        if failed:
            raise typer.Exit(failed[0].exit_code or 1)
