"""GLaaS server tests: every test here is marked `glaas` and runs against SQLite and
PostgreSQL (the `db_url` fixture). PostgreSQL is Debian's, started here: initdb + pg_ctl
as an unprivileged user (`postgres` when the suite runs as root), listening only on a Unix
socket in a temporary directory, stopped at the end of the session. A missing server
package or PostgreSQL is a skip outside CI and, through the `glaas` marker, a failure in CI
(tests/conftest.py)."""

from __future__ import annotations

import glob
import json
import os
import pwd
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if Path(str(item.fspath)).is_relative_to(HERE):
            item.add_marker(pytest.mark.glaas)


def _need_server_packages() -> None:
    for name in ("fastapi", "uvicorn", "sqlalchemy", "alembic", "psycopg"):
        try:
            __import__(name)
        except ImportError:
            pytest.skip(f"the glaas extra is not installed ({name}): pip install -e '.[glaas]'")


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class Postgres:
    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="roar-glaas-pg-"))
        self.user = None
        if os.geteuid() == 0:   # initdb refuses root
            try:
                self.user = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("PostgreSQL: no `postgres` user to run it as (apt-get install postgresql)")
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        os.chmod(self.dir, 0o755)

    def _run(self, *argv: str) -> None:
        def drop():
            if self.user is not None:
                os.setgid(self.user.pw_gid)
                os.setgroups([])
                os.setuid(self.user.pw_uid)

        done = subprocess.run(argv, preexec_fn=drop, capture_output=True, text=True, cwd=self.dir)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {done.stderr or done.stdout}")

    def start(self) -> None:
        data = self.dir / "data"
        self._run(str(self.bin / "initdb"), "-D", str(data), "-U", "roar", "-A", "trust", "-E", "UTF8",
                  "--no-sync")
        self._run(str(self.bin / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "log"), "-w", "-o",
                  f"-k {self.dir} -c listen_addresses='' -F -c max_connections=200", "start")

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def new_database(self) -> str:
        import psycopg

        name = "t_" + secrets.token_hex(6)
        with psycopg.connect(host=str(self.dir), user="roar", dbname="postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"postgresql://roar@/{name}?host={self.dir}"


@pytest.fixture(scope="session")
def postgres():
    _need_server_packages()
    if _pg_bin() is None:
        pytest.skip("PostgreSQL (initdb) is not installed: apt-get install postgresql")
    pg = Postgres()
    pg.start()
    yield pg
    pg.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    _need_server_packages()
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'glaas.db'}"
    return request.getfixturevalue("postgres").new_database()


def roar_cmd(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUDO_")}
    done = subprocess.run([sys.executable, "-m", "roar", *args], capture_output=True, text=True, env=env)
    if check and done.returncode != 0:
        raise AssertionError(f"roar {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done


class Server:
    """`roar glaas serve` in a process of its own, on a free loopback port."""

    def __init__(self, db: str, *options: str, host: str = "127.0.0.1", netns: str | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SUDO_")}
        argv = [sys.executable, "-m", "roar", "glaas", "serve", "--db", db, "--host", host, "--port", "0",
                *options]
        if netns:   # inside a network namespace the test made (tests/glaas/test_faults.py)
            argv = ["ip", "netns", "exec", netns, *argv]
        self.proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env)
        line = self.proc.stderr.readline()
        found = re.search(r"listening on (http://\S+)", line)
        if not found:
            self.proc.kill()
            raise AssertionError(f"roar glaas serve did not start: {line}{self.proc.stderr.read()}")
        self.url = found.group(1)
        # the server's log (an unexpected error's traceback), read as it comes: a pipe nobody
        # read would fill and stop the server mid-request
        self.log: list[str] = []
        self._reader = threading.Thread(target=lambda: self.log.extend(iter(self.proc.stderr.readline, "")),
                                        daemon=True)
        self._reader.start()

    def call(self, method: str, path: str, body=None, token: str | None = None, rs: str | None = None,
             raw: bytes | None = None, headers: dict | None = None):
        """(status, JSON reply unwrapped from {success, data})."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.url + "/api/v1" + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        if rs:
            request.add_header("Authorization", f"RegistrationSession {rs}")
        for k, v in (headers or {}).items():
            request.add_header(k, v)
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:
                status, text = reply.status, reply.read()
        except urllib.error.HTTPError as err:
            status, text = err.code, err.read()
        doc = json.loads(text) if text else None
        if isinstance(doc, dict) and doc.get("success") is True:
            doc = doc["data"]
        return status, doc

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=10)
        self.proc.stderr.close()


@pytest.fixture
def server(db_url):
    srv = Server(db_url)
    yield srv
    srv.stop()


@pytest.fixture
def make_token(db_url):
    def make(user: str, project: str | None = None) -> str:
        args = ["glaas", "token", "create", "--user", user, "--db", db_url, "--json"]
        if project:
            args += ["--project", project]
        return json.loads(roar_cmd(*args, check=True).stdout)["token"]
    return make
