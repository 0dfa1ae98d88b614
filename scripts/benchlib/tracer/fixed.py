"""(d) fixed cost: wall(`roar run -q -- true`) - wall(`true`), next to the
start-up of roar's interpreter alone and of `roar --version`, for the roar
under test and for the same package under scripts/setup's interpreter.

Each job leaves a spare object for the next (roar.tracer.spare), and every run
here starts once that spare is ready (Bench.measure does the same) and the last
job's getenv uprobes have detached in the background, as when jobs are a second or
more apart: a job started sooner waits in the kernel for that detach. A "cold" run
beside it has spares off (ROAR_NO_SPARE=1) and loads its own object."""

from __future__ import annotations

import shlex

from .. import stats
from ..proc import BenchError, run
from ..report import fmt_s
from .bpfwatch import wait_detached, wait_for_spare
from .runners import roar_flavours


def bench_fixed(b) -> dict:
    """b: the Bench. The cases run in one round, in ABBA order."""
    flavours = roar_flavours(b.roar, b.roar_path, b.env)
    cases: dict[str, list[str]] = {"true": ["true"]}
    envs: dict[str, dict[str, str]] = {"true": b.env}
    for key, _, roar, interp, env in flavours:
        cases[f"{key}_run_true"] = roar + ["run", "-q", "--", "true"]
        if key == "main":
            cases["main_run_true_cold"] = roar + ["run", "-q", "--", "true"]
            envs["main_run_true_cold"] = {**env, "ROAR_NO_SPARE": "1"}
        cases[f"{key}_version"] = roar + ["--version"]
        if interp:
            cases[f"{key}_interpreter"] = interp
        for k in cases:
            envs.setdefault(k, env)

    def body(i: int, warmup: bool) -> tuple[dict, list[str]]:
        v: dict = {}
        foreign: list[str] = []
        for k in stats.abba(list(cases), i):
            traced = k.endswith(("_run_true", "_run_true_cold"))
            before = b.jobs()
            b.monitor.start_window(int(traced))
            r = run(cases[k], b.ws, envs[k])
            most, who = b.monitor.end_window()
            foreign += who if most > traced else []
            if traced:
                b.spares_ready += b.spares and wait_for_spare()   # the next run starts with one ready
                if b.checks.enabled:
                    wait_detached()    # and not while the kernel detaches this job's uprobes
                b.checks.after_job(f"(d) {k}, round {i + 1}")
                if len(b.jobs() - before) != 1:
                    raise BenchError(f"`{shlex.join(cases[k])}` recorded no job in {b.ws}")
            v[k], v[f"{k}_cpu"] = r.wall_s, r.rusage_cpu_s
        for key in [key for key, *_ in flavours] + ["main_cold"]:
            run_true = "main_run_true_cold" if key == "main_cold" else f"{key}_run_true"
            v[f"{key}_fixed"] = v[run_true] - v["true"]
            v[f"{key}_fixed_cpu"] = v[f"{run_true}_cpu"] - v["true_cpu"]
        return v, foreign

    rounds = b.rounds("(d) fixed cost", body, lambda v: ", ".join(
        f"{key}: roar run true - true = {fmt_s(v[f'{key}_fixed'])}" for key, *_ in flavours))
    res = stats.summarize(rounds, {})
    res["commands"] = {k: shlex.join(v) for k, v in cases.items()}
    res["flavours"] = [{"key": k, "label": label, "PYTHONPATH": env.get("PYTHONPATH")}
                       for k, label, _, _, env in flavours]
    return res
