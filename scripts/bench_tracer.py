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
the C workloads in scripts/bench/ are compiled there with gcc. Stdlib only.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

ROAR_PROGS = ("on_sys_exit", "on_fork", "on_exec", "on_exit")
BENCH_SRC = Path(__file__).resolve().parent / "bench"
OPEN_LOOPS = 200_000
DD_COUNT = 1_000_000
BUILD_FILES = 40          # + main.c
BUILD_FUNCS = 12          # functions per generated file
ELAPSED_RE = re.compile(rb"elapsed_ns=(\d+)")
CPU_RE = re.compile(rb"cpu_ns=(\d+)")

TARGETS = {
    "a_own_ratio": 1.3,
    "c_wall_ratio": 1.05,
    "d_fixed_s": 0.2,
    "a_rss_mb": 100.0,
    "e_after_ratio": 1.05,   # "should be 1.0x": 5 % allowed for noise
}

# For scale: figures given in the issue for other tracers on this machine kind.
CONTEXT = {
    "best existing eBPF lineage tracer": {
        "a": "2.6x", "c": "1.66x", "d": "2.4 s",
        "e": "40 syscall tracepoints left attached ~1 min after every run, untraced processes up to 1.47x",
    },
    "a ptrace tracer": {"a": "41-125x", "c": "3-6x", "d": "0.3-0.7 s"},
}


class BenchError(Exception):
    pass


def log(msg: str) -> None:
    sys.stderr.write(f"bench: {msg}\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------- processes

class Run:
    def __init__(self, wall_s: float, rc: int, output: bytes, usage: os.struct_rusage | None = None) -> None:
        self.wall_s, self.rc, self.output = wall_s, rc, output
        self.maxrss_kb = usage.ru_maxrss if usage else 0
        # user + system time of the process and the descendants it reaped
        self.rusage_cpu_s = usage.ru_utime + usage.ru_stime if usage else None

    @property
    def own_s(self) -> float | None:
        """The workload's own time, printed by openloop/timeit ("elapsed_ns=")."""
        found = ELAPSED_RE.findall(self.output)
        return int(found[-1]) / 1e9 if found else None

    @property
    def cpu_s(self) -> float | None:
        """The workload's CPU time (user + system), printed next to it."""
        found = CPU_RE.findall(self.output)
        return int(found[-1]) / 1e9 if found else None

    def tail(self, n: int = 5) -> str:
        return " | ".join(self.output.decode(errors="replace").strip().splitlines()[-n:])


def run(cmd: list[str], cwd: Path, env: dict[str, str], check: bool = True) -> Run:
    """Run cmd, stdout+stderr into one pipe. Wall time from just before the
    spawn to the reap; peak RSS from wait4 (the max over the process and the
    descendants it reaped: for roar running a small C program, roar's own)."""
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


def median(xs: list) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# --------------------------------------------------------------------------- BPF: bpftool

def roar_programs() -> list[dict] | None:
    """The roar programs loaded (`bpftool -j prog show`), None without bpftool."""
    if not shutil.which("bpftool"):
        return None
    p = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True)
    try:
        progs = json.loads(p.stdout or "[]") if p.returncode == 0 else None
    except ValueError:
        progs = None
    if progs is None:
        return None
    return [{"id": x.get("id"), "name": x.get("name")} for x in progs if x.get("name") in ROAR_PROGS]


def linked_prog_ids() -> set[int]:
    p = subprocess.run(["bpftool", "-j", "link", "show"], capture_output=True, text=True)
    try:
        return {link.get("prog_id") for link in json.loads(p.stdout or "[]")}
    except ValueError:
        return set()


def bpf_fd_holders(prog_ids: set[int]) -> dict[int, list[str]]:
    """prog id -> ["pid comm"] of the other processes holding an fd on the
    program or on a link to it (/proc/*/fdinfo; this bpftool lists no pids)."""
    holders: dict[int, list[str]] = {}
    me = str(os.getpid())
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if pid == me:
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") not in ("anon_inode:bpf-prog", "anon_inode:bpf_link"):
                    continue
                with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    m = re.search(r"^prog_id:\s*(\d+)", f.read(), re.M)
                if not m or int(m.group(1)) not in prog_ids:
                    continue
                with open(f"/proc/{pid}/comm") as f:
                    entry = f"{pid} {f.read().strip()}"
            except OSError:
                continue
            lst = holders.setdefault(int(m.group(1)), [])
            if entry not in lst:
                lst.append(entry)
    return holders


def bpf_links_of(pid: int) -> int:
    n = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                n += os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:bpf_link"
            except OSError:
                pass
    except OSError:
        pass
    return n


