"""`roar get SRC DEST`: parse, call roar.transfer.get, print the summary."""

from __future__ import annotations

import sys

import typer


def summary(record: dict) -> str:
    """One line per output: `roar: @N uid  get|put SRC -> DEST  SIZE  blake3:PREFIX`."""
    from roar.cli.printable import printable

    lines = []
    for entry in record["outputs"]:
        what = f"{len(entry['members'])} files, " if entry.get("kind") == "composite" else ""
        lines.append(f"roar: @{record['step']} {record['uid']}  {record['type']} -> "
                     f"{printable(entry['path'])}  {what}{entry['size']} bytes  "
                     f"blake3:{(entry['hash'] or '')[:12]}")
    return "\n".join(lines)


SRC = typer.Argument(..., metavar="SRC", help="http://, https://, file:// or s3:// URL (s3 needs boto3).")
DEST = typer.Argument(..., metavar="DEST", help="Local path to create (a directory for a directory source).")
FORCE = typer.Option(False, "--force", "-f", help="Replace DEST if it exists.")
QUIET = typer.Option(False, "--quiet", "-q", help="Print nothing.")


def register(app: typer.Typer) -> None:
    @app.command("get")
    def get_cmd(src: str = SRC, dest: str = DEST, force: bool = FORCE, quiet: bool = QUIET) -> None:
        """Fetch SRC to DEST and record a get job: SRC is its external input, DEST its output.

        Exits 7 when the source is unreachable or missing, or DEST exists (docs/get-put.md)."""
        from roar.transfer.get import get

        record = get(src, dest, force=force)
        if not quiet:
            sys.stderr.write(summary(record) + "\n")
