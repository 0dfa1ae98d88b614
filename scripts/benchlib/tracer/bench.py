"""The bench: a temporary workspace, one measured run of a variant (with the
checks that come after a roar job), rounds of paired runs, and parts (a)-(c)
and the end-of-bench check. Parts (d) and (e) are in fixed.py, background.py."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from .. import stats
from ..proc import BenchError, Run, log, run
from ..report import fmt_s
from . import workloads
from .background import bench_background
from .bpfwatch import AttachChecks, wait_for_spare
from .fixed import bench_fixed
from .monitor import AttachMonitor, NoMonitor
from .runners import Tracers, snapshot_roar

# per-round ratios each paired part reports: name -> (numerator, denominator)
PAIR_RATIOS = {"own": ("t_own", "u_own"), "wall": ("t_wall", "u_wall"), "cpu": ("t_cpu", "u_cpu"),
               "strace_own": ("s_own", "u_own"), "strace_wall": ("s_wall", "u_wall"),
               "floor_own": ("f_own", "u_own"), "floor_wall": ("f_wall", "u_wall"),
               "floor_cpu": ("f_cpu", "u_cpu"), "over_floor_own": ("t_own", "f_own")}


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.n = args.runs
        self.roar = shlex.split(args.roar) if args.roar else [sys.executable, "-m", "roar"]
        # the workloads run as root, traced or not (roar would become SUDO_UID's user)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SUDO_")}
        self.env["LC_ALL"] = "C"
        self.tracers = Tracers(self.roar, None if args.no_strace else shutil.which("strace"))
        self.base = Path(tempfile.mkdtemp(prefix="roar-bench-", dir=args.tmpdir))
        os.chmod(self.base, 0o755)
        self.ws = self.base / "ws"
        self.bin = self.base / "bin"
        self.build = self.ws / "build"
        self.small = self.ws / "small.txt"
        self.checks = AttachChecks()
        mon = AttachMonitor()
        self.monitor = mon if mon.ok and not args.no_monitor else NoMonitor()
        self.monitor.ignore = str(self.base)
        self.notes: list[str] = []
        self.show_by_step: bool | None = None   # does `roar show @N --json` work?
        self.results: dict = {}
        self.deadline = time.time() + args.budget   # past it, disturbed rounds are not run again
        self.roar_source: str | None = None   # the package the snapshot was taken from
        self.roar_path: str | None = None     # the snapshot's PYTHONPATH entry
        # roar's spare object (roar.tracer.spare): on unless the environment turns it off
        self.spares = self.env.get("ROAR_NO_SPARE", "") in ("", "0")
        self.spares_ready = 0                 # traced runs after which a spare was ready

    @property
    def strace(self) -> str | None:
        return self.tracers.strace

    # ---- setup

    def setup(self) -> None:
        for d in self.ws.parents:
            if (d / ".roar").is_dir() or (d / ".git").exists():
                raise BenchError(f"{d} holds a .roar/ or .git: roar would not make {self.ws} its own "
                                 "workspace; use --tmpdir elsewhere")
        self.ws.mkdir()
        self.bin.mkdir()
        workloads.compile_tools(self.bin)
        self.small.write_text("a small input file, read again and again\n")
        workloads.generate_build(self.build)
        if not self.args.no_snapshot and self.roar[1:3] == ["-m", "roar"]:
            self.roar_source, self.roar_path = snapshot_roar(self.roar[0], self.base / "roar-snapshot",
                                                             self.env)
            self.env["PYTHONPATH"] = os.pathsep.join(x for x in (self.roar_path, self.env.get("PYTHONPATH"))
                                                     if x)
        if not self.args.no_floor:
            obj = self.bin / "floor.bpf.o"
            why = workloads.build_floor(obj) or self.tracers.enable_floor(obj, self.ws, self.env)
            if why:
                self.note_once(why)
        # make ws the workspace now: a first job run in ws/build (--only c) would make its own there
        run(self.tracers.wrap("t", ["true"]), self.ws, self.env)
        self.checks.after_job("the workspace's first job")
        if isinstance(self.monitor, AttachMonitor):
            self.monitor.start()

    def jobs(self) -> set[str]:
        d = self.ws / ".roar" / "jobs"
        if not d.is_dir():
            return set()
        return {f[:-len(".msgpack")] for f in os.listdir(d) if f.endswith(".msgpack")}

    def note_once(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def read_record(self, uid: str, step: int) -> dict:
        """The job's record as `roar show --json` prints it: by `@N` while that
        works, else by uid (the new file in .roar/jobs/)."""
        if self.show_by_step is not False:
            p = subprocess.run(self.roar + ["show", f"@{step}", "--json"], cwd=self.ws, env=self.env,
                               capture_output=True, text=True)
            if p.returncode == 0:
                rec = json.loads(p.stdout)
                if rec.get("uid") == uid:
                    self.show_by_step = True
                    return rec
                why = f"gave job {rec.get('uid')}, not the new job {uid}"
            else:
                lines = (p.stderr or p.stdout).strip().splitlines()
                why = f"exited {p.returncode}: {lines[-1] if lines else ''}"
            self.show_by_step = False
            self.note_once(f"`roar show @{step} --json` {why}; records were read with `roar show UID --json`")
        p = subprocess.run(self.roar + ["show", uid, "--json"], cwd=self.ws, env=self.env,
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise BenchError(f"`roar show {uid} --json` exited {p.returncode}: {p.stderr.strip()[-300:]}")
        return json.loads(p.stdout)

    # ---- one run, and rounds of them

    def measure(self, cmd: list[str], cwd: Path, kind: str = "u", *, record: bool = False,
                label: str = "") -> tuple[Run, dict | None, list[str]]:
        """One run of cmd as `kind` runs it (runners.Tracers). Returns the run,
        the job record (roar, when asked) and the other roar jobs attached
        meanwhile, if any."""
        traced = kind == "t"
        before = self.jobs() if traced else set()
        self.monitor.start_window(int(traced))
        r = run(self.tracers.wrap(kind, cmd), cwd, self.env)
        most, who = self.monitor.end_window()
        foreign = who if most > traced else []
        rec = None
        if traced:
            # the spare this job started loads at once: no measured run may share the CPUs with it
            self.spares_ready += self.spares and wait_for_spare()
            if b"roar:" in r.output:
                self.note_once(f"roar printed: {r.tail(3)}")
            self.checks.after_job(label)
            if record:
                new = self.jobs() - before
                if len(new) != 1:
                    raise BenchError(f"expected one new job record after {label}, found {len(new)}")
                rec = self.read_record(new.pop(), step=len(before) + 1)
        return r, rec, foreign

    def rounds(self, name: str, body: Callable[[int, bool], tuple[dict, list[str]]],
               show: Callable[[dict], str]) -> list[dict]:
        """stats.rounds, logged; a note when fewer than N rounds ran undisturbed
        by another roar job."""
        def logged(attempt: int, rnd: dict) -> None:
            by = rnd["disturbed_by"]
            log(f"{name}: round {attempt}: {show(rnd['values'])}"
                + (f"  [not used: another roar job was attached: {by[0][:80]}]" if by else ""))

        out = stats.rounds(self.n, body, deadline=self.deadline, on_round=logged)
        clean = sum(not r["disturbed"] for r in out)
        if clean == 0:
            self.note_once(f"{name}: another roar job was attached during every one of the {len(out)} "
                           "rounds: its figures use them all")
        elif clean < self.n:
            self.note_once(f"{name}: only {clean} of {len(out)} rounds ran with no other roar job attached; "
                           "its figures use those")
        return out

    # ---- (a), (b), (c)

    def pair(self, name: str, cmd: list[str], cwd: Path, *, strace_rounds: int = 0,
             before_each: Callable[[], None] | None = None) -> dict:
        """Untraced / roar (/ floor / strace) back to back, order alternating."""
        state = {"strace_done": 0}

        def body(i: int, warmup: bool) -> tuple[dict, list[str]]:
            kinds = ["u", "t"] + (["f"] if self.tracers.floor else [])
            if self.strace and not warmup and state["strace_done"] < strace_rounds:
                kinds.append("s")
                state["strace_done"] += 1
            v: dict = {}
            foreign: list[str] = []
            for kind in stats.abba(kinds, i):
                if before_each:
                    before_each()
                r, rec, f = self.measure(cmd, cwd, kind, record=kind == "t" and not warmup,
                                         label=f"{name} traced, round {i + 1}")
                foreign += f if kind != "s" else []   # strace's one slow run is not paired
                v[f"{kind}_own"], v[f"{kind}_wall"], v[f"{kind}_cpu"] = r.own_s, r.wall_s, r.cpu_s
                if kind == "t":
                    v["t_rss_kb"] = r.maxrss_kb
                    if rec:
                        v["t_events"], v["t_dropped"] = rec["tracer"]["events"], rec["tracer"]["dropped"]
            return v, foreign

        rounds = self.rounds(name, body, lambda v: (
            f"untraced {fmt_s(v['u_own'])}, roar {fmt_s(v['t_own'])} (wall {fmt_s(v['u_wall'])} / "
            f"{fmt_s(v['t_wall'])})" + (f", floor {fmt_s(v['f_own'])}" if "f_own" in v else "")
            + (f", strace {fmt_s(v['s_own'])}" if "s_own" in v else "")))
        return with_job_figures(stats.summarize(rounds, PAIR_RATIOS))

    def bench_open(self) -> None:
        cmd = [str(self.bin / "openloop"), str(workloads.OPEN_LOOPS), str(self.small)]
        self.results["a"] = self.pair("(a) openloop", cmd, self.ws, strace_rounds=1)

    def bench_dd(self) -> None:
        cmd = [str(self.bin / "timeit")] + workloads.dd_cmd()
        self.results["b"] = self.pair("(b) dd", cmd, self.ws)

    def bench_build(self) -> None:
        cmd = [str(self.bin / "timeit"), "make", "-s", "-j2"]

        def clean() -> None:
            run(["make", "-s", "clean"], self.build, self.env)

        self.results["c"] = self.pair("(c) make -j2", cmd, self.build, strace_rounds=self.n,
                                      before_each=clean)
        clean()

    def bench_fixed(self) -> None:
        self.results["d"] = bench_fixed(self)

    def bench_background(self) -> None:
        self.results["e"] = bench_background(self)

    # ---- the end

    def final_check(self) -> None:
        c = self.checks
        c.after_job("end of the bench")
        self.results["e_attach"] = {
            "bpftool": c.enabled,
            "checked_after_jobs": c.checks,
            "clean_at_once": c.clean_at_once,
            "stuck": c.stuck,
            "lingered_then_freed": c.lingered,
            "foreign": c.foreign,
            "spare_held": c.spare_held,
            "spares": self.spares,
            "spares_ready_after_jobs": self.spares_ready,
            "spare_linked": c.spare_linked,
            "monitor": {"enabled": self.monitor.ok, "samples": self.monitor.samples},
        }

    def cleanup(self) -> None:
        self.monitor.stop()
        if self.args.keep:
            log(f"kept {self.base}")
        else:
            shutil.rmtree(self.base, ignore_errors=True)


def with_job_figures(out: dict) -> dict:
    """Events, drops and peak RSS over every traced run, used for the ratios or not."""
    allv = [r["values"] for r in out["rounds"]]
    if any("t_dropped" in v for v in allv):
        out["events"] = [v["t_events"] for v in allv if "t_events" in v]
        out["dropped_total"] = sum(v["t_dropped"] for v in allv if "t_dropped" in v)
    if any("t_rss_kb" in v for v in allv):
        out["rss_max_mb"] = max(v["t_rss_kb"] for v in allv if "t_rss_kb" in v) / 1024
    return out
