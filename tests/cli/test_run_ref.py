"""`roar run @N`: a recorded job's command again, in its recorded cwd, as a new job of
the current session that names the job it re-ran (docs/reproduce.md), with the real tracer."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from roar.errors import ReproduceRefused, UsageError
from tests.security.conftest import mallory, one_line_error, sudo_roar, user_dir  # noqa: F401

pytestmark = pytest.mark.ebpf


def roar(cwd, *args, env=None):
    return subprocess.run([sys.executable, "-m", "roar", *args], cwd=cwd, capture_output=True, text=True,
                          env=env)


def show(cwd, ref):
    done = roar(cwd, "show", ref, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def work(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "in.txt").write_text("one\n")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)   # the workspace is the repository's
    done = roar(tmp_path / "sub", "run", "--", "/bin/sh", "-c", "cat ../in.txt ../in.txt > out.txt")
    assert done.returncode == 0, done.stderr
    return tmp_path


def test_it_runs_the_command_again_in_the_recorded_cwd_as_a_new_step(work):
    first = show(work, "@1")
    os.unlink(work / "sub" / "out.txt")
    done = roar(work, "run", "@1")    # from the workspace root: the job's own cwd is sub/
    assert done.returncode == 0, done.stderr
    assert (work / "sub" / "out.txt").read_text() == "one\none\n"
    again = show(work, "@2")
    assert again["argv"] == first["argv"]
    assert again["cwd"] == str(work / "sub")
    assert again["session"] == first["session"]
    assert again["labels"] == {"roar.rerun_of": first["uid"]}
    assert f"roar: re-running @1 {first['uid']} in {work / 'sub'}: " in done.stderr
    assert done.stderr.endswith("roar: `roar diff @1 @2` shows what changed\n")


def test_a_job_uid_names_it_too_and_the_status_is_the_commands(work):
    assert roar(work, "run", "-q", "--", "/bin/sh", "-c", "exit 3").returncode == 3
    uid = show(work, "@2")["uid"]
    done = roar(work, "run", "-q", "--label", "why=again", uid)
    assert done.returncode == 3, done.stderr
    assert show(work, "@3")["labels"] == {"why": "again", "roar.rerun_of": uid}


def test_a_job_of_an_earlier_session_is_named_by_its_uid(work):
    uid = show(work, "@1")["uid"]
    assert roar(work, "reset").returncode == 0
    done = roar(work, "run", uid)
    assert done.returncode == 0, done.stderr
    again = show(work, "@1")   # the first step of the new session
    assert again["uid"] != uid and again["labels"] == {"roar.rerun_of": uid}
    assert done.stderr.endswith(f"roar: `roar diff {uid} @1` shows what changed\n")


def test_a_build_step_stays_a_build_step(work):
    assert roar(work, "build", "-q", "--", "/bin/sh", "-c", "cat in.txt > built.txt").returncode == 0
    done = roar(work, "run", "-q", "@B1")
    assert done.returncode == 0, done.stderr
    again = show(work, "@B2")
    assert (again["type"], again["argv"][2]) == ("build", "cat in.txt > built.txt")
    assert again["labels"]["roar.rerun_of"] == show(work, "@B1")["uid"]


def test_after_dashes_it_is_a_command_name(work):
    done = roar(work, "run", "--", "@1")
    assert done.returncode == 127
    assert done.stderr == "roar: command not found: @1; check the spelling or your PATH\n"


def test_a_variable_the_job_read_that_changed_is_listed_first(work):
    code = "import os; open('mode.txt', 'w').write(os.environ.get('ROAR_T_MODE', '-'))"
    env = {**os.environ, "ROAR_T_MODE": "fast"}
    assert roar(work, "run", "--", sys.executable, "-c", code, env=env).returncode == 0
    done = roar(work, "run", "@2", env={**os.environ, "ROAR_T_MODE": "slow"})
    assert done.returncode == 0, done.stderr
    assert "roar: environment: ROAR_T_MODE was 'fast', now 'slow'\n" in done.stderr
    assert (work / "mode.txt").read_text() == "slow"   # today's environment, said before it ran
    done = roar(work, "run", "@2", env={k: v for k, v in os.environ.items() if k != "ROAR_T_MODE"})
    assert "roar: environment: ROAR_T_MODE was 'fast', now unset\n" in done.stderr


def test_a_working_directory_that_is_gone_is_one_line(work):
    os.unlink(work / "sub" / "out.txt")
    os.rmdir(work / "sub")
    done = roar(work, "run", "@1")
    assert done.returncode == ReproduceRefused.exit_code
    assert done.stderr == (f"roar: the recorded working directory {work / 'sub'} cannot be entered "
                           "(No such file or directory): recreate it, or run the command yourself\n")


def test_a_command_with_redacted_credentials_is_not_run(work):
    assert roar(work, "run", "--", "/bin/true", "--password=hunter2").returncode == 0
    done = roar(work, "run", "@2")
    assert done.returncode == ReproduceRefused.exit_code
    assert done.stderr == ("roar: @2 (/bin/true '--password=<redacted>') has credentials replaced by "
                           "<redacted> in its record: run the command yourself\n")


def test_an_artifact_or_a_get_is_not_a_job_to_rerun(work, tmp_path_factory):
    digest = show(work, "sub/out.txt")["hash"]
    done = roar(work, "run", digest[:16])
    assert done.returncode == UsageError.exit_code
    assert done.stderr.startswith(f"roar: {digest[:16]} names an artifact, not a job")
    src = tmp_path_factory.mktemp("src") / "data.txt"
    src.write_text("x\n")
    assert roar(work, "get", f"file://{src}", "data.txt").returncode == 0
    done = roar(work, "run", "@2")
    assert done.returncode == UsageError.exit_code
    assert done.stderr.startswith("roar: @2 is a get step: run `roar get` again for it")


def test_under_sudo_the_lookup_and_the_job_are_the_users(mallory, user_dir):  # noqa: F811
    (user_dir / "in.txt").write_text("x\n")
    os.chown(user_dir / "in.txt", mallory.uid, mallory.gid)
    done = sudo_roar(mallory, "run", "--", "/bin/cp", "in.txt", "out.txt", cwd=user_dir)
    assert done.returncode == 0, done.stderr
    os.unlink(user_dir / "out.txt")
    done = sudo_roar(mallory, "run", "-q", "@1", cwd=user_dir)
    assert done.returncode == 0, done.stderr
    assert os.stat(user_dir / "out.txt").st_uid == mallory.uid
    jobs = user_dir / ".roar" / "jobs"
    assert {p.stat().st_uid for p in jobs.iterdir()} == {mallory.uid}
    assert len(list(jobs.iterdir())) == 2
    # the job is looked up as the user: a workspace only root may read stops the re-run
    os.chmod(user_dir / ".roar", 0o000)
    os.chown(user_dir / ".roar", 0, 0)
    try:
        line = one_line_error(sudo_roar(mallory, "run", "@1", cwd=user_dir))
    finally:
        os.chown(user_dir / ".roar", mallory.uid, mallory.gid)
        os.chmod(user_dir / ".roar", 0o700)
    assert line == f"roar: cannot open {user_dir / '.roar'}: Permission denied; check its permissions"
