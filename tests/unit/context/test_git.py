"""Git context from a real temporary repository."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from roar.record.context import git

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(repo, *args):
    subprocess.run(["git", "-c", "safe.directory=*", "-C", str(repo), *args], check=True,
                   capture_output=True, env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e",
                                             "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e",
                                             "HOME": str(repo), "PATH": "/usr/bin:/bin"})


@pytest.fixture
def repo(tmp_path):
    _git(tmp_path, "init", "-q", "-b", "trunk")
    _git(tmp_path, "remote", "add", "origin", "https://alice:ghp_s3cr3t@git.example/team/proj.git")
    (tmp_path / "a.txt").write_text("one\n")
    _git(tmp_path, "add", "a.txt")
    _git(tmp_path, "commit", "-q", "-m", "first")
    return tmp_path


def test_repository_facts_with_credentials_stripped(repo):
    (repo / "sub").mkdir()
    info = git.capture(str(repo / "sub"))
    head = subprocess.run(["git", "-c", "safe.directory=*", "-C", str(repo), "rev-parse", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert info["root"] == str(repo)
    assert info["remote"] == "https://git.example/team/proj.git"
    assert info["branch"] == "trunk"
    assert info["commit"] == head
    assert info["dirty"] is False and info["dirty_paths"] == []


def test_dirty_tree_lists_changed_and_untracked_paths_but_not_roar(repo):
    (repo / "a.txt").write_text("two\n")
    (repo / "new.txt").write_text("x")
    (repo / ".roar").mkdir()
    (repo / ".roar" / "roar.db").write_text("")
    info = git.capture(str(repo))
    assert info["dirty"] is True
    assert info["dirty_paths"] == ["a.txt", "new.txt"]


def test_packed_refs_and_detached_head(repo):
    _git(repo, "pack-refs", "--all")
    assert git.capture(str(repo))["commit"] is not None
    _git(repo, "checkout", "-q", "--detach")
    info = git.capture(str(repo))
    assert info["branch"] is None and len(info["commit"]) == 40


def test_no_repository_is_none(tmp_path):
    assert git.capture(str(tmp_path)) is None
