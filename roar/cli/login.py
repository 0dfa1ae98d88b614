"""`roar login URL --token T`, `roar logout`, `roar whoami`: which GLaaS server roar
talks to, and as whom (roar.remote.config keeps the file)."""

from __future__ import annotations

import sys

import typer

from roar.cli.output import emit_json, emit_text
from roar.cli.register import JSON

TOKEN = typer.Option(..., "--token", help="A token the server's admin made (roar glaas token create); "
                                          "`-` reads it from stdin, out of the shell's history.")


def _read_token(token: str) -> str:
    from roar.errors import UsageError

    if token == "-":
        token = sys.stdin.readline()
    token = token.strip()
    if not token or len(token) > 4096 or not token.isprintable() or any(c.isspace() for c in token):
        raise UsageError("--token: give the token the server's admin made (one word, no spaces)")
    return token


def register(app: typer.Typer) -> None:
    @app.command("login")
    def login_cmd(url: str = typer.Argument(..., help="The GLaaS server, e.g. https://glaas.example.org."),
                  token: str = TOKEN) -> None:
        """Check a token with a GLaaS server and save both for roar register, show and dag."""
        from roar.remote import config
        from roar.remote.http import Client
        from roar.remote.register import identity

        url = config.normalize_url(url)
        token = _read_token(token)
        with Client(url, token) as client:
            ident, user = identity(client)   # a token the server refuses is never saved
        path = config.save({"url": url, "token": token, "user": user, "identity": ident})
        emit_text(f"logged in to {url} as {user} ({ident}); the token is saved in {path}")

    @app.command("logout")
    def logout_cmd() -> None:
        """Forget the saved GLaaS server and token."""
        from roar.remote import config

        path = config.forget()
        missing = config.config_dir() / config.FILE
        emit_text(f"logged out: removed {path}" if path else f"not logged in ({missing} does not exist)")

    @app.command("whoami")
    def whoami_cmd(as_json: bool = JSON) -> None:
        """Ask the GLaaS server who roar is to it (the saved token, or ROAR_GLAAS_TOKEN)."""
        from roar.remote import config
        from roar.remote.http import Client
        from roar.remote.register import health, identity

        settings = config.load()
        url = config.require_url(settings)
        with Client(url, settings.token) as client:
            if settings.token:
                ident, user = identity(client)
            else:
                health(client)   # reachable, and a GLaaS server
                ident, user = "anonymous", None
        if as_json:
            emit_json({"server": url, "user": user, "identity": ident, "token_from": settings.token_from})
        elif settings.token:
            emit_text(f"{user} ({ident}) on {url}, token from {settings.token_from}")
        else:
            emit_text(f"anonymous on {url}: not logged in (roar login {url} --token TOKEN)")
