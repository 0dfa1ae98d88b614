"""The hosted service's public client, roar-cli 0.4.7 from PyPI, against our server: it
registers (anonymously and with a Bearer token), then `show --remote` and `reproduce` find
what it registered. Its git remote is a local bare repository (register pushes a tag).

roar-cli lives in a venv of its own (its module is also named `roar`), built once per
version under /var/cache/roar-tests (or the temp dir) and reused."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import blake3
import pytest

VERSION = "0.4.7"


def _cache_root() -> Path:
    for base in (Path("/var/cache/roar-tests"), Path(tempfile.gettempdir()) / "roar-tests-cache"):
        try:
            base.mkdir(parents=True, exist_ok=True)
            if os.access(base, os.W_OK):
                return base
        except OSError:
            continue
    raise RuntimeError("no writable cache directory for the roar-cli venv")


@pytest.fixture(scope="session")
def roar_cli() -> Path:
    """bin/ of a venv holding roar-cli==VERSION."""
    venv = _cache_root() / f"roar-cli-{VERSION}"
    with open(f"{venv}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # one build at a time; the others wait and reuse it
        if not (venv / ".complete").exists():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
            done = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"roar-cli=={VERSION}"],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                pytest.fail(f"pip install roar-cli=={VERSION} failed: {done.stderr[-2000:]}")
            (venv / ".complete").touch()
    return venv / "bin"


class Workspace:
    """A git project with a bare `origin`, and an environment that runs roar-cli in it."""

    def __init__(self, root: Path, bin_dir: Path, server_url: str) -> None:
        self.root = root
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("SUDO_", "ROAR_", "GLAAS_", "PYTHON", "VIRTUAL_ENV"))}
        home = root / "home"
        home.mkdir()
        self.env.update(PATH=f"{bin_dir}:/usr/local/bin:/usr/bin:/bin", HOME=str(home),
                        XDG_CONFIG_HOME=str(home / ".config"), GLAAS_URL=server_url, DO_NOT_TRACK="1",
                        GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org", GIT_COMMITTER_NAME="t",
                        GIT_COMMITTER_EMAIL="t@example.org", GIT_CONFIG_NOSYSTEM="1")
        self.git("init", "-q", "--bare", str(root / "remote.git"))
        self.proj = root / "proj"
        self.git("init", "-q", "-b", "main", str(self.proj))
        (self.proj / "in.txt").write_text("b\na\n")
        (self.proj / ".gitignore").write_text("mid.txt\nout.txt\n")
        self.git("remote", "add", "origin", str(root / "remote.git"), cwd=self.proj)
        self.git("add", "-A", cwd=self.proj)
        self.git("commit", "-qm", "input", cwd=self.proj)

    def git(self, *args: str, cwd: Path | None = None) -> None:
        subprocess.run(["git", *args], cwd=cwd or self.root, env=self.env, check=True, capture_output=True)

    def roar(self, *args: str, cwd: Path | None = None) -> str:
        done = subprocess.run(["roar", *args], cwd=cwd or self.proj, env=self.env, capture_output=True,
                              text=True, timeout=300)
        out = done.stdout + done.stderr
        # roar-cli can exit 0 after printing an error: both count
        assert done.returncode == 0 and "Error:" not in out, f"roar {' '.join(args)}:\n{out}"
        return out

    def login(self, token: str, user_id: int, name: str) -> None:
        auth = self.root / "home" / ".config" / "roar" / "auth.json"
        auth.parent.mkdir(parents=True, exist_ok=True)
        auth.write_text(json.dumps({"version": 1, "provider": "glaas", "access_token": token,
                                    "refresh_token": "unused", "expires_at": "2099-01-01T00:00:00Z",
                                    "user": {"sub": str(user_id), "db_user_id": str(user_id), "email": None,
                                             "username": name}}))
        auth.chmod(0o600)


def _session_hash(out: str, server_url: str) -> str:
    found = re.search(re.escape(server_url) + r"/dag/([0-9a-f]{64})", out)
    assert found, f"no session URL of {server_url} in:\n{out}"
    return found.group(1)


@pytest.mark.slow
def test_roar_cli_registers_shows_and_reproduces(server, make_token, roar_cli):
    # outside /tmp: roar-cli ignores files under /tmp by default
    root = Path(tempfile.mkdtemp(prefix="roar-glaas-compat-", dir="/var/tmp"))
    try:
        ws = Workspace(root, roar_cli, server.url)
        ws.roar("init", "-y")
        ws.roar("config", "set", "tracer.default", "ptrace")   # its eBPF backend is not this machine's
        ws.git("add", "-A", cwd=ws.proj)
        ws.git("commit", "-qm", "roar config", cwd=ws.proj)
        ws.roar("run", "sh", "-c", "sort in.txt > mid.txt")
        ws.roar("run", "sh", "-c", "wc -l mid.txt > out.txt")
        out_hash = blake3.blake3((ws.proj / "out.txt").read_bytes()).hexdigest()

        # anonymous public
        h = _session_hash(ws.roar("register", "out.txt", "--yes", "--anonymous"), server.url)
        status, dag = server.call("GET", f"/sessions/{h}")
        assert status == 200 and [j["command"] for j in dag["jobs"]] == [
            "sh -c 'sort in.txt > mid.txt'", "sh -c 'wc -l mid.txt > out.txt'"]
        assert server.call("GET", f"/artifacts/{out_hash}")[1]["originalSessionHash"] == h
        # again: the same DAG, nothing new
        ws.roar("register", "out.txt", "--yes", "--anonymous")
        assert server.call("GET", f"/sessions/{h}")[1]["jobs"] == dag["jobs"]

        # lookups from a fresh clone, where the local database knows nothing
        ws.git("clone", "-q", str(root / "remote.git"), str(root / "fresh"))
        shown = ws.roar("show", out_hash, "--remote", cwd=root / "fresh")
        assert "Produced by" in shown and "wc -l mid.txt > out.txt" in shown
        plan = ws.roar("reproduce", out_hash[:16], cwd=root / "fresh")
        assert "sort in.txt > mid.txt" in plan and "wc -l mid.txt > out.txt" in plan
        assert "wc -l mid.txt" in ws.roar("reproduce", h, "--lineage", cwd=root / "fresh")

        # with a Bearer token: the user's own, private DAG
        token = make_token("alice")
        me = server.call("GET", "/auth/me", token=token)[1]
        ws.login(token, me["user"]["id"], "alice")
        h2 = _session_hash(ws.roar("register", "out.txt", "--yes"), server.url)
        assert h2 != h
        status, dag2 = server.call("GET", f"/sessions/{h2}", token=token)
        assert status == 200 and dag2["scope"] == {"owner_name": "alice", "project_name": None,
                                                   "visibility": "private"}
        assert len(dag2["jobs"]) == 2
        assert server.call("GET", f"/sessions/{h2}")[0] == 404
        shown = ws.roar("show", out_hash, "--remote", cwd=root / "fresh")
        assert "Produced by" in shown
    finally:
        shutil.rmtree(root, ignore_errors=True)
