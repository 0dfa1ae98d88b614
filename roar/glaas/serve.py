"""`roar glaas serve`: the application under uvicorn, on a socket bound here so that a
port of 0 works and the address printed is the one in use."""

from __future__ import annotations

import socket
import sys

from roar.errors import RoarError


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only when the
    # socket says it is TCP. Without it a kept-alive connection's reply (headers, then body)
    # waits on the client's delayed ACK: 40 ms a request instead of 3
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise RoarError(f"cannot listen on {host}:{port}: {exc.strerror}; "
                        "choose another --host or --port") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(db_url: str | None, host: str, port: int, log_level: str = "warning",
          session_ttl: float | None = None) -> None:
    import uvicorn

    from roar.glaas.app import create_app
    from roar.glaas.db import open_engine

    engine = open_engine(db_url)
    sock = bind(host, port)
    real_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    sys.stderr.write(f"roar glaas: listening on http://{shown}:{real_port} "
                     f"(database {engine.url.render_as_string(hide_password=True)})\n")
    sys.stderr.flush()
    config = uvicorn.Config(create_app(engine, session_ttl=session_ttl), log_level=log_level,
                            access_log=False,
                            proxy_headers=False, server_header=False)
    uvicorn.Server(config).run(sockets=[sock])
