"""`roar put SRC... DEST`: parse, call roar.transfer.put, print the summary."""

from __future__ import annotations

import sys
from typing import List

import typer

PATHS = typer.Argument(..., metavar="SRC... DEST", help="Local files or directories, then a directory "
                                                        "(path or file:///dir) or an s3:// prefix.")
FORCE = typer.Option(False, "--force", "-f", help="Replace copies that exist.")
QUIET = typer.Option(False, "--quiet", "-q", help="Print nothing.")


def register(app: typer.Typer) -> None:
    @app.command("put")
    def put_cmd(paths: List[str] = PATHS, force: bool = FORCE, quiet: bool = QUIET) -> None:
        """Copy each SRC to DEST/<name>, verify it by reading it back, and record a put job.

        Exits 7 when a source is missing, a copy exists or does not match (docs/get-put.md)."""
        from roar.cli.get import summary
        from roar.errors import UsageError
        from roar.transfer.put import put

        if len(paths) < 2:
            raise UsageError("give at least one SRC and a DEST: `roar put SRC... DEST`")
        record = put(paths[:-1], paths[-1], force=force)
        if not quiet:
            sys.stderr.write(summary(record) + "\n")
