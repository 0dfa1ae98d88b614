"""Compile bpf/roar.bpf.o and bpf/roar-btf.bpf.o at build time and ship them inside the package.

Nothing is compiled when roar runs: the objects are CO-RE and libbpf relocates
them against the running kernel's BTF at load (roar/tracer/objects.py picks one).
"""

import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
OBJECTS = ("roar.bpf.o", "roar-btf.bpf.o")   # for every kernel, and for 6.2+ (bpf/Makefile)


class BuildWithBpf(build_py):
    def run(self):
        bpf = HERE / "bpf"
        if (bpf / "Makefile").exists():
            subprocess.run(["make", "-C", str(bpf), *OBJECTS], check=True)
            for name in OBJECTS:
                shutil.copy2(bpf / name, HERE / "roar" / "tracer" / name)
        super().run()


class BpfWheel(bdist_wheel):
    # No Python is compiled, but the object is BPF for one architecture (bpf/Makefile
    # ARCH=x86, vmlinux.h from x86_64): pip must not install it anywhere else.
    def get_tag(self):
        return "py3", "none", "linux_x86_64"


setup(cmdclass={"build_py": BuildWithBpf, "bdist_wheel": BpfWheel})
