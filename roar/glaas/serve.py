"""`roar glaas serve`: the application under uvicorn, on a socket bound here so that a
port of 0 works and the address printed is the one in use.

With --workers N > 1, uvicorn's supervisor starts N worker processes that share that one
listening socket (the kernel hands each connection to one of them). The schema is migrated
once, here, before they start; each worker opens its own engine and pool. The supervisor
restarts a worker that dies, and SIGTERM or SIGINT stops them all."""

from __future__ import annotations

import os
import signal
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


class WorkerApp:
    """The application of one worker process, made in that process (uvicorn calls it there,
    as a factory): its own engine on the already migrated database. Picklable, since the
    supervisor starts workers with multiprocessing's spawn."""

    def __init__(self, db_url: str, session_ttl: float | None) -> None:
        self.db_url, self.session_ttl = db_url, session_ttl
        self.supervisor = os.getpid()    # made in the supervisor, called in a worker

    def __call__(self):
        _end_with(self.supervisor)
        from roar.glaas.app import create_app
        from roar.glaas.db import open_engine

        app = create_app(open_engine(self.db_url, migrate_schema=False), session_ttl=self.session_ttl)
        _settle_heap()
        return app


def _end_with(supervisor: int) -> None:
    """A worker ends when its supervisor does, even by SIGKILL: left behind it would go on
    answering on the port, and a new server could not bind it."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != supervisor:    # it died before the request took hold
        os._exit(0)


def _settle_heap() -> None:
    """Leave what start-up made (modules, the app, SQLAlchemy's tables) out of the garbage
    collector's full passes. Each such pass walked all of it: 85-100 ms with the event loop
    stopped, ~30 times in a 16 s bench on PostgreSQL, which was the lineage p99."""
    import gc

    gc.collect()
    gc.freeze()


def serve(db_url: str | None, host: str, port: int, log_level: str = "warning",
          session_ttl: float | None = None, workers: int = 1) -> None:
    import uvicorn

    from roar.glaas.app import create_app
    from roar.glaas.db import open_engine

    engine = open_engine(db_url)
    sock = bind(host, port)
    real_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    plural = f", {workers} worker processes" if workers > 1 else ""
    sys.stderr.write(f"roar glaas: listening on http://{shown}:{real_port} "
                     f"(database {engine.url.render_as_string(hide_password=True)}{plural})\n")
    sys.stderr.flush()
    options = {"log_level": log_level, "access_log": False, "proxy_headers": False, "server_header": False}
    if workers <= 1:
        config = uvicorn.Config(create_app(engine, session_ttl=session_ttl), **options)
        _settle_heap()
        uvicorn.Server(config).run(sockets=[sock])
        return
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()   # the workers open their own; none is shared across a fork or a spawn
    config = uvicorn.Config(WorkerApp(url, session_ttl), factory=True, workers=workers, **options)
    supervisor = Multiprocess(config, sockets=[sock])
    supervisor.run()
    if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
        raise RoarError("a worker process of roar glaas serve failed to start (its error is above); "
                        "check --db and try again")
