"""`roar diff A B` on jobs recorded with the real tracer: what differs between two jobs, or
the jobs that made two artifacts, as text and --json, and its exit status (docs/diff.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from roar.errors import RefNotFound, UsageError

pytestmark = pytest.mark.ebpf

COPY = ["/bin/sh", "-c", "cat a.txt > out.txt"]


def roar(cwd, *args, env=None):
    return subprocess.run([sys.executable, "-m", "roar", *args], cwd=cwd, capture_output=True, text=True,
                          env=env)


def record(cwd, *argv, env=None, status=0):
    done = roar(cwd, "run", "-q", "--", *argv, env=env)
    assert done.returncode == status, done.stderr


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


def head(cwd):
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True)
    return done.stdout.strip()


def digest(cwd, ref):
    return json.loads(roar(cwd, "show", ref, "--json").stdout)["hash"]


@pytest.fixture
def work(tmp_path):
    (tmp_path / "a.txt").write_text("one\n")
    return tmp_path


def test_the_same_command_on_the_same_bytes_is_the_same(work):
    record(work, *COPY)
    record(work, *COPY)
    done = roar(work, "diff", "@1", "@2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[2:] == [
        "same: command, exit, files, variables read, packages, programs and git (times aside)"]
    result = json.loads(roar(work, "diff", "@1", "@2", "--json").stdout)
    assert result["same"] is True
    assert [result[s] for s in ("command", "exit", "inputs", "outputs", "env_read", "packages", "programs",
                                "git")] == [[]] * 8


def test_changed_bytes_are_named_by_path_with_both_hashes(work):
    record(work, *COPY)
    old = digest(work, "a.txt")
    (work / "a.txt").write_text("two\n")
    record(work, *COPY)
    new = digest(work, "a.txt")
    done = roar(work, "diff", "@1", "@2")
    assert done.returncode == 1, done.stderr
    uid = {ref: json.loads(roar(work, "show", ref, "--json").stdout)["uid"] for ref in ("@1", "@2")}
    assert done.stdout.splitlines() == [
        f"A: @1 {uid['@1']}  /bin/sh -c 'cat a.txt > out.txt'",
        f"B: @2 {uid['@2']}  /bin/sh -c 'cat a.txt > out.txt'",
        "inputs:",
        f"  changed  {work / 'a.txt'}  A {old[:16]}  B {new[:16]}",
        "outputs:",
        f"  changed  {work / 'out.txt'}  A {old[:16]}  B {new[:16]}",
        "differ in: inputs, outputs"]
    result = json.loads(roar(work, "diff", "@1", "@2", "--json").stdout)
    assert result["inputs"] == [{"path": str(work / "a.txt"), "state": "changed", "a": old, "b": new}]
    assert result["same"] is False and result["command"] == [] and result["exit"] == []


def test_command_exit_files_only_on_one_side(work):
    record(work, *COPY)
    record(work, "/bin/sh", "-c", "cat a.txt > other.txt; exit 3", status=3)
    done = roar(work, "diff", "@1", "@2", "--json")
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    assert result["command"] == [{"field": "argv", "a": COPY,
                                  "b": ["/bin/sh", "-c", "cat a.txt > other.txt; exit 3"]}]
    assert result["exit"] == [{"field": "code", "a": 0, "b": 3},
                              {"field": "status", "a": "ok", "b": "failed"}]
    assert result["inputs"] == []
    assert [(o["path"], o["state"]) for o in result["outputs"]] == [
        (str(work / "other.txt"), "only_b"), (str(work / "out.txt"), "only_a")]


def test_a_variable_read_with_another_value_and_the_interpreter_are_listed(work):
    code = "import os; open('m.txt', 'w').write(os.environ.get('ROAR_T_MODE', '-'))"
    record(work, sys.executable, "-c", code, env={**os.environ, "ROAR_T_MODE": "fast"})
    record(work, sys.executable, "-c", code, env={**os.environ, "ROAR_T_MODE": "slow"})
    record(work, *COPY)
    result = json.loads(roar(work, "diff", "@1", "@2", "--json").stdout)
    assert result["env_read"] == [{"name": "ROAR_T_MODE", "state": "changed", "a": "fast", "b": "slow"}]
    assert result["packages"] == [] and result["command"] == []
    text = roar(work, "diff", "@1", "@2").stdout
    assert "env_read:\n  changed  ROAR_T_MODE  A 'fast'  B 'slow'\n" in text
    result = json.loads(roar(work, "diff", "@2", "@3", "--json").stdout)
    interpreters = [p for p in result["packages"] if p["kind"] == "interpreter"]
    assert interpreters and all(p["state"] == "only_a" for p in interpreters)


def test_two_commits_are_a_git_difference(work):
    git(work, "init", "-q")
    git(work, "add", "a.txt")
    git(work, "commit", "-q", "-m", "one")
    record(work, *COPY)
    first = head(work)
    (work / "b.txt").write_text("b\n")
    git(work, "add", "b.txt")
    git(work, "commit", "-q", "-m", "two")
    record(work, *COPY)
    second = head(work)
    result = json.loads(roar(work, "diff", "@1", "@2", "--json").stdout)
    assert {"field": "commit", "a": first, "b": second} in result["git"]
    assert result["inputs"] == [] and result["outputs"] == []


def test_two_artifacts_compare_the_jobs_that_made_them(work):
    record(work, "/bin/sh", "-c", "cat a.txt > v1.txt")
    (work / "a.txt").write_text("two\n")
    record(work, "/bin/sh", "-c", "cat a.txt > v2.txt")
    done = roar(work, "diff", "v1.txt", "v2.txt", "--json")
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    assert (result["a"]["step"], result["b"]["step"]) == ("@1", "@2")
    assert result["a"]["artifact"] == digest(work, "v1.txt")
    assert [i["state"] for i in result["inputs"]] == ["changed"]
    assert roar(work, "diff", "v1.txt", "v2.txt").stdout.splitlines()[0].endswith(
        f"  (made {digest(work, 'v1.txt')[:16]})")


def test_refs_that_name_no_job_are_one_line(work):
    record(work, "/bin/sh", "-c", "tr a-z A-Z < a.txt > n.txt")   # a.txt's bytes: read, never made
    record(work, "/bin/sh", "-c", "tr a-z A-Z < a.txt > m.txt")
    source = json.loads(roar(work, "show", "@1", "--json").stdout)["inputs"][0]["hash"]
    done = roar(work, "diff", source, "@2")
    assert done.returncode == RefNotFound.exit_code
    assert done.stderr == (f"roar: {source} was made by no recorded job (it is a source input): "
                           "give a job, or an artifact a job wrote\n")
    done = roar(work, "diff", "session", "@1")
    assert done.returncode == UsageError.exit_code
    assert done.stderr == ("roar: session is a session: `roar diff` compares two jobs or two artifacts "
                           "(`roar log` lists the jobs)\n")
    done = roar(work, "diff", "@1", "@9")
    assert done.returncode == RefNotFound.exit_code
    assert done.stderr == "roar: no step @9 in the current session: `roar log` lists the jobs\n"


def _out_hash(cwd, ref):
    return json.loads(roar(cwd, "show", ref, "--json").stdout)["outputs"][0]["hash"]


def test_two_lineages_step_by_step(work):
    """--lineage aligns the jobs of two artifacts' lineages by command: the changed input shows
    in the step that read it, the step B has and A has not is B's only."""
    record(work, "/bin/sh", "-c", "cat a.txt > b.txt")
    record(work, "/bin/sh", "-c", "tr a-z A-Z < b.txt > c.txt")
    first = _out_hash(work, "@2")
    (work / "a.txt").write_text("two\n")
    record(work, "/bin/sh", "-c", "cat a.txt > b.txt")
    record(work, "sort", "-o", "b.txt", "b.txt")
    record(work, "/bin/sh", "-c", "tr a-z A-Z < b.txt > c.txt")
    second = _out_hash(work, "@5")
    done = roar(work, "diff", "--lineage", first, second, "--json")
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    assert [(s["state"], s["a"] and s["a"]["step"], s["b"] and s["b"]["step"]) for s in result["steps"]] == [
        ("differs", "@1", "@3"), ("only_b", None, "@4"), ("differs", "@2", "@5")]
    first_step = result["steps"][0]["differences"]
    assert [f["path"] for f in first_step["inputs"]] == [str(work / "a.txt")]
    assert roar(work, "diff", "--lineage", first, first).returncode == 0


def test_lineage_needs_two_artifacts(work):
    record(work, *COPY)
    done = roar(work, "diff", "--lineage", "@1", "@1")
    assert done.returncode == 2 and "--lineage compares two artifacts" in done.stderr
