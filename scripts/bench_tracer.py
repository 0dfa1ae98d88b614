#!/usr/bin/env python3
"""Overhead of `roar run` against untraced runs, measured in one invocation.

Run as root:  python3 scripts/bench_tracer.py [--runs N] [--json PATH] [--no-strace]

Every figure is a ratio against the untraced run of the same workload measured
in the same invocation (the machine may be shared and noisy): the median over N
rounds of the ratio within a round, each round running the untraced and the
traced variant back to back, in alternating order (ABBA) to cancel drift.

  (a) C loop, 200k x (openat + read + close) of one small file: the workload's
      own time (clock_gettime inside the program, so roar's fixed start/stop
      cost is left out) and the whole command's wall time;
  (b) dd, 1M x 4 KiB read+write: own time (scripts/bench/timeit.c) and wall time;
  (c) `make -j2` of 40 generated C files + main.c (`make clean` between runs):
      wall time, and make's own time;
  (d) fixed cost: wall(`roar run -q -- true`) - wall(`true`), next to the
      start-up of the interpreter alone and of `roar --version`;
  (f) the floor: (a), (b) and (c) again with empty programs attached on roar's
      attach points (bpf/floor.bpf.c: tp_btf/sys_exit, sched_process_fork/exec/exit),
      loaded through roar's own libbpf binding: what any tracer on these attach
      points pays, so the table shows how far above it roar is;
  (e) no BPF program named on_sys_exit/on_fork/on_exec/on_exit stays loaded once
      a job ended (`bpftool prog show` after every job and at the end), and what
      untraced processes pay (dd, untraced) while a `roar run -- sleep 30` job
      runs in the background, and after it ended.

Next to each elapsed time, the workload's CPU time (user + system: where the
in-kernel tracing cost lands), which other processes competing for the two CPUs
inflate less than elapsed time (less, not never: in a VM, steal time counts).

Also: events and dropped events of (a) and (b) read back from the job record
(`roar show --json`), peak RSS of the roar process in (a) (wait4 ru_maxrss), and
a ptrace baseline (`strace -f -o /dev/null`) for (a) (one run: it is slow) and (c).

The machine may be shared: while anybody's roar job is attached every process
pays for it. A monitor thread counts the roar programs attached (bpf syscalls
through ctypes, every 10 ms); a round during which a roar job other than ours
was attached is kept in the JSON but not used, and run again (at most 2N rounds).

The workloads run in a fresh temporary directory that is its own roar workspace;
the C workloads in scripts/bench/ are compiled there with gcc, the floor with
`make -C bpf floor` (clang). Stdlib only. The parts live in scripts/benchlib/
(shared with the other benchmarks) and scripts/benchlib/tracer/ (this one's).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import sys
import time
from pathlib import Path

from benchlib.proc import BenchError, log, run
from benchlib.tracer import workloads
from benchlib.tracer.bench import Bench
from benchlib.tracer.report import CONTEXT, TARGETS, table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="rounds per figure, medians reported (default 5)")
    ap.add_argument("--json", metavar="PATH", help="write all samples and figures as JSON")
    ap.add_argument("--no-strace", action="store_true", help="skip the ptrace (strace -f) baseline")
    ap.add_argument("--no-floor", action="store_true",
                    help="skip the floor (empty BPF programs on roar's attach points)")
    ap.add_argument("--roar", metavar="CMD", help="how to invoke roar (default: this python -m roar)")
    ap.add_argument("--tmpdir", default="/tmp", help="where the temporary workspace goes (default /tmp)")
    ap.add_argument("--only", default="dabce", help="which parts to run, e.g. 'ad' (default dabce)")
    ap.add_argument("--no-monitor", action="store_true",
                    help="do not watch for other roar jobs attached while measuring")
    ap.add_argument("--budget", type=float, default=480, metavar="S",
                    help="after S seconds, stop re-running rounds another roar job disturbed (default 480)")
    ap.add_argument("--no-snapshot", action="store_true",
                    help="run roar from where it is installed, not from a copy taken at the start")
    ap.add_argument("--keep", action="store_true", help="keep the temporary workspace")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.stderr.write("bench_tracer: must run as root (roar needs root to load its BPF programs)\n")
        return 1
    if args.runs < 1:
        sys.stderr.write("bench_tracer: --runs must be at least 1\n")
        return 2
    for tool in ("gcc", "make", "dd"):
        if not shutil.which(tool):
            sys.stderr.write(f"bench_tracer: {tool} not found (apt-get install build-essential)\n")
            return 1

    t_start = time.perf_counter()
    now = dt.datetime.now(dt.timezone.utc)
    bench = Bench(args)
    meta = {
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "kernel": f"Linux {platform.release()}",
        "cpus": os.cpu_count(),
        "runs": args.runs,
        "python": sys.version.split()[0],
        "roar_cmd": shlex.join(bench.roar),
        "strace": bench.strace,
        "loadavg_start": os.getloadavg(),
        "constants": {"open_loops": workloads.OPEN_LOOPS, "dd_count": workloads.DD_COUNT,
                      "build_files": workloads.BUILD_FILES + 1,
                      "build_funcs_per_file": workloads.BUILD_FUNCS},
        "targets": TARGETS,
        "context": CONTEXT,
    }
    try:
        bench.setup()
        copy = f" on a copy of {bench.roar_source}" if bench.roar_source else ""
        log(f"workspace {bench.ws}; roar = {meta['roar_cmd']}{copy}; {args.runs} rounds each")
        meta["roar_version"] = run(bench.roar + ["--version"], bench.ws, bench.env).output.decode().strip()
        meta["roar_package"] = bench.roar_source
        meta["roar_snapshot"] = bench.roar_path
        meta["floor"] = bench.tracers.floor is not None
        steps = {"d": bench.bench_fixed, "a": bench.bench_open, "b": bench.bench_dd,
                 "c": bench.bench_build, "e": bench.bench_background}
        for key in args.only:
            if key in steps:
                steps[key]()
        bench.final_check()
    except BenchError as exc:
        sys.stderr.write(f"bench_tracer: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("bench_tracer: interrupted\n")
        return 130
    finally:
        bench.cleanup()
    meta["loadavg_end"] = os.getloadavg()
    meta["duration_s"] = round(time.perf_counter() - t_start, 1)
    meta["notes"] = bench.notes
    text = table(bench.results, meta)
    print(text)
    for n in bench.notes:
        print(f"note: {n}")
    print(f"took {meta['duration_s']:.0f} s; load average {meta['loadavg_start'][0]:.2f} at the start, "
          f"{meta['loadavg_end'][0]:.2f} at the end")
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "results": bench.results, "table": text},
                                              indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
