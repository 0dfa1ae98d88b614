"""Numbers no SQLite INTEGER can hold, typed where roar takes a step, a session number or
a count, are a usage error (exit 2) saying so, never an internal error (OverflowError)."""

from __future__ import annotations

import pytest

from tests.security.conftest import one_line_error, roar

pytestmark = pytest.mark.root

HUGE = "99999999999999999999"          # 10**20 - 1: more than 2**63 - 1
ENORMOUS = "1" * 5000                  # more digits than int() converts

TOO_LARGE = [   # (arguments, what the one-line error says)
    (["show", f"@{HUGE}"], f"@{HUGE} is too large"),
    (["show", f"@B{HUGE}"], f"@B{HUGE} is too large"),
    (["show", "@9223372036854775808"], "is too large"),            # 2**63: one past the largest
    (["show", f"@{ENORMOUS}"], "is too large"),
    (["show", f"session:{HUGE}"], f"session:{HUGE} is too large"),
    (["show", f"session:{ENORMOUS}"], "is too large"),
    (["dag", "--session", HUGE], f"session:{HUGE} is too large"),
    (["label", "set", f"@{HUGE}", "k=v"], "is too large"),
    (["label", "show", f"session:{HUGE}"], "is too large"),
    (["log", "-n", HUGE], "--count is too large"),
    (["log", "--count", "9223372036854775808"], "--count is too large"),
    (["log", "-n", "-1"], "--count -1: give how many jobs to list, or 0 for all"),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A workspace with one real traced job."""
    ws = tmp_path_factory.mktemp("ws")
    done = roar("run", "-q", "--", "sh", "-c", "echo hi > out", cwd=ws)
    assert done.returncode == 0, done.stderr
    return ws


@pytest.mark.parametrize("args, message", TOO_LARGE, ids=[" ".join(a)[:40] for a, _ in TOO_LARGE])
def test_a_number_too_large_is_a_usage_error(workspace, args, message):
    proc = roar(*args, cwd=workspace)
    line = one_line_error(proc)
    assert proc.returncode == 2, line
    assert message in line and "internal error" not in line
    assert len(line) < 300, line      # the 5000 digits are not echoed back


@pytest.mark.parametrize("ref, code", [
    ("@²", 3),                        # a digit to str.isdigit(), not to int(): not a step reference
    ("session:²", 3),
    (HUGE, 3),                        # all digits, no @: a uid or hash prefix matching nothing
    ("@9223372036854775807", 3),      # the largest step SQLite holds: looked up, not there
    ("session:9223372036854775807", 3),
])
def test_the_largest_number_and_odd_digits_are_looked_up_not_crashed_on(workspace, ref, code):
    proc = roar("show", ref, cwd=workspace)
    line = one_line_error(proc)
    assert proc.returncode == code, line
    assert "internal error" not in line


def test_plain_numbers_still_work(workspace):
    assert roar("show", "@1", cwd=workspace).returncode == 0
    assert roar("show", "session:1", cwd=workspace).returncode == 0
    assert roar("show", "@0001", cwd=workspace).returncode == 0     # leading zeros are the same step
    assert roar("log", "-n", "0", cwd=workspace).returncode == 0
    assert roar("log", "-n", "9223372036854775807", cwd=workspace).returncode == 0
