"""`roar --version` names what a bug report needs: roar, the BPF object, libbpf."""

from __future__ import annotations

import re
import subprocess
import sys

import blake3

from roar import __version__
from roar.tracer.loader import object_path


def test_version_names_the_object_and_libbpf(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "roar", "--version"], cwd=tmp_path, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    m = re.fullmatch(r"roar (\S+), BPF object (\S+), (libbpf \d+\.\d+|libbpf not found)\n", proc.stdout)
    assert m, proc.stdout
    assert m[1] == __version__
    expected = blake3.blake3(object_path().read_bytes()).hexdigest()[:16] if object_path().exists() else "missing"
    assert m[2] == expected
