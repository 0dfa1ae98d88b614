"""Cost of the getenv probes and of the Python start-up hook (docs/tracer.md, "getenv uprobes").

Run as root: /opt/roar/venv/bin/python scripts/bench_env_read.py
- a tight getenv loop (one name, N calls) untraced, with the probes attached but the process not
  tracked (the tax on every other process of the machine), and tracked (the job's own cost);
- Python start-up (`python -c pass`) with and without the hook in PYTHONPATH.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOOP = r"""
#include <stdlib.h>
#include <stdio.h>
int main(int argc, char **argv) {
    long n = atol(argv[1]), hits = 0;
    for (long i = 0; i < n; i++) hits += getenv("HOME") != NULL;
    printf("%ld\n", hits);
    return 0;
}
"""
CALLS = 200_000
REPEATS = 5


def _time(cmd: list[str], env: dict[str, str] | None = None, before=None) -> float:
    best = []
    for _ in range(REPEATS):
        if before:
            before()
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
        best.append(time.perf_counter() - t)
    return statistics.median(best)


def main() -> None:
    from roar.tracer.envread import hook_dir
    from roar.tracer.loader import Tracer, preflight

    preflight()
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp) / "loop.c", Path(tmp) / "loop"
        src.write_text(LOOP)
        subprocess.run(["gcc", "-O2", "-o", str(exe), str(src)], check=True)
        cmd = [str(exe), str(CALLS)]
        untraced = _time(cmd)
        with Tracer(lambda raw: None) as tracer:
            untracked = _time(cmd)
            # tracked: the launcher's way, a child tracked before it execs
            tracked_times = []
            for _ in range(REPEATS):
                r, w = os.pipe()
                pid = os.fork()
                if pid == 0:
                    os.close(w)
                    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
                    os.read(r, 1)
                    os.execv(cmd[0], cmd)
                os.close(r)
                tracer.track(pid)
                t = time.perf_counter()
                os.write(w, b"x")
                os.close(w)
                os.waitpid(pid, 0)
                tracked_times.append(time.perf_counter() - t)
                tracer.drain()
            tracked = statistics.median(tracked_times)
    per_call = lambda total: (total - untraced) / CALLS * 1e9  # noqa: E731
    print(f"getenv loop, {CALLS} calls: untraced {untraced * 1e3:.1f} ms, "
          f"probes attached, untracked {untracked * 1e3:.1f} ms (+{per_call(untracked):.0f} ns/call), "
          f"tracked {tracked * 1e3:.1f} ms (+{per_call(tracked):.0f} ns/call)")

    here = hook_dir()
    plain = _time([sys.executable, "-c", "pass"])
    hooked = _time([sys.executable, "-c", "pass"], env={**os.environ, "PYTHONPATH": here})
    read = "import os; [os.environ.get('HOME') for _ in range(100000)]"
    plain_r = _time([sys.executable, "-c", read])
    hooked_r = _time([sys.executable, "-c", read], env={**os.environ, "PYTHONPATH": here})
    print(f"python -c pass: {plain * 1e3:.1f} ms, with the hook {hooked * 1e3:.1f} ms; "
          f"100k os.environ.get: {plain_r * 1e3:.1f} ms, with the hook {hooked_r * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
