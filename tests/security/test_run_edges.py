"""`roar run` at the edges: no stderr, a broken stderr, a deleted working
directory, a ring buffer too big. roar still exits with the command's status,
or with one line and a documented code, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.security.conftest import one_line_error, roar

pytestmark = [pytest.mark.root, pytest.mark.ebpf]


def shell(script: str, cwd: Path) -> subprocess.CompletedProcess:
    """script run by sh with $0 the interpreter roar runs under."""
    return subprocess.run(["sh", "-c", script, sys.executable], cwd=cwd, capture_output=True, timeout=60)


def recorded(cwd: Path) -> dict:
    shown = roar("show", "@1", "--json", cwd=cwd)
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


@pytest.mark.parametrize("closed", ["2>&-", ">&-", "<&-", "<&- >&- 2>&-"])
def test_closed_standard_fds_keep_the_exit_status(tmp_path: Path, closed: str) -> None:
    proc = shell(f'exec "$0" -m roar run -- sh -c "exit 7" {closed}', tmp_path)
    assert proc.returncode == 7, proc.stderr
    assert recorded(tmp_path)["exit_code"] == 7


def test_the_command_finds_a_closed_stderr_closed(tmp_path: Path) -> None:
    """roar fills the hole for itself only: the command still has no fd 2."""
    script = 'if [ -e /proc/$$/fd/2 ]; then echo open; else echo closed; fi > fd2.txt'
    proc = shell(f"exec \"$0\" -m roar run -q -- sh -c '{script}' 2>&-", tmp_path)
    assert proc.returncode == 0
    assert (tmp_path / "fd2.txt").read_text() == "closed\n"


def test_a_broken_stderr_keeps_the_exit_status(tmp_path: Path) -> None:
    """stderr a pipe nobody reads any more: the summary line cannot be written,
    and that changes nothing."""
    r, w = os.pipe()
    os.close(r)
    try:
        proc = subprocess.run([sys.executable, "-m", "roar", "run", "--", "sh", "-c", "exit 7"],
                              cwd=tmp_path, stderr=w, timeout=60)
    finally:
        os.close(w)
    assert proc.returncode == 7
    assert recorded(tmp_path)["exit_code"] == 7


def test_a_deleted_working_directory(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    proc = shell(f'cd {gone} && rmdir {gone} && exec "$0" -m roar run -- true', tmp_path)
    assert proc.returncode == 6
    assert "current directory was deleted" in one_line_error(proc)


@pytest.mark.parametrize("size", ["4G", "1G", "512M", str(1 << 32)])
def test_a_ring_buffer_over_the_cap_is_a_usage_error(tmp_path: Path, size: str) -> None:
    proc = roar("run", "--ring-buffer", size, "--", "true", cwd=tmp_path)
    assert proc.returncode == 2
    assert "over the limit of 256M" in one_line_error(proc)
    assert not (tmp_path / ".roar").exists()
