"""The descriptors a job receives from the spare stay roar's: close-on-exec, so the command
(the invoking user's) never holds the job's BPF maps. A map descriptor needs no privilege to
use: with the `tracked` map a user adds anyone's process to their job's trace, and a
descendant that keeps the descriptors keeps the object's kernel memory after roar exits."""

from __future__ import annotations

import fcntl
import subprocess
import sys

import pytest

from roar.tracer import spare
from roar.tracer.loader import object_id
from tests.security.conftest import sudo_roar
from tests.security.test_spare import clean, ready_spare  # noqa: F401  (clean: a fixture)

pytestmark = [pytest.mark.root, pytest.mark.ebpf]


def start_spare(idle_s: float = 30.0) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-I", "-m", "roar.tracer.spare", str(idle_s)], cwd="/",
                            env={"PATH": "/usr/bin:/bin"})
    assert ready_spare() == proc.pid
    return proc


def test_received_descriptors_are_close_on_exec(clean) -> None:  # noqa: F811
    proc = start_spare()
    try:
        loaded = spare.take(object_id())
        assert loaded is not None and loaded.source == "spare"
        try:
            fds = [fd for *_, fd in loaded.programs] + list(loaded.maps.values())
            inheritable = [fd for fd in fds if not fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC]
            assert not inheritable, f"{len(inheritable)} of {len(fds)} BPF descriptors survive exec"
        finally:
            loaded.close()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_the_command_holds_no_bpf_descriptor(clean, mallory, user_dir) -> None:  # noqa: F811
    proc = start_spare()
    try:
        job = sudo_roar(mallory, "run", "-q", "sh", "-c", 'ls -l "/proc/$$/fd"', cwd=user_dir)
        assert job.returncode == 0, job.stderr
        assert proc.wait(timeout=10) == 0, "the job did not take the spare"
        assert b"anon_inode:bpf" not in job.stdout, job.stdout.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
