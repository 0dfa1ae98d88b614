"""What is attached: roar programs left loaded after a job (bpftool), who holds
them (/proc), and a process's BPF links and children."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time

ROAR_PROGS = ("on_sys_exit", "on_fork", "on_exec", "on_exit")

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


SPARE_SOCKET = "/run/roar/spare.sock"


def spare_bound() -> bool:
    """Whether roar's spare has loaded its object and waits (its socket is bound: a spare
    killed leaves the file, not the entry in /proc/net/unix)."""
    try:
        with open("/proc/net/unix") as f:
            return any(line.rstrip().endswith(" " + SPARE_SOCKET) for line in f)
    except OSError:
        return False


def wait_for_spare(timeout_s: float = 3.0) -> bool:
    """After a job: until the spare it started is ready, so that no measured run shares the
    CPUs with the spare's load. False if none came (spares off, or none could load)."""
    deadline = time.monotonic() + timeout_s
    while not spare_bound():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


UPROBE_PROGS = ("on_getenv", "on_getenv_ret")


def wait_detached(timeout_s: float = 3.0) -> bool:
    """Until no link attaches roar's getenv uprobes: a job's probes detach in a background
    process a grace period or two after it (roar.tracer.detach), and a job started meanwhile
    waits for that in the kernel when it opens its own."""
    deadline = time.monotonic() + timeout_s
    while True:
        progs = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True)
        try:
            ids = {p["id"] for p in json.loads(progs.stdout or "[]") if p.get("name") in UPROBE_PROGS}
        except ValueError:
            return False
        if not ids & linked_prog_ids():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def _is_spare(pid: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"roar.tracer.spare" in f.read().split(b"\0")
    except OSError:
        return False


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
        self.spare_held = 0               # checks that found roar's spare holding an object
        self.spare_linked: list[dict] = []   # the spare's programs attached: must never be

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
        # roar's spare (roar.tracer.spare) holds the next job's object, loaded and never attached
        spare = {i for i, who in holders.items() if all(_is_spare(w.split()[0]) for w in who)}
        if spare:
            self.spare_held += 1
            if spare & linked:
                self.spare_linked.append({"after": label, "programs": sorted(spare & linked)})
        holders = {i: who for i, who in holders.items() if i not in spare}
        progs = [x for x in progs if x["id"] not in spare]
        if not progs:
            self.clean_at_once += 1
            return
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

