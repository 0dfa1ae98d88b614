"""The provenance context of real traced jobs: packages the job actually used,
and secrets that never reach a record byte."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest

from tests.trace.conftest import roar_run

pytestmark = pytest.mark.ebpf


def test_python_job_shows_the_distribution_it_imported(tmp_path: Path) -> None:
    traced = roar_run([sys.executable, "-c", "import msgpack"], tmp_path)
    dists = {d["name"]: d["version"] for py in traced.record["context"]["packages"]["python"]
             for d in py["distributions"]}
    assert dists["msgpack"] == ".".join(map(str, msgpack.version))


@pytest.mark.skipif(not Path("/var/lib/dpkg/status").exists(), reason="not a dpkg system")
def test_sort_job_shows_coreutils_with_its_version(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("b\na\n")
    traced = roar_run(["/usr/bin/sort", "a"], tmp_path)
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "coreutils"], capture_output=True,
                             text=True, check=True).stdout
    system = {p["name"]: p["version"] for p in traced.record["context"]["packages"]["system"]}
    assert system["coreutils"] == version


def test_secrets_never_reach_a_record_byte(tmp_path: Path) -> None:
    secret = "s3cr3t-value-that-must-not-leak"
    env = {**os.environ, "MY_API_TOKEN": secret, "DB_PASSWORD": secret,
           "MODEL_URL": f"https://user:{secret}@example.com/model"}
    proc = subprocess.run([sys.executable, "-m", "roar", "run", "-q", "--", "true"], cwd=tmp_path, env=env,
                          capture_output=True)
    assert proc.returncode == 0, proc.stderr
    files = [p for p in (tmp_path / ".roar").rglob("*") if p.is_file()]
    assert any(p.suffix == ".msgpack" for p in files)
    for path in files:
        assert secret.encode() not in path.read_bytes(), path
