"""A dirty tree is said once: at run time only when the git state differs from the previous
job's in the session, and `roar status` gives identical warnings one line, with the steps
(docs/lineage.md, "Warnings, said once")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from roar.record.context import warnings as context_warnings
from roar.store import synthetic
from roar.store.workspace import Workspace

DIRTY = "the git tree is dirty"


@pytest.fixture
def ws(tmp_path: Path, monkeypatch) -> Workspace:
    monkeypatch.chdir(tmp_path)
    return Workspace.find_or_create(tmp_path)


def git_context(root, dirty, changed=(), commit="c" * 40, branch="main"):
    return {"git": {"root": str(root), "branch": branch, "commit": commit, "dirty": bool(dirty),
                    "dirty_paths": list(dirty), "changed_by_job": list(changed)}}


def add(ws, command, context, writes=(), warnings=()):
    outputs = []
    for name in writes:
        (ws.root / name).write_text(name)
        outputs.append(synthetic.file_entry(str(ws.root / name)))
    record = synthetic.record(command, outputs=outputs, cwd=str(ws.root),
                              warnings=[*context_warnings(context), *warnings])
    record["context"] = context
    return ws.add_job(record)


def said(record):
    return [w for w in record["warnings"] if w.startswith(DIRTY)]


def test_the_dirty_tree_is_said_once_then_when_it_changes(ws):
    root = ws.root
    # a pipeline on a dirty tree, each step writing an untracked output into it
    first = add(ws, "prepare", git_context(root, ["a.py"], ["out1"]), ["out1"])
    second = add(ws, "train", git_context(root, ["a.py", "out1"], ["out2"]), ["out2"])
    third = add(ws, "eval", git_context(root, ["a.py", "out1", "out2"], ["out3"]), ["out3"])
    assert [len(said(r)) for r in (first, second, third)] == [1, 0, 0]
    assert third["context"]["git"]["dirty"] is True      # the fact stays in the record
    # the user edits another file: the state differs, said again (naming it)
    edited = add(ws, "eval", git_context(root, ["a.py", "b.py", "out1", "out2", "out3"]))
    assert said(edited) and "b.py" in said(edited)[0]
    # another commit with the same dirty path: differs too
    committed = add(ws, "eval", git_context(root, ["a.py", "b.py", "out1", "out2", "out3"], commit="d" * 40))
    assert said(committed)
    # a new session says it again
    ws.reset()
    assert said(add(ws, "prepare", git_context(root, ["a.py", "b.py", "out1", "out2", "out3"])))


def test_a_tree_the_previous_job_dirtied_is_said_once(ws):
    clean = add(ws, "write", git_context(ws.root, [], ["data.csv"]), ["data.csv"])
    dirtied = add(ws, "read", git_context(ws.root, ["data.csv"]))
    again = add(ws, "read again", git_context(ws.root, ["data.csv"]))
    assert [len(said(r)) for r in (clean, dirtied, again)] == [0, 1, 0]


def test_unknown_dirtiness_is_never_the_same(ws):
    unknown = {"git": {"root": str(ws.root), "branch": "main", "commit": "c" * 40, "dirty": None,
                       "dirty_paths": []}}
    add(ws, "one", unknown)
    assert said(add(ws, "two", git_context(ws.root, ["a.py"])))


def test_a_rebuild_keeps_the_state_for_the_next_job(ws):
    add(ws, "prepare", git_context(ws.root, ["a.py"], ["out1"]), ["out1"])
    ws.rebuild()
    assert not said(add(ws, "train", git_context(ws.root, ["a.py", "out1"])))


def status_text(root):
    result = subprocess.run([sys.executable, "-m", "roar", "status"], cwd=root, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    return lines[lines.index("warnings:") + 1:]


def test_status_groups_identical_warnings(ws):
    for i in range(8):
        add(ws, f"step {i}", {}, warnings=["3 tracer events were lost"] if i != 3 else ["other"])
    add(ws, "last", {}, warnings=["other"])
    assert status_text(ws.root) == [
        "  @1, @2, @3, @5, @6 and 2 more (7 steps): 3 tracer events were lost",
        "  @4, @9 (2 steps): other"]


def test_status_keeps_a_single_warning_as_it_was(ws):
    add(ws, "one", {}, warnings=["careful"])
    assert status_text(ws.root) == ["  @1: careful"]


# through real traced jobs in a git repository

def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}).stdout


@pytest.mark.ebpf
def test_a_traced_pipeline_on_a_dirty_tree_warns_once(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    for name in ("a.py", "b.py"):
        (repo / name).write_text("print(1)\n")
    git(repo, "add", "a.py", "b.py")
    git(repo, "commit", "-q", "-m", "code")
    (repo / "a.py").write_text("print(2)\n")     # dirty before the first step

    def run(*cmd):
        result = subprocess.run([sys.executable, "-m", "roar", "run", "--", *cmd], cwd=repo,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return result.stderr.count(DIRTY)

    assert run("sh", "-c", "cat a.py > out1") == 1
    assert run("sh", "-c", "cat out1 > out2") == 0
    assert run("sh", "-c", "cat out2 > out3") == 0
    (repo / "b.py").write_text("print(3)\n")
    assert run("sh", "-c", "cat b.py > out4") == 1
    warnings = [w for w in status_text(repo) if DIRTY in w]
    assert len(warnings) == 2 and warnings[0].startswith("  @1: ") and warnings[1].startswith("  @4: ")
