"""The tracer bench's targets and its table: one row per figure, the noise band
of each ratio, the floor's rows under roar's, and the checks below the table."""

from __future__ import annotations

from ..report import columns, fmt_band, fmt_s, fmt_x, verdict
from .workloads import BUILD_FILES, DD_COUNT, OPEN_LOOPS

TARGETS = {
    "a_own_ratio": 1.3,
    "c_wall_ratio": 1.05,
    "d_fixed_s": 0.15,
    "a_rss_mb": 100.0,
    "e_after_ratio": 1.05,   # "should be 1.0x": 5 % allowed for noise
}

# For scale: figures quoted for other tracers on this machine kind, not measured here.
CONTEXT = {
    "best existing eBPF lineage tracer": {
        "a": "2.6x", "c": "1.66x", "d": "2.4 s",
        "e": "40 syscall tracepoints left attached ~1 min after every run, untraced processes up to 1.47x",
    },
    "a ptrace tracer": {"a": "41-125x", "c": "3-6x", "d": "0.3-0.7 s"},
}

HEADER = ("figure", "untraced", "traced", "ratio", "noise", "min/min", "target", "", "strace -f")
FLOOR_LABEL = "    floor (empty programs attached): "


def _row(rows: list, name: str, s: dict, kind: str, target: float | None = None, who: str = "t") -> None:
    """One ratio row: `who` is the traced variant (t: roar, f: the floor)."""
    key = kind if who == "t" else f"floor_{kind}"
    med, r, rmin = s["median"], s["ratio"].get(key), s["ratio_of_minima"].get(key)
    if who == "f" and r is None:
        return   # the floor was not measured
    ok = None if target is None or r is None else r <= target
    # the strace'd workload's CPU time leaves out strace's own: not comparable
    st = s["ratio"].get(f"strace_{kind}") if kind != "cpu" and who == "t" else None
    n_st = sum(1 for x in s["rounds"] if "s_own" in x["values"])
    rows.append((name, fmt_s(med.get(f"u_{kind}")), fmt_s(med.get(f"{who}_{kind}")), fmt_x(r),
                 fmt_band(s["noise"].get(key)), fmt_x(rmin), f"<= {target}x" if target else "", verdict(ok),
                 f"{fmt_x(st)} ({n_st} run{'s' if n_st > 1 else ''})" if st else ""))


def _workload_rows(res: dict) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    if "a" in res:
        a = res["a"]
        _row(rows, f"(a) {OPEN_LOOPS // 1000}k open+read+close: own time", a, "own", TARGETS["a_own_ratio"])
        _row(rows, FLOOR_LABEL + "own time", a, "own", who="f")
        _row(rows, "    own CPU time (user+sys)", a, "cpu")
        _row(rows, "    whole command, wall", a, "wall")
    if "b" in res:
        b = res["b"]
        _row(rows, f"(b) dd {DD_COUNT // 1000}k x 4 KiB: own time", b, "own")
        _row(rows, FLOOR_LABEL + "own time", b, "own", who="f")
        _row(rows, "    own CPU time (user+sys)", b, "cpu")
        _row(rows, "    whole command, wall", b, "wall")
    if "c" in res:
        c = res["c"]
        _row(rows, f"(c) make -j2, {BUILD_FILES + 1} C files: wall", c, "wall", TARGETS["c_wall_ratio"])
        _row(rows, FLOOR_LABEL + "wall", c, "wall", who="f")
        _row(rows, "    make's own time", c, "own")
        _row(rows, FLOOR_LABEL + "make's own time", c, "own", who="f")
        _row(rows, "    make's CPU time (user+sys, all its processes)", c, "cpu")
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
        rows.append((name, fmt_s(m["true"]), fmt_s(m[f"{key}_run_true"]), f"+{fmt_s(fc)}", "",
                     f"+{fmt_s(fmin)}", f"<= {target} s", verdict(fc <= target), ""))
        rows.append(("    CPU time (user+sys, rusage)", fmt_s(m["true_cpu"]), fmt_s(m[f"{key}_run_true_cpu"]),
                     f"+{fmt_s(m[f'{key}_fixed_cpu'])}", "", "", "", "", ""))
        if f"{key}_interpreter" in m:
            interp = fmt_s(m[f"{key}_interpreter"])
            rows.append(("    its interpreter alone (-c pass)", "", interp, "", "", "", "", "", ""))
        rows.append(("    its roar --version", "", fmt_s(m[f"{key}_version"]), "", "", "", "", "", ""))
        if key == "main" and "main_cold_fixed" in m:
            cold = m["main_cold_fixed"]
            rows.append(("    cold: no spare object (ROAR_NO_SPARE=1)", fmt_s(m["true"]),
                         fmt_s(m["main_run_true_cold"]), f"+{fmt_s(cold)}", "", "", "", "", ""))
    return rows


