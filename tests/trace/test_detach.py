"""Nothing of roar's stays attached once a job is over, checked while the
process that attached is still alive (after it exits the kernel frees its
links anyway, so a check then proves nothing), and processes outside the job
pay no syscall tax after it. Real tracer, as root.

Other tests may trace at the same time on this machine, so programs are
identified by the links this process held, never by name alone."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import pytest

from tests.trace.conftest import bpftool, held_links, linked

pytestmark = [pytest.mark.ebpf, pytest.mark.skipif(shutil.which("bpftool") is None,
                                                    reason="bpftool is not installed")]

GETENV_PROGRAMS = {"on_getenv", "on_getenv_ret"}
ROAR_PROGRAMS = {"on_sys_exit", "on_fork", "on_exec", "on_exit", *GETENV_PROGRAMS}
# an attached tracer costs the workload below about 1.3x its CPU time (a 2-core VM); medians of
# runs without one agree within a few per cent
TAX_LIMIT = 1.15


def loaded(prog_ids: set[int], settle_s: float = 5.0) -> set[int]:
    """Those of prog_ids still loaded; the kernel frees a released program after an RCU
    grace period, so give it settle_s."""
    deadline = time.monotonic() + settle_s
    while True:
        left = prog_ids & {prog["id"] for prog in bpftool("prog", "show")}
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def unlinked_soon(prog_ids: set[int], settle_s: float = 3.0) -> set[int]:
    """Those of prog_ids still linked. The tracepoints are unlinked by the time run_job returns;
    the getenv uprobes each wait for a kernel grace period in roar's background detacher
    (roar.tracer.detach), so those are given settle_s."""
    names = {p["id"]: p.get("name") for p in bpftool("prog", "show")}
    tracepoints = {p for p in prog_ids if names.get(p) not in GETENV_PROGRAMS}
    assert linked(tracepoints) == set(), "roar's tracepoints are still linked after the job"
    deadline = time.monotonic() + settle_s
    while (left := linked(prog_ids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def foreign_roar_links(ours: set[int]) -> set[int]:
    """Links of roar's programs that are not ours: another job tracing right now."""
    names = {p["id"]: p.get("name") for p in bpftool("prog", "show")}
    return {link["id"] for link in bpftool("link", "show")
            if names.get(link["prog_id"]) in ROAR_PROGRAMS and link["prog_id"] not in ours}


def open_tracer():
    """A Tracer attached by this process, and the ids of the programs its links attach."""
    from roar.tracer.loader import Tracer, preflight

    preflight()
    before = set(held_links())
    tracer = Tracer(lambda _event: None)
    progs = {prog for link, prog in held_links().items() if link not in before}
    assert {p["name"] for p in bpftool("prog", "show") if p["id"] in progs} == ROAR_PROGRAMS
    return tracer, progs


def test_close_detaches_while_the_process_lives() -> None:
    tracer, progs = open_tracer()
    assert linked(progs) == progs
    tracer.close()
    assert progs.isdisjoint(held_links().values())
    assert linked(progs) == set(), "roar's programs are still linked after Tracer.close()"
    assert loaded(progs) == set(), "roar's programs are still loaded after Tracer.close()"


def test_a_leaked_link_is_seen() -> None:
    """The checks above can fail: a Tracer kept open is reported by each of them."""
    tracer, progs = open_tracer()
    try:
        assert set(held_links().values()) >= progs
        assert linked(progs) == progs
        assert loaded(progs, settle_s=0) == progs
    finally:
        tracer.close()


@pytest.fixture
def job_programs(monkeypatch) -> set[int]:
    """Filled with the programs of every Tracer this process makes from now on."""
    from roar.tracer import loader

    progs: set[int] = set()
    attach = loader.Tracer._attach

    def recording_attach(self) -> None:
        before = set(held_links())
        attach(self)
        progs.update(prog for link, prog in held_links().items() if link not in before)

    monkeypatch.setattr(loader.Tracer, "_attach", recording_attach)
    return progs


@pytest.fixture(scope="module")
def workload(tmp_path_factory) -> list[str]:
    """A process outside every job that makes 1,000,000 getppid calls: the cheapest syscall,
    so the fixed cost an attached program adds to each is the largest share of its time."""
    src = tmp_path_factory.mktemp("tax") / "syscalls.c"
    src.write_text("#include <unistd.h>\n#include <sys/syscall.h>\n"
                   "int main(void) { for (int i = 0; i < 1000000; i++) syscall(SYS_getppid); return 0; }\n")
    subprocess.run(["cc", "-O1", "-o", str(src.with_suffix("")), str(src)], check=True)
    return [str(src.with_suffix(""))]


def cpu_median(cmd: list[str], ours: set[int], runs: int = 7) -> float:
    """Median CPU time (user + system) of cmd, over runs taken while no other job was tracing."""
    times: list[float] = []
    for _ in range(runs * 4):
        if len(times) == runs:
            break
        busy = foreign_roar_links(ours)
        proc = subprocess.Popen(cmd)
        _, status, usage = os.wait4(proc.pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        if not busy and not foreign_roar_links(ours):   # another job's programs tax everyone: drop it
            times.append(usage.ru_utime + usage.ru_stime)
    if len(times) < 3:
        pytest.fail(f"other jobs traced throughout; only {len(times)} clean samples")
    return statistics.median(times)


def test_run_job_leaves_nothing_attached_and_no_tax(tmp_path: Path, monkeypatch, job_programs: set[int],
                                                    workload: list[str]) -> None:
    """A whole `roar run` job in this process: afterwards none of its programs is
    linked, and an untraced process runs as fast as before the job. The same
    measure taken while a Tracer is attached shows the tax it would catch."""
    from roar.runner import RunOptions, run_job

    monkeypatch.chdir(tmp_path)
    before = cpu_median(workload, set())
    result = run_job(["sh", "-c", "echo x > out"], RunOptions())
    assert result.exit_code == 0 and [Path(o["path"]).name for o in result.record["outputs"]] == ["out"]
    assert len(job_programs) == len(ROAR_PROGRAMS)
    assert unlinked_soon(job_programs) == set(), "roar's programs are still linked after the job"
    after = cpu_median(workload, job_programs)
    tracer, progs = open_tracer()
    try:
        attached = cpu_median(workload, job_programs | progs)
    finally:
        tracer.close()
    assert attached > before * TAX_LIMIT, (
        f"the measure cannot see an attached tracer ({attached:.4f}s vs {before:.4f}s)")
    assert after < before * TAX_LIMIT, (
        f"untraced work costs {after / before:.2f}x after the job; still linked: {linked(job_programs)}")
