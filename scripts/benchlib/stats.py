"""Medians, same-run ratios and the noise band of a benchmark's rounds.

A round is {"values": {name: seconds or None}, "disturbed": bool}: one run of
each variant, back to back. On a shared machine a ratio taken within a round
cancels most of what other processes do to both variants; the figure is the
median of those per-round ratios, not the ratio of two medians.
"""

from __future__ import annotations

import statistics
import time
from typing import Iterable, Sequence, TypeVar

T = TypeVar("T")


def median(xs: Iterable[float | None]) -> float | None:
    """The median of the samples present (None: a run that gave no figure)."""
    present = [x for x in xs if x is not None]
    return statistics.median(present) if present else None


def abba(variants: Sequence[T], i: int) -> list[T]:
    """The order of round i: as given, then reversed, so drift over a round
    weighs on every variant alike."""
    return list(variants) if i % 2 == 0 else list(variants)[::-1]


def paired_ratios(rows: Iterable[dict], num: str, den: str) -> list[float]:
    """num/den within each row that has both (and a non-zero den)."""
    return [v[num] / v[den] for v in rows if v.get(num) is not None and v.get(den)]


def noise_band(xs: Sequence[float]) -> float | None:
    """The median absolute deviation from the median, as a share of the median:
    half the samples lie within median x (1 +- band). Robust to the one round
    a burst of load hit. None for fewer than two samples."""
    if len(xs) < 2:
        return None
    mid = statistics.median(xs)
    return statistics.median(abs(x - mid) for x in xs) / mid if mid else None


def summarize(rounds: list[dict], ratios: dict[str, tuple[str, str]]) -> dict:
    """Medians over the undisturbed rounds, and for each ratio (name -> (num, den))
    the median of the per-round ratios, its noise band, and the ratio of the
    fastest runs (noise from other processes only ever adds time). A value no
    undisturbed round has (a single slow baseline run, say) is taken from every
    round that has it; so is everything when every round was disturbed."""
    clean = [r["values"] for r in rounds if not r["disturbed"]]
    allv = [r["values"] for r in rounds]

    def having(*keys: str) -> list[dict]:
        def ok(vs: list[dict]) -> list[dict]:
            return [v for v in vs if all(v.get(k) is not None for k in keys)]
        return ok(clean) or ok(allv)

    keys = sorted({k for v in allv for k in v})
    out: dict = {"rounds": rounds, "clean_rounds": len(clean),
                 "median": {k: median(v[k] for v in having(k)) for k in keys},
                 "ratio": {}, "noise": {}, "ratio_of_minima": {}}
    for name, (num, den) in ratios.items():
        use = [v for v in having(num, den) if v[den]]
        if not use:
            continue
        per_round = paired_ratios(use, num, den)
        out["ratio"][name] = median(per_round)
        out["noise"][name] = noise_band(per_round)
        out["ratio_of_minima"][name] = min(v[num] for v in use) / min(v[den] for v in use)
    return out


def rounds(n: int, body, *, deadline: float, on_round=None) -> list[dict]:
    """A discarded warm-up round (body(0, True)), then rounds body(i, False) ->
    (values, what disturbed it) until n undisturbed ones, at most 2n; past
    `deadline` (time.time()) a disturbed round is not run again."""
    body(0, True)
    out: list[dict] = []
    clean = attempt = 0
    while clean < n and attempt < 2 * n:
        if attempt >= n and time.time() > deadline:
            break
        values, disturbed_by = body(attempt, False)
        out.append({"values": values, "disturbed": bool(disturbed_by), "disturbed_by": disturbed_by})
        attempt += 1
        clean += not disturbed_by
        if on_round:
            on_round(attempt, out[-1])
    return out