def _background_rows(e: dict) -> list[tuple[str, ...]]:
    m, r, rm, nb = e["median"], e["ratio"], e["ratio_of_minima"], e["noise"]
    base, base_cpu = fmt_s(m["nothing_attached"]), fmt_s(m["nothing_attached_cpu"])
    after_ok = verdict(r["after"] <= TARGETS["e_after_ratio"]) if "after" in r else ""

    def row(name: str, base: str, key: str, ratio: str, target: str = "", ok: str = "") -> tuple[str, ...]:
        return (name, base, fmt_s(m[key]), fmt_x(r.get(ratio)), fmt_band(nb.get(ratio)), fmt_x(rm.get(ratio)),
                target, ok, "")

    return [
        row("(e) dd untraced, while a roar job runs", base, "during_job", "during"),
        row("    same, CPU time", base_cpu, "during_job_cpu", "during_cpu"),
        row("    dd untraced, after that job ended", base, "after_job", "after",
            f"~1.0x (<= {TARGETS['e_after_ratio']}x)", after_ok),
        row("    same, CPU time", base_cpu, "after_job_cpu", "after_cpu"),
    ]


def _with_band(s: dict, name: str) -> str:
    return f"{fmt_x(s['ratio'].get(name))} {fmt_band(s['noise'].get(name))}".rstrip()


def _floor_lines(res: dict) -> list[str]:
    """Roar next to the floor, per workload: both ratios, and roar over the floor (paired per round)."""
    out = []
    for key, kind in (("a", "own"), ("b", "own"), ("c", "own")):
        s = res.get(key)
        if not s or s["ratio"].get("floor_own") is None:
            continue
        out.append(f"({key}) own time: roar {_with_band(s, kind)}, floor {_with_band(s, 'floor_own')}; "
                   f"roar over the floor, per round: {_with_band(s, 'over_floor_own')}")
    return out


def _attach_lines(att: dict) -> list[str]:
    if not att:
        return []
    if not att["bpftool"]:
        return ["(e) bpftool not found: attachment not checked"]
    stuck = len(att["stuck"])
    out = [f"(e) roar BPF programs still loaded 3 s after a job ended (bpftool prog show after "
           f"each of {att['checked_after_jobs'] - 1} jobs and at the end): {stuck} {verdict(stuck == 0)}"]
    lingered = att["lingered_then_freed"]
    if lingered:
        worst = max(x["gone_after_s"] for x in lingered)
        linked = sum(1 for x in lingered if x["still_linked_at_first_look"])
        out.append(f"    {len(lingered)} times a program was still listed just after roar exited, "
                   f"held by no process ({linked} times still linked), and freed within {worst:.2f} s")
    if "spares" in att:
        out.append(f"    spares: {'on' if att['spares'] else 'off (ROAR_NO_SPARE)'}; a spare was ready "
                   f"within 3 s after {att['spares_ready_after_jobs']} jobs, and each measured run "
                   "started only then")
    if "spare_held" in att:
        bad = len(att["spare_linked"])
        out.append(f"    after {att['spare_held']} of the checks roar's spare held the next job's object, "
                   f"loaded, not attached; times any of its programs was attached: {bad} {verdict(bad == 0)}")
    return out


def _footer(res: dict) -> list[str]:
    out = _floor_lines(res)
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
    out += _attach_lines(att)
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
    out = [f"roar tracer overhead, {meta['date']}, {meta['kernel']}, {meta['cpus']} CPUs; medians of "
           f"{meta['runs']} rounds; ratio = median of per-round traced/untraced, same invocation; "
           "noise = half the rounds' ratios lie within ratio x (1 +- noise); "
           "min/min = fastest traced / fastest untraced"]
    return "\n".join(out + columns(HEADER, rows) + _footer(res))
