#!/usr/bin/env python3
"""Benchmark: what context capture adds to `roar run true` (issue 4: at most 0.05 s).

Runs `roar run true` with and without context capture, alternating, in a
fresh git repository (so `git status` runs too), after one warm-up run that
fills the caches (and the bytecode cache, as an installed roar has), and
prints the medians and their difference. "With context"
is the same runner with roar.record.context.capture called on the record it
built, exactly as the runner will call it. It also times capture() alone on
that record, in process, which is the figure without process start-up noise.

Needs root (the tracer). Usage: sudo python scripts/bench_context.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYCACHE = os.path.join(tempfile.gettempdir(), "roar-bench-pycache")

WITH_CONTEXT = """
import os, sys
from pathlib import Path
import roar.runner as runner
from roar.record.context import capture
from roar.tracer import launcher
from roar import privilege

build = runner._build_record
def build_with_context(argv, options, cwd, *rest):
    record = build(argv, options, cwd, *rest)
    record["context"] = capture(cwd=cwd, argv=argv, env=launcher.child_environment(privilege.invoking_user()),
                                processes=record["processes"],
                                paths_read=record["system_reads"] + [i["path"] for i in record["inputs"]],
                                cache_dir=Path(cwd) / ".roar" / "cache")
    return record
runner._build_record = build_with_context
from roar.cli.entry import main
sys.argv = ["roar"] + sys.argv[1:]
main()
"""


def timed(cmd: list[str], cwd: str) -> float:
    # as installed: bytecode cached (kept out of the source tree), whatever PYTHONDONTWRITEBYTECODE says
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONPYCACHEPREFIX=PYCACHE)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    started = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="roar-bench-") as work:
        subprocess.run(["git", "init", "-q", work], check=True)
        Path(work, "README").write_text("bench\n")
        without = [sys.executable, "-m", "roar", "run", "-q", "true"]
        with_ctx = [sys.executable, "-c", WITH_CONTEXT, "run", "-q", "true"]
        timed(with_ctx, work)   # warm-up: fills .roar/cache
        a, b = [], []
        for _ in range(args.runs):
            a.append(timed(without, work))
            b.append(timed(with_ctx, work))
        inproc = in_process(work, args.runs)
    without_s, with_s = statistics.median(a), statistics.median(b)
    print(f"roar run true, median of {args.runs}: without context {without_s:.3f} s, "
          f"with context {with_s:.3f} s, difference {with_s - without_s:+.3f} s")
    print(f"capture() alone, warm caches, median of {args.runs}: {statistics.median(inproc) * 1000:.1f} ms")


def in_process(work: str, runs: int) -> list[float]:
    sys.path.insert(0, str(REPO))
    from roar.record import job as jobrec
    from roar.record.context import capture

    path = sorted(Path(work, ".roar", "jobs").glob("*.msgpack"))[-1]
    record = jobrec.decode(path.read_bytes())
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        capture(cwd=work, argv=record["argv"], env=dict(os.environ), processes=record["processes"],
                paths_read=record["system_reads"], cache_dir=Path(work, ".roar", "cache"))
        times.append(time.perf_counter() - started)
    return times


if __name__ == "__main__":
    main()
