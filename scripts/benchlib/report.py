"""Plain-text figures and tables: seconds, ratios, noise bands, verdicts."""

from __future__ import annotations

from typing import Sequence


def fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x * 1000:.0f} ms" if abs(x) < 10 else f"{x:.1f} s"


def fmt_x(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def fmt_band(x: float | None) -> str:
    """A noise band (a share of the median) as +-N %."""
    return "" if x is None else f"±{x * 100:.0f}%" if x >= 0.01 else f"±{x * 100:.1f}%"


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("ok" if ok else "MISSED")


def columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns, two spaces apart, trailing blanks cut."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]
