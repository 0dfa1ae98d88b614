"""A wheel built from the tree carries the BPF object; installed into a fresh
venv with no compiler on PATH, it traces a job as root."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import blake3
import pytest

from tests.install import wheelhouse

ROOT = Path(__file__).resolve().parents[2]
OBJECTS = ("roar/tracer/roar.bpf.o", "roar/tracer/roar-btf.bpf.o")   # roar/tracer/objects.py

pytestmark = [pytest.mark.ebpf, pytest.mark.slow]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """roar's wheel, built with `pip wheel --no-deps` from a copy of the tree."""
    work = tmp_path_factory.mktemp("wheel")
    src = wheelhouse.copy_source(ROOT, work / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"),
                    str(src)], check=True, capture_output=True)
    (built,) = (work / "dist").glob("roar-*.whl")
    return built


def test_wheel_carries_the_object_and_names_its_architecture(wheel: Path) -> None:
    # the object is BPF built for x86_64 (bpf/Makefile ARCH, vmlinux.h): not a py3-none-any wheel
    assert wheel.name.endswith("-py3-none-linux_x86_64.whl"), wheel.name
    with zipfile.ZipFile(wheel) as zf:
        for name in OBJECTS:
            carried = zf.read(name)
            assert carried[:4] == b"\x7fELF", name
            assert len(carried) > 10_000, name


def _bare_path(bin_dir: Path) -> str:
    """A PATH with only the few tools the traced job uses: no clang, no make, no cc."""
    bin_dir.mkdir()
    for tool in ("sh", "cat"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    return str(bin_dir)


def test_installed_wheel_traces_a_job_without_a_compiler(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True)
    deps = wheelhouse.dependencies(tmp_path / "wheels")
    path = f"{venv / 'bin'}:{_bare_path(tmp_path / 'bin')}"
    env = {"PATH": path, "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    for tool in ("clang", "cc", "gcc", "make", "llvm-strip"):
        assert shutil.which(tool, path=path) is None, tool
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin/python"), "install", "-q",
                    "--no-index", "--find-links", str(deps), str(wheel)],
                   check=True, capture_output=True, env={**env, "PIP_CONFIG_FILE": os.devnull})

    roar = str(venv / "bin/roar")
    located = subprocess.run([str(venv / "bin/python"), "-c", "import roar; print(roar.__file__)"],
                             capture_output=True, text=True, env=env, check=True, cwd=tmp_path).stdout
    assert located.startswith(str(venv)), located   # the wheel's roar, not the checkout's

    which = "from roar.tracer.loader import object_path; print(object_path().name)"
    loaded = subprocess.run([str(venv / "bin/python"), "-c", which], capture_output=True, text=True, env=env,
                            check=True, cwd=tmp_path).stdout.strip()
    assert f"roar/tracer/{loaded}" in OBJECTS, loaded   # the one this kernel loads
    with zipfile.ZipFile(wheel) as zf:
        object_id = blake3.blake3(zf.read(f"roar/tracer/{loaded}")).hexdigest()[:16]
    version = subprocess.run([roar, "--version"], capture_output=True, text=True, env=env)
    assert f"BPF object {object_id}," in version.stdout, version.stdout + version.stderr

    job = tmp_path / "job"
    job.mkdir()
    (job / "in.txt").write_bytes(b"from the wheel\n")
    run = subprocess.run([roar, "run", "-q", "--", "sh", "-c", "cat in.txt > out.txt"], cwd=job,
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    shown = subprocess.run([roar, "show", "@1", "--json"], cwd=job, capture_output=True, text=True, env=env)
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    inputs = {f["path"]: f["hash"] for f in record["inputs"]}
    outputs = {f["path"]: f["hash"] for f in record["outputs"]}
    expected = blake3.blake3(b"from the wheel\n").hexdigest()
    assert inputs.get(str(job / "in.txt")) == expected
    assert outputs == {str(job / "out.txt"): expected}
