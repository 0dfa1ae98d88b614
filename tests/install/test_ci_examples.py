"""The CI examples (examples/ci/): parsed with PyYAML and checked against what GitHub Actions
and GitLab CI expect, their roar commands checked against the CLI and docs/ci.md, and run for
real through scripts/ci-local (the GitHub workflow registering with a GLaaS server on
loopback, the GitLab job, and a workflow that fails at its install step)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import blake3
import pytest
import yaml

from tests.install import wheelhouse

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / "examples/ci/github-actions.yml"
GITLAB = ROOT / "examples/ci/.gitlab-ci.yml"
DOC = ROOT / "docs/ci.md"
CI_LOCAL = ROOT / "scripts/ci-local"
PIPELINE = "examples/ci/pipeline"
# roar where a command starts: the line's start, after `; ` or `then `, or as sudo's command
ROAR_CALL = re.compile(r'(?:sudo "\$\(which roar\)"|(?:^|(?<=; )|(?<=then ))roar)(?: [^;\n]*)?')
STEPS = ["python3 prepare.py raw.csv clean.csv", "python3 train.py clean.csv model.json",
         "python3 evaluate.py model.json clean.csv report.txt"]


def github() -> dict:
    return yaml.safe_load(GITHUB.read_text())


def gitlab() -> dict:
    return yaml.safe_load(GITLAB.read_text())


def github_job() -> dict:
    (job,) = github()["jobs"].values()
    return job


def roar_commands(lines: list[str]) -> list[str]:
    """Every roar invocation in these shell lines, in order."""
    return [m.group(0).strip() for line in lines for m in ROAR_CALL.finditer(line)]


def github_lines() -> list[str]:
    return [line for step in github_job()["steps"] if "run" in step for line in step["run"].splitlines()]


def gitlab_lines() -> list[str]:
    job = gitlab()["roar-pipeline"]
    return [*job["before_script"], *job["script"]]


# the files' structure ----------------------------------------------------------------------

def test_github_workflow_is_one_ubuntu_24_04_job_of_valid_steps():
    doc = github()
    triggers = doc.get("on", doc.get(True))   # YAML 1.1 reads a bare `on` key as true
    assert set(triggers) == {"push", "workflow_dispatch"}
    (job,) = doc["jobs"].values()
    assert job["runs-on"] == "ubuntu-24.04"
    assert job["env"] == {"ROAR_WHEEL": "${{ vars.ROAR_WHEEL }}", "GLAAS_URL": "${{ vars.GLAAS_URL }}",
                          "ROAR_GLAAS_TOKEN": "${{ secrets.ROAR_GLAAS_TOKEN }}"}
    assert (ROOT / job["defaults"]["run"]["working-directory"]).is_dir()
    steps = job["steps"]
    assert steps[0] == {"uses": "actions/checkout@v4"}
    allowed = {"name", "run", "uses", "with", "if", "env", "working-directory", "shell"}
    for step in steps:
        assert set(step) <= allowed, step
        assert ("run" in step) != ("uses" in step), step   # exactly one of them
        if "uses" in step:
            assert re.fullmatch(r"actions/[\w-]+@v\d+", step["uses"]), step["uses"]
    upload = steps[-1]
    assert upload["uses"] == "actions/upload-artifact@v4" and upload["if"] == "always()"
    assert upload["with"]["path"] == ".roar/" and upload["with"]["include-hidden-files"] is True
    register = next(s for s in steps if "register" in s.get("run", ""))
    assert register["if"] == "env.GLAAS_URL != ''"


def test_gitlab_job_runs_on_a_tagged_shell_runner_and_keeps_the_records():
    doc = gitlab()
    assert list(doc) == ["roar-pipeline"]
    job = doc["roar-pipeline"]
    assert set(job) == {"tags", "before_script", "script", "artifacts"}
    assert job["tags"] == ["roar"]
    assert all(isinstance(line, str) for line in job["before_script"] + job["script"])
    assert job["artifacts"] == {"when": "always", "paths": [".roar/"]}
    assert f"cd {PIPELINE}" in job["before_script"]


# the commands in them ---------------------------------------------------------------------

def test_both_files_run_the_same_roar_commands():
    expected = ['sudo "$(which roar)" doctor', *(f'sudo "$(which roar)" run -- {s}' for s in STEPS),
                "roar dag", "roar register report.txt"]
    assert roar_commands(github_lines()) == expected
    assert roar_commands(gitlab_lines()) == expected


def test_every_roar_command_exists_and_accepts_its_arguments():
    import click
    import typer.main

    from roar.cli.main import app

    group = typer.main.get_command(app)
    for command in roar_commands(github_lines() + gitlab_lines()):
        argv = shlex.split(command.replace('sudo "$(which roar)"', "roar"))[1:]
        assert argv[0] in group.commands, f"{command}: roar has no verb {argv[0]!r}"
        # parse the arguments the way roar would, without running the command
        verb = group.commands[argv[0]]
        ctx = verb.make_context(argv[0], argv[1:], resilient_parsing=False)
        assert isinstance(ctx, click.Context)


def test_the_pipeline_steps_name_files_of_the_example():
    for step in STEPS:
        script = step.split()[1]
        assert (ROOT / PIPELINE / script).is_file(), script
    assert (ROOT / PIPELINE / "raw.csv").is_file()
    ignored = (ROOT / PIPELINE / ".gitignore").read_text().split()
    assert {"clean.csv", "model.json", "report.txt"} <= set(ignored)


def test_docs_show_the_commands_the_files_run():
    doc = DOC.read_text()
    for command in roar_commands(github_lines()):
        assert command in doc, f"docs/ci.md does not show {command}"
    for step in github_job()["steps"]:
        if "name" in step:
            assert f"**{step['name']}**" in doc, f"docs/ci.md does not describe the step {step['name']!r}"
    message = re.search(r"ROAR_WHEEL:\?([^}]*)", GITHUB.read_text()).group(1)
    assert message in doc
    gitlab_message = re.search(r'echo "([^"]*)"', GITLAB.read_text()).group(1)
    assert gitlab_message in doc


# running them: scripts/ci-local ----------------------------------------------------------

@pytest.fixture(scope="module")
def offline(tmp_path_factory) -> dict[str, str]:
    """roar's wheel built from this tree (as a release would be), and its dependencies offline."""
    work = tmp_path_factory.mktemp("ci-wheel")
    src = wheelhouse.copy_source(ROOT, work / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"),
                    str(src)], check=True, capture_output=True)
    (built,) = (work / "dist").glob("roar-*.whl")
    deps = wheelhouse.dependencies(work / "deps")
    return {"ROAR_WHEEL": str(built), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(deps),
            "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def ci_local(work: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("SUDO_", "PIP_", "GLAAS_", "ROAR_GLAAS", "ROAR_WHEEL"))}
    return subprocess.run([sys.executable, str(CI_LOCAL), *args, "--work", str(work)], capture_output=True,
                          text=True, env={**clean, **env}, timeout=600)


def roar_json(cwd: Path, *args: str):
    done = subprocess.run([sys.executable, "-m", "roar", *args, "--json"], cwd=cwd, capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout)


def check_recorded_pipeline(repo: Path) -> str:
    """The three steps are the session's jobs, chained by their files; the report's hash."""
    pipeline = repo / PIPELINE
    assert (repo / ".roar").is_dir()
    jobs = [roar_json(pipeline, "show", f"@{n}") for n in (1, 2, 3)]
    assert [" ".join(j["argv"]) for j in jobs] == STEPS
    assert all(j["exit_code"] == 0 for j in jobs)
    outputs = [{f["path"]: f["hash"] for f in j["outputs"]} for j in jobs]
    report = blake3.blake3((pipeline / "report.txt").read_bytes()).hexdigest()
    assert outputs[2] == {str(pipeline / "report.txt"): report}
    inputs = {f["path"]: f["hash"] for f in jobs[2]["inputs"]}
    assert inputs[str(pipeline / "model.json")] == outputs[1][str(pipeline / "model.json")]
    assert inputs[str(pipeline / "clean.csv")] == outputs[0][str(pipeline / "clean.csv")]
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    for job in jobs:   # each job is reproducible from the checkout: the outputs are ignored, not dirt
        git = job["context"]["git"]
        assert (git["commit"], git["dirty"]) == (head, False), git
    return report


@pytest.mark.ebpf
@pytest.mark.glaas
@pytest.mark.slow
def test_ci_local_runs_the_github_workflow_and_registers_the_report(offline, tmp_path):
    from tests.glaas.conftest import Server, roar_cmd

    db = f"sqlite:///{tmp_path / 'glaas.db'}"
    token = json.loads(roar_cmd("glaas", "token", "create", "--user", "ci", "--db", db, "--json",
                                check=True).stdout)["token"]
    server = Server(db)
    try:
        done = ci_local(tmp_path / "run", env={**offline, "GLAAS_URL": server.url, "ROAR_GLAAS_TOKEN": token})
        assert done.returncode == 0, done.stdout + done.stderr
        report = check_recorded_pipeline(tmp_path / "run/repo")
        for step in ("Install roar", "Check that this runner can trace", "Prepare", "Train", "Evaluate",
                     "Show the lineage", "Register the report's lineage"):
            assert f"ci-local: pipeline: {step}\n" in done.stderr, step
        assert "actions/upload-artifact runs on GitHub only: skipped" in done.stderr
        assert "roar run will work here" in done.stdout   # the doctor step
        status, dag = server.call("GET", f"/artifacts/{report}/dag", token=token)
        assert status == 200, dag
        assert sorted(job["command"] for job in dag["jobs"]) == sorted(STEPS)
        status, _ = server.call("GET", f"/artifacts/{report}/dag")   # private: a token's registration
        assert status == 404
    finally:
        server.stop()


@pytest.mark.ebpf
@pytest.mark.slow
def test_ci_local_runs_the_gitlab_job(offline, tmp_path):
    done = ci_local(tmp_path / "run", "gitlab", env=offline)
    assert done.returncode == 0, done.stdout + done.stderr
    check_recorded_pipeline(tmp_path / "run/repo")
    for line in gitlab_lines():
        assert f"$ {line}\n" in done.stdout, line   # each line echoed as the runner does
    assert "ci-local: roar-pipeline: artifacts are kept by GitLab only: skipped" in done.stderr


@pytest.mark.slow
def test_a_failed_install_stops_the_workflow_with_its_status(tmp_path):
    done = ci_local(tmp_path / "run", env={"ROAR_WHEEL": str(tmp_path / "missing.whl"), "PIP_NO_INDEX": "1"})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "ci-local: pipeline: Install roar: failed with exit status 1\n" in done.stderr
    for step in ("Check that this runner can trace", "Prepare", "Register the report's lineage"):
        assert f"ci-local: pipeline: {step}: skipped" in done.stderr
    assert not (tmp_path / "run/repo/.roar").exists()


@pytest.mark.parametrize("args", [["fish"], ["github", "gitlab"], ["--work"]])
def test_ci_local_usage_errors(tmp_path, args):
    done = subprocess.run([sys.executable, str(CI_LOCAL), *args], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.startswith("ci-local: ") and done.stderr.count("\n") == 1, done.stderr
