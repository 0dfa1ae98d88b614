"""Ctrl-Z on a traced command: the shell gets its prompt back and lists the
job as stopped, `fg` resumes it with the terminal, and the job ends and is
recorded as usual. Run for real: an interactive bash on a pseudo-terminal."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root, pytest.mark.ebpf]

PROMPT = "roar-test$ "
ROAR = f"{shlex.quote(sys.executable)} -m roar run -q --"


class Shell:
    """bash -i on a pty of its own: type lines, read until some text shows."""

    def __init__(self, cwd: Path) -> None:
        if shutil.which("bash") is None:
            pytest.skip("bash is not installed")
        env = {**os.environ, "PS1": PROMPT, "TERM": "dumb", "PROMPT_COMMAND": ""}
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.chdir(cwd)
            os.execvpe("bash", ["bash", "--norc", "--noprofile", "-i"], env)
        self.seen = ""
        self.expect(PROMPT)

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def expect(self, pattern: str, regex: bool = False, timeout: float = 20.0) -> re.Match:
        """Wait for pattern (plain text, or a regex) in what the shell printed since the last match."""
        compiled = re.compile(pattern if regex else re.escape(pattern), re.S)
        deadline = time.monotonic() + timeout
        while True:
            m = compiled.search(self.seen)
            if m:
                self.seen = self.seen[m.end():]
                return m
            left = deadline - time.monotonic()
            assert left > 0, f"no {pattern!r} in the terminal; it shows: {self.seen!r}"
            if select.select([self.fd], [], [], min(left, 0.5))[0]:
                try:
                    self.seen += os.read(self.fd, 4096).decode(errors="replace")
                except OSError:   # the shell is gone
                    raise AssertionError(f"the shell ended; it showed: {self.seen!r}") from None

    def close(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass
        os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.fixture
def shell(tmp_path: Path):
    sh = Shell(tmp_path)
    yield sh
    sh.close()


def record(cwd: Path, step: int = 1) -> dict:
    shown = subprocess.run([sys.executable, "-m", "roar", "show", f"@{step}", "--json"], cwd=cwd,
                           capture_output=True)
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def fg(shell: Shell) -> None:
    shell.send("fg\n")
    shell.expect("fg\r\n")
    shell.expect(" -m roar run")    # bash names the job it resumes
    time.sleep(0.5)                 # bash flushes what is typed before it hands the terminal over


def finish_cat(shell: Shell, cwd: Path) -> None:
    """The resumed cat has the terminal: a line typed reaches it, ^D ends it with status 0."""
    shell.send("hello again\n")
    shell.expect("hello again.*hello again", regex=True)   # the echo of the line, then cat's copy of it
    shell.send("\x04")
    shell.expect(PROMPT)
    shell.send("echo status=$?\n")
    assert shell.expect(r"status=(\d+)", regex=True).group(1) == "0"
    rec = record(cwd)
    assert rec["exit_code"] == 0 and rec["exit"]["status"] != "interrupted"
    assert any(Path(i["path"]).name == "in.txt" for i in rec["inputs"])


def test_ctrl_z_gives_the_prompt_back_and_fg_resumes(shell: Shell, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("from the file\n")
    shell.send(f"{ROAR} sh -c 'cat in.txt; exec cat'\n")
    shell.expect("from the file")
    shell.send("first line\n")
    shell.expect("first line.*first line", regex=True)
    shell.send("\x1a")                      # Ctrl-Z
    shell.expect(PROMPT)
    shell.send("jobs\n")
    shell.expect(r"\[1\]\+\s+Stopped", regex=True)
    fg(shell)
    finish_cat(shell, tmp_path)


def test_reading_from_the_background_stops_the_job_until_fg(shell: Shell, tmp_path: Path) -> None:
    """Started with `&`, the command stops when it reads the terminal; the
    shell shows the job stopped (tty input), and `fg` gives the command the terminal."""
    (tmp_path / "in.txt").write_text("from the file\n")
    shell.send(f"{ROAR} sh -c 'cat in.txt; exec cat' &\n")
    shell.expect("from the file")
    shell.send("\n")
    shell.expect(PROMPT)
    shell.send("sleep 1; jobs\n")
    shell.expect(r"\[1\]\+\s+Stopped", regex=True)
    fg(shell)
    finish_cat(shell, tmp_path)


def test_ctrl_c_after_fg_still_interrupts(shell: Shell, tmp_path: Path) -> None:
    shell.send(f"{ROAR} sleep 30\n")
    time.sleep(1)
    shell.send("\x1a")
    shell.expect(PROMPT)
    fg(shell)
    shell.send("\x03")
    shell.expect(PROMPT)
    shell.send("echo status=$?\n")
    assert shell.expect(r"status=(\d+)", regex=True).group(1) == str(128 + signal.SIGINT)
    assert record(tmp_path)["exit"]["status"] == "interrupted"


def test_bg_lets_the_job_finish_without_taking_the_terminal(shell: Shell, tmp_path: Path) -> None:
    """After Ctrl-Z and `bg` the command runs on; when it ends roar must not
    take the terminal from the shell, which keeps reading commands."""
    shell.send(f"{ROAR} sh -c 'sleep 1.5; echo done > out.txt'\n")
    time.sleep(0.5)
    shell.send("\x1a")
    shell.expect(PROMPT)
    shell.send("bg\n")
    shell.expect(PROMPT)
    jobs = tmp_path / ".roar" / "jobs"
    deadline = time.monotonic() + 20
    while not (jobs.exists() and any(jobs.iterdir())):    # the job ends while bash waits at its prompt
        assert time.monotonic() < deadline, "the resumed job never finished"
        time.sleep(0.1)
    time.sleep(0.5)
    assert os.tcgetpgrp(shell.fd) == shell.pid, "roar took the terminal from the shell"
    shell.send("echo still here\n")
    shell.expect("still here\r\nstill here")
    rec = record(tmp_path)
    assert rec["exit_code"] == 0
    assert [Path(o["path"]).name for o in rec["outputs"]] == ["out.txt"]


def test_sigtstp_to_roar_stops_the_command_too(shell: Shell, tmp_path: Path) -> None:
    """`kill -TSTP` of roar (not the terminal's Ctrl-Z) stops the command with it,
    rather than leaving it running while roar is stopped; `kill %1` then ends both."""
    shell.send(f"{ROAR} sleep 30 &\n")
    pid = int(shell.expect(r"\[1\] (\d+)", regex=True).group(1))
    shell.expect(PROMPT)
    time.sleep(1)
    shell.send("kill -TSTP %1; sleep 1; jobs\n")
    shell.expect(r"\[1\]\+\s+Stopped", regex=True)
    # roar's children: the command and roar's pinner (roar/tracer/pinner.py); the command's
    # tracer is the pinner, so its stop shows as "t" in /proc, a group stop all the same
    sleeps = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid_and_state(p)[0] == pid
              and _comm(p) != "roar-pinner"]
    assert sleeps and all(_ppid_and_state(p)[1] in ("T", "t") for p in sleeps), "the command kept running"
    shell.send("kill %1\n")
    jobs = tmp_path / ".roar" / "jobs"
    deadline = time.monotonic() + 20
    while not (jobs.exists() and any(jobs.iterdir())):
        assert time.monotonic() < deadline, "the job was never recorded"
        time.sleep(0.1)
    rec = record(tmp_path)
    assert rec["exit"]["status"] == "interrupted" and rec["exit"]["signal"] == signal.SIGTERM


def _comm(proc: Path) -> str:
    try:
        return (proc / "comm").read_text().strip()
    except OSError:
        return ""


def _ppid_and_state(proc: Path) -> tuple[int, str]:
    try:
        fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return -1, ""
    return int(fields[1]), fields[0]
