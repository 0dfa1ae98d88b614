"""(d) fixed cost: wall(`roar run -q -- true`) - wall(`true`), next to the
start-up of roar's interpreter alone and of `roar --version`, for the roar
under test and for the same package under scripts/setup's interpreter."""

from __future__ import annotations

import shlex

from .. import stats
from ..proc import BenchError, run
from ..report import fmt_s
from .runners import roar_flavours


def bench_fixed(b) -> dict:
    """b: the Bench. The cases run in one round, in ABBA order."""
    flavours = roar_flavours(b.roar, b.roar_path, b.env)
    cases: dict[str, list[str]] = {"true": ["true"]}
    envs: dict[str, dict[str, str]] = {"true": b.env}
    for key, _, roar, interp, env in flavours:
        cases[f"{key}_run_true"] = roar + ["run", "-q", "--", "true"]
        cases[f"{key}_version"] = roar + ["--version"]
        if interp:
            cases[f"{key}_interpreter"] = interp
        for k in cases:
            envs.setdefault(k, env)

    def body(i: int, warmup: bool) -> tuple[dict, list[str]]:
        v: dict = {}
        foreign: list[str] = []
        for k in stats.abba(list(cases), i):
            traced = k.endswith("_run_true")
            before = b.jobs()
            b.monitor.start_window(int(traced))
            r = run(cases[k], b.ws, envs[k])
            most, who = b.monitor.end_window()
            foreign += who if most > traced else []
            if traced:
                b.checks.after_job(f"(d) {k}, round {i + 1}")
                if len(b.jobs() - before) != 1:
                    raise BenchError(f"`{shlex.join(cases[k])}` recorded no job in {b.ws}")
            v[k], v[f"{k}_cpu"] = r.wall_s, r.rusage_cpu_s
        for key, *_ in flavours:
            v[f"{key}_fixed"] = v[f"{key}_run_true"] - v["true"]
            v[f"{key}_fixed_cpu"] = v[f"{key}_run_true_cpu"] - v["true_cpu"]
        return v, foreign

    rounds = b.rounds("(d) fixed cost", body, lambda v: ", ".join(
        f"{key}: roar run true - true = {fmt_s(v[f'{key}_fixed'])}" for key, *_ in flavours))
    res = stats.summarize(rounds, {})
    res["commands"] = {k: shlex.join(v) for k, v in cases.items()}
    res["flavours"] = [{"key": k, "label": label, "PYTHONPATH": env.get("PYTHONPATH")}
                       for k, label, _, _, env in flavours]
    return res
