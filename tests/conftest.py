"""Shared test set-up: the `ebpf` marker and its rule that, in CI, a real
tracer test that cannot run is a failure, not a skip."""

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
    reason = ebpf_unavailable()
    if reason is None:
        return
    for item in items:
        if "ebpf" in item.keywords:
            if REQUIRE_EBPF:
                item.add_marker(pytest.mark.usefixtures("_ebpf_required_but_unavailable"))
            else:
                item.add_marker(pytest.mark.skip(reason=f"real eBPF tracer unavailable: {reason}"))


@pytest.fixture
def _ebpf_required_but_unavailable():
    pytest.fail(f"eBPF test cannot run ({ebpf_unavailable()}) and CI requires it")
