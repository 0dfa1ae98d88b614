"""docs/exit-codes.md and roar/errors.py must tell the same story."""

from __future__ import annotations

import re
from pathlib import Path

from roar.errors import ALL_ERRORS

DOC = Path(__file__).resolve().parents[2] / "docs" / "exit-codes.md"


def test_every_error_code_is_documented() -> None:
    documented = {int(m) for m in re.findall(r"^\| (\d+) \|", DOC.read_text(), re.M)}
    codes = {cls.exit_code for cls in ALL_ERRORS}
    assert codes <= documented, f"undocumented exit codes: {sorted(codes - documented)}"


def test_codes_are_distinct_per_kind() -> None:
    by_code: dict[int, str] = {}
    for cls in ALL_ERRORS:
        assert by_code.setdefault(cls.exit_code, cls.__name__) == cls.__name__, cls.exit_code
