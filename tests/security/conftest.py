"""Fixtures for the privilege-boundary tests: a real second user, directories
it owns or shares with root, and roar run the ways an attacker meets it.

Every test here runs as root (the `root` marker: in CI a skip is a failure).
The throwaway user is created with useradd for the module and removed, with
its processes, afterwards; its name is unique so parallel runs do not meet.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.root


@dataclass
class User:
    name: str
    uid: int
    gid: int
    home: Path

    def popen_kwargs(self) -> dict:
        """subprocess arguments that run a command as this user (no extra groups)."""
        return {"user": self.uid, "group": self.gid, "extra_groups": [],
                "env": {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.home),
                        "USER": self.name, "LOGNAME": self.name, "LC_ALL": "C.UTF-8"}}

    def run(self, *cmd: str | os.PathLike, cwd: Path | str | None = None,
            **kw) -> subprocess.CompletedProcess:
        """Run cmd as this user."""
        opts = self.popen_kwargs()
        opts["env"].update(kw.pop("env", {}) or {})
        return subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, **opts, **kw)

    def sudo_env(self, **extra: str) -> dict:
        """The environment `sudo` gives root when this user runs `sudo roar ...`."""
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": "/root", "USER": "root", "LOGNAME": "root", "LC_ALL": "C.UTF-8",
               "SUDO_UID": str(self.uid), "SUDO_GID": str(self.gid), "SUDO_USER": self.name,
               "SUDO_COMMAND": "roar"}
        env.update(extra)
        return env


def _make_user(prefix: str) -> User:
    name = f"{prefix}{secrets.token_hex(3)}"
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", "--user-group", name],
                   check=True, capture_output=True)
    pw = pwd.getpwnam(name)
    home = Path(pw.pw_dir)
    home.chmod(0o755)   # root's tests look in; other users may traverse
    return User(name, pw.pw_uid, pw.pw_gid, home)


def _remove_user(user: User) -> None:
    subprocess.run(["pkill", "-KILL", "-u", user.name], capture_output=True)
    subprocess.run(["userdel", "--remove", "--force", user.name], capture_output=True)
    shutil.rmtree(user.home, ignore_errors=True)


@pytest.fixture(scope="module")
def mallory():
    """A throwaway unprivileged user: the attacker, or the user behind sudo."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create a second user")
    user = _make_user("roar-m")
    yield user
    _remove_user(user)


@pytest.fixture(scope="module")
def alice():
    """A second throwaway user, for tests that need two (one runs sudo, one attacks)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create a second user")
    user = _make_user("roar-a")
    yield user
    _remove_user(user)


@pytest.fixture
def shared_dir():
    """A world-writable sticky directory like /tmp, new for each test."""
    d = Path(tempfile.mkdtemp(prefix="roar-shared-", dir="/tmp"))
    d.chmod(0o1777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def user_dir(mallory):
    """A fresh directory owned by mallory (under its home), new for each test."""
    d = Path(tempfile.mkdtemp(prefix="work-", dir=mallory.home))
    os.chown(d, mallory.uid, mallory.gid)
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def roar(*args: str | os.PathLike, cwd: Path | str, env: dict | None = None,
         **kw) -> subprocess.CompletedProcess:
    """roar as root, with exactly `env` (default: root's own environment)."""
    return subprocess.run([sys.executable, "-m", "roar", *map(str, args)], cwd=cwd,
                          capture_output=True, env=env if env is not None else dict(os.environ), **kw)


def sudo_roar(user: User, *args: str | os.PathLike, cwd: Path | str,
              extra_env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    """roar as `sudo roar ...` typed by `user` (SUDO_UID/GID/USER set, sudo's environment)."""
    return roar(*args, cwd=cwd, env=user.sudo_env(**(extra_env or {})), **kw)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The single `roar: ...` line a refusal prints (no traceback)."""
    err = proc.stderr.decode(errors="replace") if isinstance(proc.stderr, bytes) else proc.stderr
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("roar: "), err
    return lines[0]
