#!/usr/bin/env python3
"""Benchmark of the workspace store (issue 3); figures go to docs/performance-store.md.

- a synthetic workspace of 10,000 jobs and 100,000 artifacts (one session:
  each job reads 5 earlier outputs and writes 10 new files, one per directory
  so that they stay 100,000 plain file artifacts; the paths do not exist on
  disk, so the staleness check costs a failed stat per input): wall time of
  `roar status`, `roar show @N`, `roar dag --json` (median of --runs) and the
  peak RSS of those processes;
- the hash cache: a second pass over 1 GB of unchanged inputs hashes nothing;
- hashing a 2 GB file against `b3sum` on the same file, in the same run.

Usage: python scripts/bench_store.py [--dir /tmp/roar-bench] [--runs 5] [--skip-hash]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

JOBS = 10_000
OUTPUTS_PER_JOB = 10
INPUTS_PER_JOB = 5


def build_workspace(root: Path) -> float:
    from roar.store import synthetic
    from roar.store.workspace import Workspace

    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    ws = Workspace.find_or_create(root)
    session = ws.reset()["id"]
    rng = random.Random(42)
    made: list[dict] = []
    t0 = time.time() - JOBS
    for n in range(JOBS):
        inputs = rng.sample(made, INPUTS_PER_JOB) if len(made) > INPUTS_PER_JOB else []
        outputs = [synthetic.file_entry(f"/bench/data/{k}/j{n:05d}.bin", hash_=os.urandom(32).hex(), size=1000 + k)
                   for k in range(OUTPUTS_PER_JOB)]
        rec = synthetic.record(f"python step.py --job {n}", inputs, outputs, started_at=t0 + n)
        rec.update(session=session, step=n + 1)
        ws.write_record(rec)
        made += outputs
    start = time.perf_counter()
    ws.rebuild()
    return time.perf_counter() - start


def timed(cwd: Path, *args: str) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "roar", *args], cwd=cwd, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"roar {' '.join(args)} failed: {proc.stderr.decode()}")
    return elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def bench_commands(root: Path, runs: int) -> None:
    for args, limit in ((("status",), 0.5), (("show", f"@{JOBS // 2}"), 0.3), (("dag", "--json"), 2.0)):
        times = [timed(root, *args)[0] for _ in range(runs)]
        med = statistics.median(times)
        print(f"roar {' '.join(args):<12} median {med:.3f} s  (min {min(times):.3f}, max {max(times):.3f}, "
              f"limit {limit} s) {'OK' if med <= limit else 'OVER'}")
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS of those commands: {rss:.0f} MB (limit 500 MB) {'OK' if rss <= 500 else 'OVER'}")


def make_file(path: Path, size: int) -> None:
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(size >> 20):
            f.write(chunk[:-1] + bytes([random.randrange(256)]))
    past = time.time() - 3600
    os.utime(path, (past, past))


def bench_cache(root: Path) -> None:
    from roar.artifacts.hashing import hash_file
    from roar.store.workspace import Workspace

    ws = Workspace.find(root)
    inputs = []
    for i in range(4):
        p = root / f"input-{i}.bin"
        make_file(p, 256 << 20)
        inputs.append(str(p))
    for attempt in ("first run", "re-run"):
        cache = ws.hash_cache()
        start = time.perf_counter()
        for p in inputs:
            hash_file(p, ("blake3",), cache=cache)
        print(f"hash cache, {attempt} over 1 GB: {time.perf_counter() - start:.3f} s, "
              f"{cache.misses} files hashed, {cache.hits} from the cache")
        cache.close()


def bench_b3sum(root: Path, runs: int) -> None:
    from roar.artifacts.hashing import hash_uncached

    b3sum = shutil.which("b3sum")
    if b3sum is None:
        print("b3sum not installed: skipping the comparison")
        return
    big = root / "big-2g.bin"
    make_file(big, 2 << 30)
    subprocess.run([b3sum, str(big)], check=True, capture_output=True)   # warm the page cache
    ours, theirs = [], []
    for _ in range(runs):
        start = time.perf_counter()
        expected = subprocess.run([b3sum, "--no-names", str(big)], check=True, capture_output=True,
                                  text=True).stdout.strip()
        theirs.append(time.perf_counter() - start)
        start = time.perf_counter()
        got = hash_uncached(str(big), ("blake3",))["blake3"]
        ours.append(time.perf_counter() - start)
        assert got == expected, "roar and b3sum disagree"
    t_ours, t_theirs = statistics.median(ours), statistics.median(theirs)
    gb = big.stat().st_size / 1e9
    print(f"2 GB file: b3sum {t_theirs:.3f} s ({gb / t_theirs:.2f} GB/s), roar {t_ours:.3f} s "
          f"({gb / t_ours:.2f} GB/s): {t_theirs / t_ours:.2f}x b3sum's speed (need >= 0.9) "
          f"{'OK' if t_theirs / t_ours >= 0.9 else 'UNDER'}")
    big.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp/roar-bench")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-hash", action="store_true", help="only the workspace commands")
    args = parser.parse_args()
    root = Path(args.dir)
    print(f"building {JOBS} jobs, {JOBS * OUTPUTS_PER_JOB} artifacts in {root} ...")
    print(f"roar db rebuild of it: {build_workspace(root):.1f} s")
    bench_commands(root, args.runs)
    if not args.skip_hash:
        bench_cache(root)
        bench_b3sum(root, args.runs)


if __name__ == "__main__":
    main()
