"""Shared test set-up: the `ebpf` and `root` markers and their rule that, in CI,
a real tracer or privilege test that cannot run is a failure, not a skip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REQUIRE_EBPF = os.environ.get("ROAR_REQUIRE_EBPF") == "1" or os.environ.get("CI") == "true"


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
    reasons = {"ebpf": ebpf_unavailable(), "root": None if os.geteuid() == 0 else "not root"}
    for item in items:
        for marker, reason in reasons.items():
            if reason is None or marker not in item.keywords:
                continue
            if REQUIRE_EBPF:
                item.add_marker(pytest.mark.usefixtures("_required_but_unavailable"))
            else:
                item.add_marker(pytest.mark.skip(reason=f"needs {marker}: {reason}"))
            break


@pytest.fixture
def _required_but_unavailable():
    pytest.fail(f"a root/eBPF test cannot run (eBPF: {ebpf_unavailable() or 'ok'}, "
                f"uid {os.geteuid()}) and CI requires it")
