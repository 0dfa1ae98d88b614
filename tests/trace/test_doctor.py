"""`roar doctor` tells whether tracing works here: exit 0 only when `roar run` would,
otherwise the code `roar run` would exit with, and each failing check's fix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.trace.conftest import roar

pytestmark = pytest.mark.ebpf


def test_doctor_as_root_loads_and_attaches(tmp_path: Path) -> None:
    proc = roar("doctor", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout
    report = json.loads(proc.stdout)
    assert report["ok"] is True
    checks = {c["name"]: c for c in report["checks"]}
    from roar.tracer.envread import libc_paths

    links = 4 + 2 * len(libc_paths())   # the tracepoints, and the getenv uprobes on each libc
    assert checks["load and attach"]["ok"] is True and f"{links} programs" in checks["load and attach"]["found"]
    assert all(c["ok"] is not False for c in report["checks"])
    assert not (tmp_path / ".roar").exists()    # it touches no workspace


def test_doctor_without_privileges_says_what_to_do(tmp_path: Path) -> None:
    proc = subprocess.run(["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups",
                           sys.executable, "-m", "roar", "doctor"], cwd="/", capture_output=True, text=True)
    assert proc.returncode == 121, proc.stdout + proc.stderr
    assert "FAIL  privileges" in proc.stdout and "fix: run it as `sudo roar run ...`" in proc.stdout
    assert "load and attach" not in proc.stdout     # not tried when a check already failed
    assert proc.stdout.strip().endswith("roar run will not work here: 1 check failed")
