"""Compile bpf/roar.bpf.o at build time and ship it inside the package.

Nothing is compiled when roar runs: the object is CO-RE and libbpf relocates
it against the running kernel's BTF at load.
"""

import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildWithBpf(build_py):
    def run(self):
        bpf = HERE / "bpf"
        if (bpf / "Makefile").exists():
            subprocess.run(["make", "-C", str(bpf), "roar.bpf.o"], check=True)
            shutil.copy2(bpf / "roar.bpf.o", HERE / "roar" / "tracer" / "roar.bpf.o")
        super().run()


class BpfWheel(bdist_wheel):
    # No Python is compiled, but the object is BPF for one architecture (bpf/Makefile
    # ARCH=x86, vmlinux.h from x86_64): pip must not install it anywhere else.
    def get_tag(self):
        return "py3", "none", "linux_x86_64"


setup(cmdclass={"build_py": BuildWithBpf, "bdist_wheel": BpfWheel})
