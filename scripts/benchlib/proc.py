"""Running one command and timing it: wall time, the figures the workload
prints about itself, and what wait4 says about its resources."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

ELAPSED_RE = re.compile(rb"elapsed_ns=(\d+)")
CPU_RE = re.compile(rb"cpu_ns=(\d+)")


class BenchError(Exception):
    """A benchmark cannot go on; the message says why."""


def log(msg: str, prog: str = "bench") -> None:
    sys.stderr.write(f"{prog}: {msg}\n")
    sys.stderr.flush()


class Run:
    """One finished command: wall time, exit status, output, and rusage."""

    def __init__(self, wall_s: float, rc: int, output: bytes, usage: os.struct_rusage | None = None) -> None:
        self.wall_s, self.rc, self.output = wall_s, rc, output
        self.maxrss_kb = usage.ru_maxrss if usage else 0
        # user + system time of the process and the descendants it reaped
        self.rusage_cpu_s = usage.ru_utime + usage.ru_stime if usage else None

    def _last(self, pattern: re.Pattern[bytes]) -> float | None:
        found = pattern.findall(self.output)
        return int(found[-1]) / 1e9 if found else None

    @property
    def own_s(self) -> float | None:
        """The workload's own time, as it printed it ("elapsed_ns=", scripts/bench/*.c)."""
        return self._last(ELAPSED_RE)

    @property
    def cpu_s(self) -> float | None:
        """The workload's CPU time (user + system), printed next to it ("cpu_ns=")."""
        return self._last(CPU_RE)

    def tail(self, n: int = 5) -> str:
        return " | ".join(self.output.decode(errors="replace").strip().splitlines()[-n:])


def run(cmd: list[str], cwd: Path, env: dict[str, str], check: bool = True) -> Run:
    """Run cmd, stdout+stderr into one pipe. Wall time from just before the
    spawn to the reap; peak RSS from wait4 (the max over the process and the
    descendants it reaped)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.stdout.close()
    p.returncode = os.waitstatus_to_exitcode(status)
    r = Run(wall, p.returncode, out, usage)
    if check and r.rc != 0:
        raise BenchError(f"`{shlex.join(cmd)}` exited {r.rc}: {r.tail()}")
    return r
