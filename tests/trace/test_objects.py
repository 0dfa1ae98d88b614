"""Both BPF objects pass the verifier on this kernel: the one for every kernel, and the one
for 6.2+ that roar/tracer/objects.py picks where bpf_rdonly_cast exists. The trace tests
run whichever is picked; tests/trace and tests/security were run with each."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from roar.tracer import libbpf, objects

pytestmark = pytest.mark.ebpf

PROGRAMS = {"on_sys_exit", "on_fork", "on_exec", "on_exit", "on_getenv", "on_getenv_ret"}


def load(path) -> set[str]:
    """Open and load the object (CO-RE relocation and the verifier); its program names."""
    lb = libbpf.lib()
    obj = lb.open_file(str(path).encode(), None)
    if not obj:
        raise libbpf.fail(f"open {path}")
    try:
        rc = lb.load(obj)
        if rc:
            raise libbpf.fail(f"load {path}", rc)
        names, prog = set(), None
        while prog := lb.next_program(obj, prog):
            names.add(lb.program_name(prog).decode())
        return names
    finally:
        lb.close(obj)


def test_the_object_for_every_kernel_loads() -> None:
    assert load(objects.BASE_OBJECT) == PROGRAMS


@pytest.mark.skipif(not objects.has_rdonly_cast(), reason="this kernel has no bpf_rdonly_cast")
def test_the_btf_object_loads_and_is_picked_here() -> None:
    if not objects.BTF_OBJECT.exists():
        pytest.fail(f"{objects.BTF_OBJECT} not built (run scripts/setup)")
    assert load(objects.BTF_OBJECT) == PROGRAMS
    assert objects.pick() == objects.BTF_OBJECT


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_roar_run_loads_the_object_picked(tmp_path) -> None:
    """What `roar run` opens is pick()'s choice, not a fixed name."""
    trace = tmp_path / "openat"
    done = subprocess.run(["strace", "-f", "-qq", "-e", "trace=openat", "-o", str(trace),
                           sys.executable, "-m", "roar", "run", "-q", "--no-hold", "--", "true"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    opened = {line.split('"')[1] for line in trace.read_text().splitlines()
              if '"' in line and line.split('"')[1].endswith(".bpf.o")}
    # the roar that `python -m roar` runs there (the installed one, in CI) is asked what it picks
    picked = subprocess.run([sys.executable, "-c", "from roar.tracer.objects import pick; print(pick())"],
                            cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()
    assert opened == {picked} and picked.endswith(objects.pick().name)
