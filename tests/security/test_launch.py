"""Starting the command: it runs only on roar's go-ahead, after it is tracked,
and dies with roar, so killing roar can never leave it running untraced.

The window between the fork and the go-ahead is hit for real: strace stops
roar at the pidfd_open it makes right after the fork and delivers the signal
there, while the child is still waiting for the go-ahead."""

from __future__ import annotations

import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.security.conftest import User

pytestmark = [pytest.mark.root, pytest.mark.ebpf]

needs_strace = pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")


def live_with(token: str, exclude: set[int] = frozenset()) -> list[int]:
    """Live (not zombie) processes whose command line holds token."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in exclude:
            continue
        try:
            if token.encode() in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def wait_until(cond, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def kill_between_fork_and_go(sig: str, cwd: Path, env: dict) -> tuple[Path, str]:
    """roar run a command that would create a marker, killed by sig right after the fork."""
    token = secrets.token_hex(6)
    marker = cwd / f"ran-{token}"
    cmd = ["strace", "-qq", "-o", "/dev/null", "-e", "trace=pidfd_open",
           "-e", f"inject=pidfd_open:signal={sig}",
           sys.executable, "-m", "roar", "run", "--", "sh", "-c", f"touch {marker}"]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, timeout=60)
    assert proc.returncode != 0, proc.stderr
    # once nothing of that command line is alive, an exec would have made the marker
    assert wait_until(lambda: not live_with(token)), "the forked child never went away"
    time.sleep(0.2)
    return marker, token


@needs_strace
@pytest.mark.parametrize("sig", ["KILL", "TERM"])
def test_roar_killed_before_the_go_ahead_never_runs_the_command(tmp_path: Path, sig: str) -> None:
    marker, _ = kill_between_fork_and_go(sig, tmp_path, dict(os.environ))
    assert not marker.exists(), "the command ran although roar died before tracking it"


@needs_strace
def test_under_sudo_roar_killed_before_the_go_ahead(mallory: User, user_dir: Path) -> None:
    marker, _ = kill_between_fork_and_go("KILL", user_dir, mallory.sudo_env())
    assert not marker.exists(), "the command ran although roar died before tracking it"


def start_job(cwd: Path, env: dict, *cmd: str) -> tuple[subprocess.Popen, int]:
    """roar run cmd; roar's process and the pid of the command once it has exec'd."""
    roar = subprocess.Popen([sys.executable, "-m", "roar", "run", "-q", "--", *cmd], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    name = os.path.basename(cmd[0])

    def command_pid() -> int | None:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
            if fields.get("PPid", "").strip() == str(roar.pid) and fields.get("Name", "").strip() == name:
                return int(entry.name)
        return None

    found: list[int] = []
    assert wait_until(lambda: bool(found.append(command_pid()) or found[-1]), 20), roar.stderr
    return roar, found[-1]


@pytest.mark.parametrize("as_user", [False, True], ids=["root", "sudo"])
def test_the_command_dies_with_roar(tmp_path: Path, mallory: User, user_dir: Path, as_user: bool) -> None:
    """SIGKILL to roar mid-job: the command it started is killed by the kernel,
    under sudo too (the request is made after the uid change, which clears it)."""
    cwd, env = (user_dir, mallory.sudo_env()) if as_user else (tmp_path, dict(os.environ))
    roar, pid = start_job(cwd, env, "sleep", "60")
    if as_user:
        assert os.stat(f"/proc/{pid}").st_uid == mallory.uid
    roar.kill()
    roar.wait(timeout=10)
    roar.stderr.close()
    try:
        assert wait_until(lambda: gone(pid), 5), "the command outlived roar, untraced"
    finally:
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_child_killed_before_the_go_ahead_is_reported_not_a_crash() -> None:
    """A signal roar passes on can kill the child while it waits: letting it go
    then is no error, and the wait reports the signal."""
    from roar.tracer.launcher import Launch

    child = Launch("/bin/true", ["true"], dict(os.environ), None)
    try:
        os.kill(child.pid, signal.SIGTERM)
        assert select.select([child.pidfd], [], [], 10)[0], "the waiting child did not die"
        child.release()
        status = None
        while status is None:
            status = child.poll_exit()
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
    finally:
        child.restore_terminal()
        child.close()


@pytest.mark.parametrize("sent", [b"", b"y"], ids=["eof", "other-byte"])
def test_only_the_go_ahead_byte_lets_the_child_exec(tmp_path: Path, sent: bytes) -> None:
    from roar.tracer.launcher import Launch

    marker = tmp_path / "ran"
    child = Launch("/bin/sh", ["sh", "-c", f"touch {marker}"], dict(os.environ), None)
    try:
        if sent:
            os.write(child._go_w, sent)
        os.close(child._go_w)
        _, status = os.waitpid(child.pid, 0)
        assert os.waitstatus_to_exitcode(status) == 127
        assert not marker.exists()
    finally:
        os.close(child._err_r)
        child.close()


def test_the_command_gets_default_signal_dispositions(tmp_path: Path) -> None:
    """roar (Python) ignores SIGPIPE; the command must not inherit that, or
    `yes | head` would end with a write error instead of SIGPIPE."""
    script = 'yes | head -c1 >/dev/null; echo "${PIPESTATUS[0]}" > status'
    proc = subprocess.run([sys.executable, "-m", "roar", "run", "-q", "--", "bash", "-c", script],
                          cwd=tmp_path, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "status").read_text().strip() == str(128 + signal.SIGPIPE)