def children_of(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return kids


class AttachChecks:
    """After each job of ours (its roar process has exited) no roar program
    may stay loaded. Programs whose fd a live process holds are someone else's
    job (the machine is shared): noted, not counted against us. A program
    nobody holds that the kernel has not freed yet is waited for, up to 3 s."""

    def __init__(self) -> None:
        self.enabled = roar_programs() is not None
        self.checks = 0
        self.clean_at_once = 0
        self.lingered: list[dict] = []   # still listed just after the job, then freed
        self.stuck: list[dict] = []      # still loaded 3 s after the job, nobody holding them
        self.foreign: list[dict] = []    # another live process's roar programs

    def after_job(self, label: str) -> None:
        if not self.enabled:
            return
        progs = roar_programs()
        if progs is None:
            return
        self.checks += 1
        if not progs:
            self.clean_at_once += 1
            return
        linked = linked_prog_ids()
        holders = bpf_fd_holders({x["id"] for x in progs})
        if holders:
            self.foreign.append({"after": label, "holders": holders})
        unheld = {x["id"]: x for x in progs if x["id"] not in holders}
        if not unheld:
            self.clean_at_once += 1
            return
        still_linked = sorted(x["name"] for i, x in unheld.items() if i in linked)
        t0 = time.perf_counter()
        while unheld and time.perf_counter() - t0 < 3.0:
            time.sleep(0.02)
            now = {x["id"] for x in (roar_programs() or [])}
            unheld = {i: x for i, x in unheld.items() if i in now}
        entry = {"after": label, "gone_after_s": round(time.perf_counter() - t0, 2),
                 "still_linked_at_first_look": still_linked}
        if unheld:
            entry["programs"] = list(unheld.values())
            self.stuck.append(entry)
        else:
            self.lingered.append(entry)


# --------------------------------------------------------------------------- BPF: monitor

class AttachMonitor(threading.Thread):
    """Counts, every 10 ms, the roar jobs attached on the machine (links to a
    program named on_sys_exit), with the bpf(2) syscall through ctypes (a few
    microseconds a sample, unlike bpftool). window() tells whether more were
    attached during a measurement than the measurement itself attached."""

    NR_BPF = {"x86_64": 321, "aarch64": 280}.get(platform.machine())
    PROG_GET_FD_BY_ID, OBJ_GET_INFO_BY_FD, LINK_GET_FD_BY_ID, LINK_GET_NEXT_ID = 13, 15, 30, 31

    class _IdAttr(ctypes.Structure):
        _fields_ = [("id", ctypes.c_uint32), ("next_id", ctypes.c_uint32), ("open_flags", ctypes.c_uint32)]

    class _InfoAttr(ctypes.Structure):
        _fields_ = [("bpf_fd", ctypes.c_uint32), ("info_len", ctypes.c_uint32), ("info", ctypes.c_uint64)]

    def __init__(self) -> None:
        super().__init__(daemon=True, name="roar-attach-monitor")
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._libc.syscall.restype = ctypes.c_long
        self._names: dict[int, str] = {}
        self._lock = threading.Lock()
        self._max = self._expected = 0
        self._who: list[str] = []
        self.ignore = ""   # a command line holding this is ours
        self._stop = threading.Event()
        self.samples = 0
        self.ok = self.NR_BPF is not None and self._count() is not None

    def _bpf(self, cmd: int, attr: ctypes.Structure) -> int:
        return self._libc.syscall(ctypes.c_long(self.NR_BPF), ctypes.c_long(cmd), ctypes.byref(attr),
                                  ctypes.c_long(ctypes.sizeof(attr)))

    def _info(self, get_fd_cmd: int, obj_id: int, size: int) -> bytes | None:
        fd = self._bpf(get_fd_cmd, self._IdAttr(obj_id, 0, 0))
        if fd < 0:
            return None
        try:
            buf = (ctypes.c_ubyte * size)()
            attr = self._InfoAttr(fd, size, ctypes.addressof(buf))
            return bytes(buf) if self._bpf(self.OBJ_GET_INFO_BY_FD, attr) == 0 else None
        finally:
            os.close(fd)

    def _linked(self) -> list[int] | None:
        """Ids of the programs named on_sys_exit that have a link: one per
        roar job attached. None when the bpf syscall is refused."""
        ids, cur, seen = [], 0, 0
        while True:
            attr = self._IdAttr(cur, 0, 0)
            if self._bpf(self.LINK_GET_NEXT_ID, attr) < 0:
                if ctypes.get_errno() != 2 and seen == 0:   # ENOENT ends the walk
                    return None
                return ids
            cur = attr.next_id
            seen += 1
            info = self._info(self.LINK_GET_FD_BY_ID, cur, 16)   # type, id, prog_id
            if info is None:
                continue
            prog_id = int.from_bytes(info[8:12], "little")
            name = self._names.get(prog_id)
            if name is None:
                pinfo = self._info(self.PROG_GET_FD_BY_ID, prog_id, 80)   # name at offset 64
                name = pinfo[64:80].split(b"\0")[0].decode(errors="replace") if pinfo else ""
                self._names[prog_id] = name
            if name == "on_sys_exit":
                ids.append(prog_id)

    def _count(self) -> int | None:
        ids = self._linked()
        return None if ids is None else len(ids)

    def _sample(self) -> None:
        ids = self._linked() or []
        with self._lock:
            self._max = max(self._max, len(ids))
            snap = len(ids) > self._expected and not self._who
        if snap:   # who else is tracing (once per window: a /proc walk)
            who = []
            for pids in bpf_fd_holders(set(ids)).values():
                for entry in pids:
                    pid = entry.split()[0]
                    try:
                        with open(f"/proc/{pid}/cmdline", "rb") as f:
                            cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                    except OSError:
                        cmd = entry
                    if not (self.ignore and self.ignore in cmd):   # our own job
                        who.append(f"{pid}: {cmd[:160]}")
            with self._lock:
                self._who = sorted(set(who)) or ["(a program nobody holds any more)"]

    def run(self) -> None:
        while not self._stop.wait(0.01):
            self._sample()
            self.samples += 1

    def start_window(self, expected: int = 0) -> None:
        with self._lock:
            self._max, self._expected, self._who = 0, expected, []
        self._sample()

    def end_window(self) -> tuple[int, list[str]]:
        self._sample()
        with self._lock:
            return self._max, self._who

    def stop(self) -> None:
        self._stop.set()


class _NoMonitor:
    ok = False
    samples = 0
    ignore = ""

    def start_window(self, expected: int = 0) -> None:
        pass

    def end_window(self) -> tuple[int, list[str]]:
        return 0, []

    def stop(self) -> None:
        pass


# --------------------------------------------------------------------------- the bench

class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.n = args.runs
        self.roar = shlex.split(args.roar) if args.roar else [sys.executable, "-m", "roar"]
        # the workloads run as root, traced or not (roar would become SUDO_UID's user)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SUDO_")}
        self.env["LC_ALL"] = "C"
        self.strace = None if args.no_strace else shutil.which("strace")
        self.base = Path(tempfile.mkdtemp(prefix="roar-bench-", dir=args.tmpdir))
        os.chmod(self.base, 0o755)
        self.ws = self.base / "ws"
        self.bin = self.base / "bin"
        self.build = self.ws / "build"
        self.checks = AttachChecks()
        mon = AttachMonitor()
        self.monitor = mon if mon.ok and not args.no_monitor else _NoMonitor()
        self.monitor.ignore = str(self.base)
        self.notes: list[str] = []
        self.show_by_step: bool | None = None   # does `roar show @N --json` work?
        self.results: dict = {}
        self.deadline = time.time() + args.budget   # past it, contaminated rounds are not run again
        self.roar_source: str | None = None   # the package the snapshot was taken from
        self.roar_path: str | None = None     # the snapshot's PYTHONPATH entry

    # ---- setup

    def setup(self) -> None:
        for d in self.ws.parents:
            if (d / ".roar").is_dir() or (d / ".git").exists():
                raise BenchError(f"{d} holds a .roar/ or .git: roar would not make {self.ws} its own "
                                 "workspace; use --tmpdir elsewhere")
        self.ws.mkdir()
        self.bin.mkdir()
        for name in ("openloop", "timeit"):
            src = BENCH_SRC / f"{name}.c"
            p = subprocess.run(["gcc", "-O2", "-Wall", "-o", str(self.bin / name), str(src)],
                               capture_output=True, text=True)
            if p.returncode != 0:
                raise BenchError(f"gcc {src} failed: {p.stderr.strip()}")
        self.small = self.ws / "small.txt"
        self.small.write_text("a small input file, read again and again\n")
        generate_build(self.build)
        self.snapshot_roar()
        if isinstance(self.monitor, AttachMonitor):
            self.monitor.start()

    def snapshot_roar(self) -> None:
        """Run a copy of the roar package taken now (PYTHONPATH), so that the
        whole bench measures one version even if the tree is edited meanwhile
        (a shared working tree: a record index made by one version and read by
        the next fails)."""
        if self.args.no_snapshot or self.roar[1:3] != ["-m", "roar"]:
            return
        p = subprocess.run([self.roar[0], "-c", "import os, roar; print(os.path.dirname(roar.__file__))"],
                           cwd="/", env=self.env, capture_output=True, text=True)
        if p.returncode != 0:
            raise BenchError(f"`{self.roar[0]} -c 'import roar'` failed: {p.stderr.strip()[-300:]}")
        self.roar_source = p.stdout.strip()
        dest = self.base / "roar-snapshot"
        shutil.copytree(self.roar_source, dest / "roar", ignore=shutil.ignore_patterns("__pycache__"))
        # byte-compile it once: with PYTHONDONTWRITEBYTECODE set every run would compile it again
        subprocess.run([self.roar[0], "-m", "compileall", "-q", str(dest)], env=self.env,
                       capture_output=True, check=False)
        self.roar_path = str(dest)
        self.env["PYTHONPATH"] = os.pathsep.join(x for x in (self.roar_path, self.env.get("PYTHONPATH")) if x)

    def traced(self, cmd: list[str], quiet: bool = True) -> list[str]:
        return self.roar + ["run"] + (["-q"] if quiet else []) + ["--"] + cmd

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

    def measure(self, cmd: list[str], cwd: Path, *, traced: bool = False, record: bool = False,
                label: str = "") -> tuple[Run, dict | None, list[str]]:
        """One run, untraced or under `roar run -q`. Returns the run, the job
        record (when asked) and the other roar jobs attached meanwhile, if any."""
        before = self.jobs() if traced else set()
        expected = 1 if traced else 0
        self.monitor.start_window(expected)
        r = run(self.traced(cmd) if traced else cmd, cwd, self.env)
        most, who = self.monitor.end_window()
        foreign = who if most > expected else []
        rec = None
        if traced:
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
        """A discarded warm-up round, then rounds until N clean ones (no other
        roar job attached meanwhile), at most 2N."""
        body(0, True)
        out: list[dict] = []
        clean = attempt = 0
        while clean < self.n and attempt < 2 * self.n:
            if attempt >= self.n and time.time() > self.deadline:
                break
            values, foreign = body(attempt, False)
            out.append({"values": values, "foreign_job_attached": bool(foreign), "other_roar_jobs": foreign})
            attempt += 1
            clean += not foreign
            log(f"{name}: round {attempt}: {show(values)}"
                + (f"  [not used: another roar job was attached: {foreign[0][:80]}]" if foreign else ""))
        if clean == 0:
            self.note_once(f"{name}: another roar job was attached during every one of the {attempt} rounds: "
                           "its figures use them all")
        elif clean < self.n:
            self.note_once(f"{name}: only {clean} of {attempt} rounds ran with no other roar job attached; "
                           "its figures use those")
        return out

    # ---- (a), (b), (c)

    def pair(self, name: str, cmd: list[str], cwd: Path, *, strace_rounds: int = 0,
             before_each: Callable[[], None] | None = None) -> dict:
        """Untraced / traced (/ strace) back to back, order alternating."""
        state = {"strace_done": 0}

        def body(i: int, warmup: bool) -> tuple[dict, list[str]]:
            kinds = ["u", "t"]
            if self.strace and not warmup and state["strace_done"] < strace_rounds:
                kinds.append("s")
            v: dict = {}
            foreign: list[str] = []
            for kind in (kinds if i % 2 == 0 else kinds[::-1]):
                if before_each:
                    before_each()
                if kind == "s":
                    r, rec, f = self.measure([self.strace, "-f", "-o", "/dev/null"] + cmd, cwd)
                    state["strace_done"] += 1
                else:
                    r, rec, f = self.measure(cmd, cwd, traced=kind == "t", record=kind == "t" and not warmup,
                                             label=f"{name} traced, round {i + 1}")
                    foreign += f
                v[f"{kind}_own"], v[f"{kind}_wall"], v[f"{kind}_cpu"] = r.own_s, r.wall_s, r.cpu_s
                if kind == "t":
                    v["t_rss_kb"] = r.maxrss_kb
                    if rec:
                        v["t_events"], v["t_dropped"] = rec["tracer"]["events"], rec["tracer"]["dropped"]
            return v, foreign

        rounds = self.rounds(name, body, lambda v: (
            f"untraced {fmt_s(v['u_own'])}, roar {fmt_s(v['t_own'])} (wall {fmt_s(v['u_wall'])} / "
            f"{fmt_s(v['t_wall'])})" + (f", strace {fmt_s(v['s_own'])}" if "s_own" in v else "")))
        return summarize(rounds, {"own": ("t_own", "u_own"), "wall": ("t_wall", "u_wall"),
                                  "cpu": ("t_cpu", "u_cpu"), "strace_own": ("s_own", "u_own"),
                                  "strace_wall": ("s_wall", "u_wall")})

    def bench_open(self) -> None:
        cmd = [str(self.bin / "openloop"), str(OPEN_LOOPS), str(self.small)]
        self.results["a"] = self.pair("(a) openloop", cmd, self.ws, strace_rounds=1)

    def bench_dd(self) -> None:
        cmd = [str(self.bin / "timeit")] + dd_cmd()
        self.results["b"] = self.pair("(b) dd", cmd, self.ws)

    def bench_build(self) -> None:
        cmd = [str(self.bin / "timeit"), "make", "-s", "-j2"]

        def clean() -> None:
            run(["make", "-s", "clean"], self.build, self.env)

        self.results["c"] = self.pair("(c) make -j2", cmd, self.build, strace_rounds=self.n,
                                      before_each=clean)
        clean()

    # ---- (d)

    def roar_flavours(self) -> list[tuple[str, str, list[str], list[str] | None, dict[str, str]]]:
        """(key, label, roar command, its interpreter alone, env) for the roar
        under test and, to tell roar's own start-up from its environment's,
        for the same roar package run by the python of scripts/setup's entry
        point (/usr/local/bin/roar: a venv with the dependencies pyproject pins)."""
        main_interp = [self.roar[0], "-c", "pass"] if self.roar[1:2] == ["-m"] else None
        label = f"{Path(self.roar[0]).name} -m roar" if main_interp else shlex.join(self.roar)
        out = [("main", label, self.roar, main_interp, self.env)]
        if not self.roar_path:
            return out
        try:
            with open("/usr/local/bin/roar", "rb") as f:
                first = f.readline().decode(errors="replace").strip()
        except OSError:
            return out
        interp = first[2:].split()[:1] if first.startswith("#!") else []
        if (interp and "python" in Path(interp[0]).name and os.access(interp[0], os.X_OK)
                and not os.path.samefile(interp[0], self.roar[0])):
            out.append(("setup_python", f"{interp[0]} -m roar (scripts/setup's venv), same package",
                        interp + ["-m", "roar"], interp + ["-c", "pass"], self.env))
        return out

    def bench_fixed(self) -> None:
        flavours = self.roar_flavours()
        cases: dict[str, list[str]] = {"true": ["true"]}
        envs: dict[str, dict[str, str]] = {"true": self.env}
        for key, _, roar, interp, env in flavours:
            cases[f"{key}_run_true"] = roar + ["run", "-q", "--", "true"]
            cases[f"{key}_version"] = roar + ["--version"]
            if interp:
                cases[f"{key}_interpreter"] = interp
            for k in cases:
                envs.setdefault(k, env)
        names = list(cases)

        def body(i: int, warmup: bool) -> tuple[dict, list[str]]:
            v: dict = {}
            foreign: list[str] = []
            for k in (names if i % 2 == 0 else names[::-1]):
                traced = k.endswith("_run_true")
                before = self.jobs()
                self.monitor.start_window(int(traced))
                r = run(cases[k], self.ws, envs[k])
                most, who = self.monitor.end_window()
                foreign += who if most > traced else []
                if traced:
                    self.checks.after_job(f"(d) {k}, round {i + 1}")
                    if len(self.jobs() - before) != 1:
                        raise BenchError(f"`{shlex.join(cases[k])}` recorded no job in {self.ws}")
                v[k], v[f"{k}_cpu"] = r.wall_s, r.rusage_cpu_s
            for key, *_ in flavours:
                v[f"{key}_fixed"] = v[f"{key}_run_true"] - v["true"]
                v[f"{key}_fixed_cpu"] = v[f"{key}_run_true_cpu"] - v["true_cpu"]
            return v, foreign

        rounds = self.rounds("(d) fixed cost", body, lambda v: ", ".join(
            f"{key}: roar run true - true = {fmt_s(v[f'{key}_fixed'])}" for key, *_ in flavours))
        res = summarize(rounds, {})
        res["commands"] = {k: shlex.join(v) for k, v in cases.items()}
        res["flavours"] = [{"key": k, "label": label, "PYTHONPATH": env.get("PYTHONPATH")}
                           for k, label, _, _, env in flavours]
        self.results["d"] = res

    # ---- (e)

    def bench_background(self) -> None:
        cmd = [str(self.bin / "timeit")] + dd_cmd()

        def body(i: int, warmup: bool) -> tuple[dict, list[str]]:
            rb, _, f1 = self.measure(cmd, self.ws)
            bg = subprocess.Popen(self.traced(["sleep", "30"], quiet=False), cwd=self.ws, env=self.env,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
            try:
                t0 = time.perf_counter()
                while not (bpf_links_of(bg.pid) >= len(ROAR_PROGS) and children_of(bg.pid)):
                    if bg.poll() is not None or time.perf_counter() - t0 > 15:
                        raise BenchError("the background `roar run -- sleep 30` did not attach within 15 s")
                    time.sleep(0.02)
                time.sleep(0.1)
                self.monitor.start_window(1)
                rd = run(cmd, self.ws, self.env)
                most, who = self.monitor.end_window()
                f2 = who if most > 1 else []
            finally:
                if bg.poll() is None:
                    bg.send_signal(signal.SIGTERM)   # roar forwards it to sleep, records, detaches
                try:
                    bg.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    bg.kill()
                    bg.wait()
            self.checks.after_job(f"(e) background job, round {i + 1}")
            ra, _, f3 = self.measure(cmd, self.ws)
            return {"nothing_attached": rb.own_s, "during_job": rd.own_s, "after_job": ra.own_s,
                    "nothing_attached_cpu": rb.cpu_s, "during_job_cpu": rd.cpu_s, "after_job_cpu": ra.cpu_s,
                    }, f1 + f2 + f3

        rounds = self.rounds("(e) dd untraced", body, lambda v: (
            f"nothing attached {fmt_s(v['nothing_attached'])}, during a roar job {fmt_s(v['during_job'])}, "
            f"after it {fmt_s(v['after_job'])}"))
        self.results["e"] = summarize(rounds, {"during": ("during_job", "nothing_attached"),
                                               "after": ("after_job", "nothing_attached"),
                                               "during_cpu": ("during_job_cpu", "nothing_attached_cpu"),
                                               "after_cpu": ("after_job_cpu", "nothing_attached_cpu")})

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
            "monitor": {"enabled": self.monitor.ok, "samples": self.monitor.samples},
        }

    def cleanup(self) -> None:
        self.monitor.stop()
        if self.args.keep:
            log(f"kept {self.base}")
        else:
            shutil.rmtree(self.base, ignore_errors=True)


def summarize(rounds: list[dict], ratios: dict[str, tuple[str, str]]) -> dict:
    """Medians over the clean rounds; each ratio is the median of the per-round
    ratios (paired, so drift cancels). A value no clean round has (the single
    strace run, say) is taken from every round that has it."""
    clean = [r["values"] for r in rounds if not r["foreign_job_attached"]]
    allv = [r["values"] for r in rounds]

    def having(*keys: str) -> list[dict]:
        ok = [v for v in clean if all(v.get(k) is not None for k in keys)]
        return ok or [v for v in allv if all(v.get(k) is not None for k in keys)]

    keys = sorted({k for v in allv for k in v})
    out: dict = {"rounds": rounds, "clean_rounds": len(clean),
                 "median": {k: median([v[k] for v in having(k)]) for k in keys}, "ratio": {},
                 "ratio_of_minima": {}}
    for name, (num, den) in ratios.items():
        use = [v for v in having(num, den) if v[den]]
        if use:
            out["ratio"][name] = median([v[num] / v[den] for v in use])
            # the least disturbed runs: noise from other processes only ever adds time
            out["ratio_of_minima"][name] = min(v[num] for v in use) / min(v[den] for v in use)
    # every traced run counts for events, drops and memory, used or not
    if any("t_dropped" in v for v in allv):
        out["events"] = [v["t_events"] for v in allv if "t_events" in v]
        out["dropped_total"] = sum(v["t_dropped"] for v in allv if "t_dropped" in v)
    if any("t_rss_kb" in v for v in allv):
        out["rss_max_mb"] = max(v["t_rss_kb"] for v in allv if "t_rss_kb" in v) / 1024
    return out


def dd_cmd() -> list[str]:
    return ["dd", "if=/dev/zero", "of=/dev/null", "bs=4k", f"count={DD_COUNT}"]


def generate_build(d: Path) -> None:
    """BUILD_FILES small C files + main.c, and a Makefile with a clean target."""
    src = d / "src"
    src.mkdir(parents=True)
    for i in range(BUILD_FILES):
        lines = ["#include <math.h>", "#include <stdio.h>", "#include <stdlib.h>", "#include <string.h>", ""]
        for j in range(BUILD_FUNCS):
            lines += [f"static double work_{j}(const double *v, size_t n, int k)", "{",
                      "\tdouble acc = 0;",
                      "\tfor (size_t i = 0; i < n; i++) {",
                      f"\t\tdouble x = v[i] * {j + 1}.0 + k;",
                      f"\t\tacc += (i % {j + 2} ? sin(x) : sqrt(fabs(x))) / (1.0 + acc * acc);",
                      "\t}", "\treturn acc;", "}", ""]
        lines += [f"double unit_{i}(int k)", "{", "\tdouble v[64], acc = 0;", "\tchar buf[64];",
                  "\tfor (int i = 0; i < 64; i++)", "\t\tv[i] = i * 0.5 + k;"]
        lines += [f"\tacc += work_{j}(v, 64, k);" for j in range(BUILD_FUNCS)]
        lines += ['\tsnprintf(buf, sizeof buf, "%d", (int)acc);', "\treturn acc + strlen(buf);", "}", ""]
        (src / f"u{i:02d}.c").write_text("\n".join(lines))
    main = (["#include <stdio.h>"] + [f"double unit_{i}(int);" for i in range(BUILD_FILES)]
            + ["int main(void)", "{", "\tdouble s = 0;"]
            + [f"\ts += unit_{i}(1);" for i in range(BUILD_FILES)]
            + ['\tprintf("%f\\n", s);', "\treturn 0;", "}", ""])
    (src / "main.c").write_text("\n".join(main))
    (d / "Makefile").write_text(
        "CC = gcc\nCFLAGS = -O2\nSRCS = $(wildcard src/*.c)\nOBJS = $(SRCS:.c=.o)\n\n"
        "prog: $(OBJS)\n\t$(CC) -o $@ $(OBJS) -lm\n\n"
        "src/%.o: src/%.c\n\t$(CC) $(CFLAGS) -c -o $@ $<\n\n"
        "clean:\n\trm -f prog $(OBJS)\n")


# --------------------------------------------------------------------------- report

def fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x * 1000:.0f} ms" if abs(x) < 10 else f"{x:.1f} s"


