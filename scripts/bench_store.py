#!/usr/bin/env python3
"""Benchmark of the workspace store (issue 3); figures go to docs/performance-store.md.

- a synthetic workspace of 10,000 jobs and 100,000 artifacts (one session:
  each job reads 5 earlier outputs and writes 10 new files, one per directory
  so that they stay 100,000 plain file artifacts; the paths do not exist on
  disk, so the staleness check costs one access() per distinct input): wall
  time of `roar status`, `roar show @N`, `roar dag --json` (median of --runs,
  the commands interleaved so that a noisy machine slows them alike), the
  fixed cost every command pays (`roar --version`: interpreter and CLI
  framework; `roar log -n 1`: plus parsing a command and opening the index),
  and the peak RSS of those processes; then the same with every job stale
  (a job re-makes the first job's output: the worst case for staleness);
- the hash cache: a second pass over 1 GB of unchanged inputs hashes nothing;
- hashing a 2 GB file against `b3sum` on the same file, in the same run.

The commands run as `python -m roar` with roar's bytecode cached (in a
temporary PYTHONPYCACHEPREFIX), as in an installed roar, even where
PYTHONDONTWRITEBYTECODE is set; --no-bytecode-cache measures without it.

Usage: python scripts/bench_store.py [--dir /tmp/roar-bench] [--runs 5] [--skip-hash]
                                     [--no-bytecode-cache]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

JOBS = 10_000
OUTPUTS_PER_JOB = 10
INPUTS_PER_JOB = 5


def build_workspace(root: Path, real_files: bool = False) -> float:
    """The workspace; with `real_files` the 100,000 outputs are written (1 KB each, under
    ROOT/data) and recorded with their real hashes, so that the staleness check stats
    and looks up every input in the hash cache instead of finding nothing there."""
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
    data = root / "data" if real_files else Path("/bench/data")
    for n in range(JOBS):
        inputs = rng.sample(made, INPUTS_PER_JOB) if len(made) > INPUTS_PER_JOB else []
        outputs = [_output(data / str(k) / f"j{n:05d}.bin", 1000 + k, real_files)
                   for k in range(OUTPUTS_PER_JOB)]
        rec = synthetic.record(f"python step.py --job {n}", inputs, outputs, started_at=t0 + n)
        rec.update(session=session, step=n + 1)
        ws.write_record(rec)
        made += outputs
    start = time.perf_counter()
    ws.rebuild()
    return time.perf_counter() - start


def child_env(bytecode_cache: bool) -> dict[str, str]:
    env = dict(os.environ)
    if bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "roar-bench-pycache")
    return env


def _output(path: Path, size: int, real: bool) -> dict:
    from roar.store import synthetic

    if not real:
        return synthetic.file_entry(str(path), hash_=os.urandom(32).hex(), size=size)
    content = os.urandom(size)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    past = time.time() - 3600    # not "racy": the hash cache may keep its digest
    os.utime(path, (past, past))
    return synthetic.file_entry(str(path), content)


# Runs one command and prints its wall time and peak RSS. A small process of its own starts
# it: a child forked straight from this benchmark process (hundreds of MB after building the
# workspace) may be charged the pages it shared with it before exec, and its peak RSS with them.
LAUNCHER = """
import resource, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
elapsed = time.perf_counter() - start
if proc.returncode:
    sys.exit(proc.stderr.decode())
print(elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def timed(cwd: Path, env: dict[str, str], *args: str) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of `python -m roar ARGS`."""
    proc = subprocess.run([sys.executable, "-c", LAUNCHER, sys.executable, "-m", "roar", *args], cwd=cwd,
                          capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(f"roar {' '.join(args)} failed: {proc.stderr}")
    elapsed, rss_kb = proc.stdout.split()
    return float(elapsed), int(rss_kb) / 1024


COMMANDS = ((("status",), 0.5), (("show", f"@{JOBS // 2}"), 0.3), (("dag", "--json"), 2.0),
            (("--version",), None), (("log", "-n", "1"), None))


def bench_commands(root: Path, runs: int, env: dict[str, str], title: str) -> None:
    print(title)
    for args, _ in COMMANDS:
        timed(root, env, *args)     # warm the page cache (and write the bytecode)
    times: dict[tuple[str, ...], list[float]] = {args: [] for args, _ in COMMANDS}
    peak: dict[tuple[str, ...], float] = {args: 0.0 for args, _ in COMMANDS}
    for _ in range(runs):
        for args, _ in COMMANDS:
            elapsed, rss = timed(root, env, *args)
            times[args].append(elapsed)
            peak[args] = max(peak[args], rss)
    for args, limit in COMMANDS:
        med = statistics.median(times[args])
        verdict = "" if limit is None else f", limit {limit} s: {'OK' if med <= limit else 'OVER'}"
        print(f"  roar {' '.join(args):<12} median {med:.3f} s  (min {min(times[args]):.3f}, "
              f"max {max(times[args]):.3f}{verdict})  peak RSS {peak[args]:.0f} MB")
    rss = max(peak.values())
    print(f"  peak RSS of those commands: {rss:.0f} MB (limit 500 MB) {'OK' if rss <= 500 else 'OVER'}")


def make_everything_stale(root: Path, real_files: bool) -> int:
    """A job re-makes the first job's first output with other bytes: every job that read it,
    and everything downstream, is stale (the worst case for `status` and `dag`). Returns how
    many jobs are stale."""
    from roar.lineage.status import status
    from roar.store import synthetic
    from roar.store.workspace import Workspace

    ws = Workspace.find(root)
    first = (root / "data" if real_files else Path("/bench/data")) / "0" / "j00000.bin"
    remade = synthetic.file_entry(str(first), hash_=os.urandom(32).hex(), size=1)
    ws.add_job(synthetic.record("python remake.py", [], [remade]))
    return len(status(ws, 1)["stale"])


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
    parser.add_argument("--real-files", action="store_true",
                        help="write the 100,000 files, so that every input exists (a stat and a hash-cache"
                             " lookup each)")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="run the commands as the environment says (PYTHONDONTWRITEBYTECODE)")
    args = parser.parse_args()
    root = Path(args.dir)
    env = child_env(not args.no_bytecode_cache)
    print(f"building {JOBS} jobs, {JOBS * OUTPUTS_PER_JOB} artifacts in {root} ...")
    print(f"roar db rebuild of it: {build_workspace(root, args.real_files):.1f} s")
    if args.real_files:
        timed(root, env, "status")   # the first look hashes the inputs once (the cache is not rebuilt)
    bench_commands(root, args.runs, env, "nothing stale:")
    stale = make_everything_stale(root, args.real_files)
    bench_commands(root, args.runs, env, f"the first output re-made: {stale} of {JOBS + 1} jobs stale:")
    if not args.skip_hash:
        bench_cache(root)
        bench_b3sum(root, args.runs)


if __name__ == "__main__":
    main()
