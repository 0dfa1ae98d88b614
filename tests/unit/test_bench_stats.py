"""The statistics the benchmarks report (scripts/benchlib/stats.py): medians,
same-run ratios, the noise band, and which rounds count."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from benchlib import stats  # noqa: E402


def test_median_skips_missing_samples():
    assert stats.median([3.0, None, 1.0, 2.0]) == 2.0
    assert stats.median([None, None]) is None
    assert stats.median([]) is None


def test_ratio_is_the_median_of_per_round_ratios_not_the_ratio_of_medians():
    # the second round ran while the machine was busy: both variants slowed alike
    rows = [{"t": 2.0, "u": 1.0}, {"t": 6.0, "u": 5.0}, {"t": 3.0, "u": 2.0}]
    assert stats.paired_ratios(rows, "t", "u") == [2.0, 1.2, 1.5]
    assert stats.median(stats.paired_ratios(rows, "t", "u")) == 1.5
    assert stats.median([r["t"] for r in rows]) / stats.median([r["u"] for r in rows]) == 1.5
    rows.append({"t": 10.0, "u": 9.0})
    # 4 rounds: per-round ratios 2.0, 1.2, 1.5, 1.11 -> median 1.35; medians' ratio 4.5/3.5
    assert stats.median(stats.paired_ratios(rows, "t", "u")) == pytest.approx((1.5 + 1.2) / 2)


def test_paired_ratios_skip_rounds_missing_a_side_or_with_a_zero_denominator():
    rows = [{"t": 2.0, "u": 1.0}, {"t": None, "u": 1.0}, {"t": 1.0}, {"t": 1.0, "u": 0.0}]
    assert stats.paired_ratios(rows, "t", "u") == [2.0]


def test_noise_band_is_the_relative_median_absolute_deviation():
    # median 1.0; deviations 0, 0.1, 0.1, 0.3, 0.02 -> median deviation 0.1 -> +-10 %
    assert stats.noise_band([1.0, 1.1, 0.9, 1.3, 0.98]) == pytest.approx(0.1)
    assert stats.noise_band([1.5, 1.5, 1.5]) == 0.0
    # half the samples lie within median +- band, whatever the outliers
    xs = [1.20, 1.22, 1.25, 1.27, 1.30, 1.31, 9.0]
    band = stats.noise_band(xs) * stats.median(xs)
    within = [x for x in xs if abs(x - stats.median(xs)) <= band + 1e-12]
    assert len(within) >= len(xs) / 2
    assert stats.noise_band([1.0]) is None


def test_summary_uses_only_undisturbed_rounds_for_medians_and_ratios():
    rounds = [
        {"values": {"t": 2.0, "u": 1.0}, "disturbed": False},
        {"values": {"t": 30.0, "u": 1.0}, "disturbed": True},
        {"values": {"t": 2.4, "u": 1.2}, "disturbed": False},
        {"values": {"t": 2.2, "u": 1.0, "s": 50.0}, "disturbed": False},
    ]
    s = stats.summarize(rounds, {"roar": ("t", "u"), "strace": ("s", "u")})
    assert s["clean_rounds"] == 3
    assert s["median"]["t"] == 2.2
    assert s["ratio"]["roar"] == pytest.approx(2.0)
    assert s["noise"]["roar"] == pytest.approx(0.0)
    assert s["ratio_of_minima"]["roar"] == pytest.approx(2.0 / 1.0)
    # a value only one round has (one strace run) is taken from that round
    assert s["ratio"]["strace"] == pytest.approx(50.0)


def test_summary_falls_back_to_every_round_when_none_was_undisturbed():
    rounds = [{"values": {"t": 3.0, "u": 1.0}, "disturbed": True},
              {"values": {"t": 5.0, "u": 1.0}, "disturbed": True}]
    s = stats.summarize(rounds, {"roar": ("t", "u")})
    assert s["clean_rounds"] == 0
    assert s["ratio"]["roar"] == pytest.approx(4.0)


def test_abba_order_alternates():
    assert stats.abba(["u", "t", "f"], 0) == ["u", "t", "f"]
    assert stats.abba(["u", "t", "f"], 1) == ["f", "t", "u"]
    assert stats.abba(["u", "t"], 2) == ["u", "t"]


def test_the_floor_attaches_where_roar_does():
    """bpf/floor.bpf.c is the floor for roar's tracepoints only if it has the same ones."""
    import re

    bpf = Path(__file__).resolve().parents[2] / "bpf"

    def tracepoints(name: str) -> set[str]:
        return set(re.findall(r'SEC\("(tp_btf/[a-z_]+)"\)', (bpf / name).read_text()))

    assert tracepoints("floor.bpf.c") == tracepoints("roar.bpf.c")
    assert "tp_btf/sys_exit" in tracepoints("floor.bpf.c")
