"""`roar glaas` as a user meets it: a bad --db is one line and an exit code, and no other
verb pays for the server's imports."""

from __future__ import annotations

import subprocess
import sys

from tests.glaas.conftest import roar_cmd


def test_the_cli_does_not_import_the_server():
    code = ("import sys, roar.cli.main; "
            "print(sorted(m for m in ('fastapi', 'sqlalchemy', 'uvicorn', 'alembic', 'pydantic') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "[]\n"


def test_bad_database_urls_are_one_line_errors(tmp_path):
    done = roar_cmd("glaas", "token", "create", "--user", "a", "--db", "mysql://x/y")
    assert (done.returncode, done.stderr) == (2, "roar: --db: unsupported database 'mysql': "
                                                 "use sqlite:///PATH or postgresql://...\n")
    target = tmp_path / "real.db"
    target.write_bytes(b"")
    (tmp_path / "link.db").symlink_to(target)
    done = roar_cmd("glaas", "serve", "--db", str(tmp_path / "link.db"), "--port", "0")
    assert done.returncode == 8 and "is a symbolic link" in done.stderr and "Traceback" not in done.stderr
    done = roar_cmd("glaas", "serve", "--db", "postgresql://nobody@/x?host=/nonexistent", "--port", "0")
    assert done.returncode == 1 and done.stderr.startswith("roar: cannot open the database ")
    assert "\n" not in done.stderr.rstrip("\n")


def test_a_new_sqlite_database_is_private_to_its_owner(tmp_path):
    db = tmp_path / "sub" / "glaas.db"
    roar_cmd("glaas", "token", "create", "--user", "a", "--db", str(db), check=True)
    assert db.stat().st_mode & 0o077 == 0


def test_the_served_socket_gives_connections_tcp_nodelay():
    """asyncio turns Nagle off on accepted connections only for a socket made as IPPROTO_TCP.
    With Nagle on, a kept-alive connection's reply waited on the client's delayed ACK: some
    40 ms a request, 2,000 requests in a 1,000-job registration (docs/performance-glaas.md)."""
    import asyncio
    import socket

    from roar.glaas.serve import bind

    listener = bind("127.0.0.1", 0)
    seen: list[int] = []

    async def main():
        def accepted(reader, writer):
            seen.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=listener)
        reader, writer = await asyncio.open_connection(*listener.getsockname())
        await reader.read()
        writer.close()
        server.close()

    asyncio.run(main())
    assert seen and seen[0] != 0
