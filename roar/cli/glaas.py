"""`roar glaas serve`, `roar glaas token create|revoke` and `roar glaas key add|remove`: the
GLaaS server and its administration (docs/glaas.md). Everything server-side is imported
inside the commands, so no other verb loads FastAPI or SQLAlchemy."""

from __future__ import annotations

import sys

import typer

from roar.cli.output import JSON, emit_json

DB = typer.Option(None, "--db", metavar="URL",
                  help="sqlite:///PATH, a file path, or postgresql://... "
                       "(default: $XDG_DATA_HOME/roar/glaas.db)")


def _need_extra() -> None:
    from roar.errors import RoarError

    try:
        import alembic  # noqa: F401
        import fastapi  # noqa: F401
        import sqlalchemy  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise RoarError(f"roar glaas needs the glaas extra ({exc.name} is missing): "
                        "pip install 'roar[glaas]'") from None


def _store_call(fn, *args):
    """Run an admin query; its refusals become the CLI's errors (docs/exit-codes.md)."""
    from roar.errors import RefNotFound, UsageError
    from roar.glaas.db import open_engine, sessionmaker_for
    from roar.glaas.store.errors import NotFound, StoreError

    engine = open_engine(args[0])
    try:
        with sessionmaker_for(engine)() as session:
            return fn(session, *args[1:])
    except NotFound as exc:
        raise RefNotFound(exc.message) from None
    except StoreError as exc:
        raise UsageError(exc.message) from None
    finally:
        engine.dispose()


def register(app: typer.Typer) -> None:
    glaas = typer.Typer(help="Run and administer a GLaaS lineage server.", no_args_is_help=True)
    token = typer.Typer(help="Bearer tokens of the server's users.", no_args_is_help=True)
    key = typer.Typer(help="SSH public keys users sign requests with.", no_args_is_help=True)
    glaas.add_typer(token, name="token")
    glaas.add_typer(key, name="key")
    app.add_typer(glaas, name="glaas")

    @glaas.command("serve")
    def serve_cmd(db: str = DB,
                  host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
                  port: int = typer.Option(8787, "--port", min=0, max=65535, help="Port (0: any free one)."),
                  session_ttl: float = typer.Option(86400, "--session-ttl", min=1, metavar="SECONDS",
                                                    help="How long a registration may stay unfinished "
                                                         "before it is dropped."),
                  workers: int = typer.Option(1, "--workers", min=1, max=64, metavar="N",
                                              help="Worker processes sharing the listening socket."),
                  ) -> None:
        """Serve the GLaaS API (/api/v1, OpenAPI at /api/v1/openapi.json) until interrupted.
        The database is migrated to the current schema first."""
        _need_extra()
        from roar.glaas.serve import serve

        serve(db, host, port, session_ttl=session_ttl, workers=workers)

    @token.command("create")
    def create_cmd(user: str = typer.Option(..., "--user", metavar="NAME", help="Whose token (made if new)."),
                   project: str = typer.Option(None, "--project", metavar="P",
                                               help="Register into project P (made if new; USER joins it)."),
                   db: str = DB, as_json: bool = JSON) -> None:
        """Create a token and print it (once: the server keeps only its hash)."""
        _need_extra()
        from roar.glaas.store import tokens

        token_id, secret = _store_call(tokens.create, db, user, project)
        if as_json:
            emit_json({"id": token_id, "token": secret, "user": user, "project": project})
            return
        sys.stdout.write(secret + "\n")
        sys.stderr.write(f"roar glaas: token {token_id} for user {user}"
                         f"{f' in project {project}' if project else ''}; "
                         f"revoke it with `roar glaas token revoke {token_id}`\n")

    @token.command("revoke")
    def revoke_cmd(token_or_id: str = typer.Argument(..., metavar="TOKEN-or-ID"), db: str = DB) -> None:
        """Revoke a token, named by its id (tok_...) or by the token itself."""
        _need_extra()
        from roar.glaas.store import tokens

        token_id = _store_call(tokens.revoke, db, token_or_id)
        sys.stdout.write(f"revoked {token_id}\n")

    @key.command("add")
    def key_add_cmd(file: str = typer.Argument(..., metavar="FILE.pub", help="An OpenSSH public key."),
                    user: str = typer.Option(..., "--user", metavar="NAME", help="Whose key (made if new)."),
                    db: str = DB) -> None:
        """Register a public key: requests USER signs with it (roar-cli's SSH auth, namespace
        glaas) are then authenticated as USER. Prints the key's fingerprint."""
        _need_extra()
        from roar.glaas.store import sshkeys

        fingerprint = _store_call(sshkeys.add, db, user, _read_public_key(file))
        sys.stdout.write(fingerprint + "\n")

    @key.command("remove")
    def key_remove_cmd(fingerprint: str = typer.Argument(..., metavar="SHA256:..."), db: str = DB) -> None:
        """Remove a registered key, named by its fingerprint (`ssh-keygen -lf FILE.pub`)."""
        _need_extra()
        from roar.glaas.store import sshkeys

        sys.stdout.write(f"removed {_store_call(sshkeys.remove, db, fingerprint)}\n")


def _read_public_key(file: str) -> str:
    """The key file's text: a regular file of at most 16 KiB, not followed through a link."""
    import os
    import stat

    from roar.errors import RefNotFound, Untrusted, UsageError

    try:
        fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise RefNotFound(f"{file}: no such file: give the public key's path (FILE.pub)") from None
    except OSError as exc:
        if os.path.islink(file):
            raise Untrusted(f"{file} is a symbolic link: give the key file's real path") from None
        raise UsageError(f"{file}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise UsageError(f"{file} is not a regular file: give an OpenSSH public key file (FILE.pub)")
        data = handle.read((16 << 10) + 1)
    if len(data) > 16 << 10:
        raise UsageError(f"{file} is too large for a public key: give FILE.pub, not the private key")
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise UsageError(f"{file} is not an OpenSSH public key (not text)") from None
