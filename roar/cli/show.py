"""`roar show REF`: a job, an artifact or a session, as text or JSON."""

from __future__ import annotations

import typer

from roar.cli.output import JSON, emit_json, emit_text, printable_data

REF_HELP = "@N (step), a job uid, an artifact hash or unique prefix, a path, or session[:N]."


def register(app: typer.Typer) -> None:
    @app.command("show")
    def show_cmd(ref: str = typer.Argument(..., help=REF_HELP), as_json: bool = JSON,
                 remote: bool = typer.Option(False, "--remote", help="Ask the GLaaS server (roar login), "
                                             "as a hash not found here does anyway.")) -> None:
        """Show a recorded job (command, times, exit, files, processes, context, labels), an artifact
        (hashes, size, paths, producer and consumer jobs, lineage) or a session."""
        if remote or _registered_elsewhere(ref):
            from roar.cli.register import show_remote

            show_remote(ref, as_json)
            return
        from roar.cli import render
        from roar.lineage import queries, refs
        from roar.lineage.status import session_summary
        from roar.store import labels
        from roar.store.workspace import Workspace

        ws = Workspace.find()
        conn = ws.index()
        try:
            found = refs.resolve(conn, ref)
            if found.kind == "job":
                record = ws.read_record(found.id)
                links = queries.job_links(conn, found.id)
                current = labels.current(conn, "job", found.id)
                if as_json:
                    emit_json(render.job_json(record, links, current))
                else:
                    emit_text(render.job_text(*printable_data((record, links, current))))
            elif found.kind == "artifact":
                info = queries.artifact(conn, found.id)
                if found.path:
                    info["ref_path"] = found.path
                    if "://" not in found.path:   # the file the user named, as it is now
                        cache = ws.hash_cache()
                        try:
                            info["on_disk"] = queries.on_disk(found.path, info, cache)
                        finally:
                            cache.close()
                if as_json:
                    emit_json(info)
                else:
                    emit_text(render.artifact_text(printable_data(info)))
            else:
                summary = session_summary(conn, found.id)
                if as_json:
                    emit_json(summary)
                else:
                    emit_text(render.session_text(printable_data(summary)))
        finally:
            conn.close()


def _registered_elsewhere(ref: str) -> bool:
    """A hash this workspace does not know (or no workspace here), with a server to ask."""
    from roar.errors import NotAWorkspace, RefNotFound
    from roar.lineage import refs
    from roar.remote import config, lookup
    from roar.store.workspace import Workspace

    if not lookup.looks_remote(ref):
        return False
    try:
        conn = Workspace.find().index()
    except NotAWorkspace:
        return bool(config.load().url)
    try:
        refs.resolve(conn, ref)
    except RefNotFound:
        return bool(config.load().url)
    finally:
        conn.close()
    return False
