"""git state is read before the command starts, and the workspace stays out of git:
a clean tree is recorded clean even though the job writes into it, the record says
which paths the job itself changed, and `git add -A` never picks up `.roar/`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.trace.conftest import roar

pytestmark = pytest.mark.ebpf


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q")
    (r / "data.csv").write_text("a,b\n1,2\n")
    git(r, "add", "data.csv")
    git(r, "commit", "-q", "-m", "data")
    return r


def test_a_clean_tree_stays_clean_when_the_job_writes_into_it(repo: Path) -> None:
    proc = roar("run", "--", "sh", "-c", "cat data.csv > out.csv; echo x >> data.csv", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert "dirty" not in proc.stderr.decode(), proc.stderr
    record = json.loads(roar("show", "@1", "--json", cwd=repo).stdout)
    state = record["context"]["git"]
    assert state["dirty"] is False and state["dirty_paths"] == []
    assert state["changed_by_job"] == ["data.csv", "out.csv"]
    # the next job sees the tree the first one left, and says so once
    proc = roar("run", "--", "true", cwd=repo)
    assert proc.stderr.decode().count("dirty") == 1, proc.stderr


def test_the_workspace_is_never_committed(repo: Path) -> None:
    assert roar("run", "-q", "--", "sh", "-c", "echo y > new.txt", cwd=repo).returncode == 0
    assert (repo / ".roar" / ".gitignore").read_text().splitlines()[-1] == "*"
    assert git(repo, "status", "--porcelain").split() == ["??", "new.txt"]
    git(repo, "add", "-A")
    assert ".roar" not in git(repo, "diff", "--cached", "--name-only")


def test_the_dpkg_index_is_cached_per_user_not_per_workspace(repo: Path, tmp_path: Path) -> None:
    cache_home = tmp_path / "xdg-cache"
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    proc = roar("run", "-q", "--", "cat", "/etc/os-release", cwd=repo, env=env)
    assert proc.returncode == 0, proc.stderr
    assert not list((repo / ".roar").rglob("dpkg-index*"))
    if Path("/var/lib/dpkg/status").exists():
        assert (cache_home / "roar" / "dpkg-index.sqlite").is_file()
