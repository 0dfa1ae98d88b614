"""(e) what untraced processes pay: dd untraced with nothing attached, while a
`roar run -- sleep 30` job is attached in the background, and after it ended."""

from __future__ import annotations

import signal
import subprocess
import time

from .. import stats
from ..proc import BenchError, run
from ..report import fmt_s
from . import workloads
from .bpfwatch import ROAR_PROGS, bpf_links_of, children_of

RATIOS = {"during": ("during_job", "nothing_attached"), "after": ("after_job", "nothing_attached"),
          "during_cpu": ("during_job_cpu", "nothing_attached_cpu"),
          "after_cpu": ("after_job_cpu", "nothing_attached_cpu")}


def _during_job(b, cmd: list[str]) -> tuple[object, list[str]]:
    """cmd run untraced while a background roar job is attached (tracking only sleep)."""
    bg = subprocess.Popen(b.tracers.wrap("t", ["sleep", "30"], quiet=False), cwd=b.ws, env=b.env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t0 = time.perf_counter()
        while not (bpf_links_of(bg.pid) >= len(ROAR_PROGS) and children_of(bg.pid)):
            if bg.poll() is not None or time.perf_counter() - t0 > 15:
                raise BenchError("the background `roar run -- sleep 30` did not attach within 15 s")
            time.sleep(0.02)
        time.sleep(0.1)
        b.monitor.start_window(1)
        rd = run(cmd, b.ws, b.env)
        most, who = b.monitor.end_window()
        return rd, who if most > 1 else []
    finally:
        if bg.poll() is None:
            bg.send_signal(signal.SIGTERM)   # roar forwards it to sleep, records, detaches
        try:
            bg.wait(timeout=20)
        except subprocess.TimeoutExpired:
            bg.kill()
            bg.wait()


def bench_background(b) -> dict:
    """b: the Bench."""
    cmd = [str(b.bin / "timeit")] + workloads.dd_cmd()

    def body(i: int, warmup: bool) -> tuple[dict, list[str]]:
        rb, _, f1 = b.measure(cmd, b.ws)
        rd, f2 = _during_job(b, cmd)
        b.checks.after_job(f"(e) background job, round {i + 1}")
        ra, _, f3 = b.measure(cmd, b.ws)
        return {"nothing_attached": rb.own_s, "during_job": rd.own_s, "after_job": ra.own_s,
                "nothing_attached_cpu": rb.cpu_s, "during_job_cpu": rd.cpu_s, "after_job_cpu": ra.cpu_s,
                }, f1 + f2 + f3

    rounds = b.rounds("(e) dd untraced", body, lambda v: (
        f"nothing attached {fmt_s(v['nothing_attached'])}, during a roar job {fmt_s(v['during_job'])}, "
        f"after it {fmt_s(v['after_job'])}"))
    return stats.summarize(rounds, RATIOS)
