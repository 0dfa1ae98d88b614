"""Shared test set-up: the `ebpf` and `root` markers and their rule that, in CI
(CI=true or ROAR_REQUIRE_EBPF=1), a real tracer or privilege test that cannot
run is a failure, not a skip.

The rule is enforced on the reports, not by fixtures: a skip can come from a
marker added here, a `skipif` in the module, a `pytest.skip()` in the test or
in a fixture, and every one of them must count. In CI a skip fails when

- the test is marked `ebpf` or `root`, whatever skipped it, or
- its reason says a tool the CI machine must have is missing (bpftool, a C
  compiler, strace): those skips sit on tests that are otherwise unmarked.

An expected failure (xfail) is never turned into a failure here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

REQUIRE_EBPF = os.environ.get("ROAR_REQUIRE_EBPF") == "1" or os.environ.get("CI") == "true"
REQUIRED_MARKERS = ("ebpf", "root", "glaas")   # glaas: its server packages and PostgreSQL
# skip reasons that name a tool the CI machine has by construction (scripts/setup installs them)
REQUIRED_TOOL_SKIP = re.compile(r"\b(bpftool|strace|gcc|cc|C compiler)\b")
CI_SKIP_HEADER = "in CI a skipped root/eBPF test, or one skipped for a missing required tool, is a failure"

_refused: list[tuple[str, str]] = []   # (nodeid, skip reason) turned into failures


def ebpf_unavailable() -> str | None:
    """Why the real tracer cannot run here, or None."""
    if os.geteuid() != 0:
        return "not root"
    if not Path("/sys/kernel/btf/vmlinux").exists():
        return "kernel has no BTF"
    from roar.tracer.loader import object_path

    if not object_path().exists():
        return f"BPF object {object_path()} not built (run scripts/setup)"
    return None


def pytest_collection_modifyitems(config, items):
    # a plain skip everywhere: in CI the report hook below turns it into a failure
    reasons = {"ebpf": ebpf_unavailable(), "root": None if os.geteuid() == 0 else "not root"}
    for item in items:
        for marker, reason in reasons.items():
            if reason is not None and marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=f"needs {marker}: {reason}"))
                break


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _must_not_skip(item: pytest.Item, reason: str) -> bool:
    marked = any(item.get_closest_marker(m) for m in REQUIRED_MARKERS)
    return marked or bool(REQUIRED_TOOL_SKIP.search(reason))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # outermost wrapper: sees the report after the skipping plugin has settled skip/xfail
    report = yield
    if REQUIRE_EBPF and report.skipped and not hasattr(report, "wasxfail"):
        reason = _skip_reason(report)
        if _must_not_skip(item, reason):
            report.outcome = "failed"
            report.longrepr = (f"{CI_SKIP_HEADER} (CI=true or ROAR_REQUIRE_EBPF=1): skipped because: "
                               f"{reason} [eBPF: {ebpf_unavailable() or 'ok'}, uid {os.geteuid()}]")
            _refused.append((item.nodeid, reason))
    return report


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _refused:
        terminalreporter.section("skips refused in CI", sep="=", red=True, bold=True)
        terminalreporter.line(CI_SKIP_HEADER + ":")
        for nodeid, reason in _refused:
            terminalreporter.line(f"  {nodeid}: {reason}")


def pytest_sessionfinish(session, exitstatus):
    # the converted reports already fail the run; this keeps it failing should a plugin
    # (or --exitfirst bookkeeping) have counted them as skips
    if _refused and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
