#!/usr/bin/env python3
"""Benchmark: what context capture adds to `roar run true` (budget: at most 0.05 s).

Runs `roar run true` as shipped (the runner always captures the context) and
the same runner with the capture taken out (`_add_context` replaced by a no-op
before anything imports roar.record.context, so its imports are not paid
either), alternating, in a fresh git repository (so `git status` runs too),
after one warm-up run that fills the caches (and the bytecode cache, as an
installed roar has), and prints the medians and their difference. It also
times capture() alone on that record, in process, which is the figure without
process start-up noise (imports excluded: they are paid once per process).

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

WITHOUT_CONTEXT = """
import sys
import roar.runner as runner
runner._add_context = lambda record, workspace, env: record.setdefault("context", None)
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
        with_ctx = [sys.executable, "-m", "roar", "run", "-q", "true"]
        without = [sys.executable, "-c", WITHOUT_CONTEXT, "run", "-q", "true"]
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