def fmt_x(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("ok" if ok else "MISSED")


HEADER = ("figure", "untraced", "roar", "ratio", "min/min", "target", "", "strace -f")


def _workload_rows(res: dict) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []

    def row(name: str, s: dict, kind: str, target: float | None = None) -> None:
        med, r, rmin = s["median"], s["ratio"].get(kind), s["ratio_of_minima"].get(kind)
        ok = None if target is None or r is None else r <= target
        # the strace'd workload's CPU time leaves out strace's own: not comparable
        st = s["ratio"].get(f"strace_{kind}") if kind != "cpu" else None
        n_st = sum(1 for x in s["rounds"] if "s_own" in x["values"])
        rows.append((name, fmt_s(med.get(f"u_{kind}")), fmt_s(med.get(f"t_{kind}")), fmt_x(r), fmt_x(rmin),
                     f"<= {target}x" if target else "", verdict(ok),
                     f"{fmt_x(st)} ({n_st} run{'s' if n_st > 1 else ''})" if st else ""))

    if "a" in res:
        row(f"(a) {OPEN_LOOPS // 1000}k open+read+close: own time", res["a"], "own", TARGETS["a_own_ratio"])
        row("    own CPU time (user+sys)", res["a"], "cpu")
        row("    whole command, wall", res["a"], "wall")
    if "b" in res:
        row(f"(b) dd {DD_COUNT // 1000}k x 4 KiB: own time", res["b"], "own")
        row("    own CPU time (user+sys)", res["b"], "cpu")
        row("    whole command, wall", res["b"], "wall")
    if "c" in res:
        row(f"(c) make -j2, {BUILD_FILES + 1} C files: wall", res["c"], "wall", TARGETS["c_wall_ratio"])
        row("    make's own time", res["c"], "own")
        row("    make's CPU time (user+sys, all its processes)", res["c"], "cpu")
    return rows


def _fixed_rows(d: dict) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    m = d["median"]
    target = TARGETS["d_fixed_s"]
    for fl in d["flavours"]:
        key = fl["key"]
        fc = m[f"{key}_fixed"]
        name = "(d) fixed cost: roar run -q -- true" if key == "main" else f"(d) same via {fl['label']}"
        fmin = min(r["values"][f"{key}_fixed"] for r in d["rounds"])
        rows.append((name, fmt_s(m["true"]), fmt_s(m[f"{key}_run_true"]), f"+{fmt_s(fc)}", f"+{fmt_s(fmin)}",
                     f"<= {target} s", verdict(fc <= target), ""))
        rows.append(("    CPU time (user+sys, rusage)", fmt_s(m["true_cpu"]), fmt_s(m[f"{key}_run_true_cpu"]),
                     f"+{fmt_s(m[f'{key}_fixed_cpu'])}", "", "", "", ""))
        if f"{key}_interpreter" in m:
            interp = fmt_s(m[f"{key}_interpreter"])
            rows.append(("    its interpreter alone (-c pass)", "", interp, "", "", "", "", ""))
        rows.append(("    its roar --version", "", fmt_s(m[f"{key}_version"]), "", "", "", "", ""))
    return rows


def _background_rows(e: dict) -> list[tuple[str, ...]]:
    m, r, rm = e["median"], e["ratio"], e["ratio_of_minima"]
    base, base_cpu = fmt_s(m["nothing_attached"]), fmt_s(m["nothing_attached_cpu"])
    after_ok = verdict(r["after"] <= TARGETS["e_after_ratio"]) if "after" in r else ""
    return [
        ("(e) dd untraced, while a roar job runs", base, fmt_s(m["during_job"]), fmt_x(r.get("during")),
         fmt_x(rm.get("during")), "", "", ""),
        ("    same, CPU time", base_cpu, fmt_s(m["during_job_cpu"]), fmt_x(r.get("during_cpu")),
         fmt_x(rm.get("during_cpu")), "", "", ""),
        ("    dd untraced, after that job ended", base, fmt_s(m["after_job"]), fmt_x(r.get("after")),
         fmt_x(rm.get("after")), f"~1.0x (<= {TARGETS['e_after_ratio']}x)", after_ok, ""),
        ("    same, CPU time", base_cpu, fmt_s(m["after_job_cpu"]), fmt_x(r.get("after_cpu")),
         fmt_x(rm.get("after_cpu")), "", "", ""),
    ]


def _footer(res: dict) -> list[str]:
    out = []
    for key in ("a", "b"):
        s = res.get(key)
        if s and "dropped_total" in s:
            out.append(f"({key}) events per traced run: {sorted(set(s['events']))}, dropped: "
                       f"{s['dropped_total']} in {len(s['events'])} runs {verdict(s['dropped_total'] == 0)}")
    rss = res.get("a", {}).get("rss_max_mb")
    if rss is not None:
        out.append(f"(a) peak RSS of the roar process: {rss:.1f} MB (max over its traced runs), "
                   f"target <= {TARGETS['a_rss_mb']:.0f} MB {verdict(rss <= TARGETS['a_rss_mb'])}")
    att = res.get("e_attach", {})
    if att and not att["bpftool"]:
        out.append("(e) bpftool not found: attachment not checked")
    elif att:
        stuck = len(att["stuck"])
        out.append(f"(e) roar BPF programs still loaded 3 s after a job ended (bpftool prog show after "
                   f"each of {att['checked_after_jobs'] - 1} jobs and at the end): {stuck} "
                   f"{verdict(stuck == 0)}")
        lingered = att["lingered_then_freed"]
        if lingered:
            worst = max(x["gone_after_s"] for x in lingered)
            linked = sum(1 for x in lingered if x["still_linked_at_first_look"])
            out.append(f"    {len(lingered)} times a program was still listed just after roar exited, "
                       f"held by no process ({linked} times still linked), and freed within {worst:.2f} s")
    used = ", ".join(f"({k}) {res[k]['clean_rounds']}/{len(res[k]['rounds'])}" for k in "dabce" if k in res)
    out.append(f"rounds used (no other roar job attached meanwhile) / run: {used}"
               + ("" if att.get("monitor", {}).get("enabled") else "  [monitor off: not checked]"))
    return out


def table(res: dict, meta: dict) -> str:
    rows = _workload_rows(res)
    if "d" in res:
        rows += _fixed_rows(res["d"])
    if "e" in res:
        rows += _background_rows(res["e"])
    widths = [max(len(x[i]) for x in rows + [HEADER]) for i in range(len(HEADER))]
    out = [f"roar tracer overhead, {meta['date']}, {meta['kernel']}, {meta['cpus']} CPUs; medians of "
           f"{meta['runs']} rounds; ratio = median of per-round traced/untraced, same invocation; "
           "min/min = fastest traced / fastest untraced"]
    out += ["  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)).rstrip() for r in [HEADER] + rows]
    return "\n".join(out + _footer(res))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="rounds per figure, medians reported (default 5)")
    ap.add_argument("--json", metavar="PATH", help="write all samples and figures as JSON")
    ap.add_argument("--no-strace", action="store_true", help="skip the ptrace (strace -f) baseline")
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
        "constants": {"open_loops": OPEN_LOOPS, "dd_count": DD_COUNT, "build_files": BUILD_FILES + 1,
                      "build_funcs_per_file": BUILD_FUNCS},
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
