"""`roar reproduce`: a real pipeline (build, get over HTTP, two runs) in a git repository,
recorded with the real tracer and reproduced with `--run --verify` in a fresh directory."""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import sys
import threading

import pytest

from roar.errors import NoPrivilege, NotReproduced, ReproduceRefused, StepFailed
from tests.security.conftest import mallory, one_line_error, sudo_roar, user_dir  # noqa: F401

pytestmark = pytest.mark.ebpf

GEN = """import sys
data, built, out = sys.argv[1:]
rows = open(data).read().split()
open(out, "w").write(open(built).read() + "\\n".join(sorted(rows, reverse=True)) + "\\n")
"""


def roar(cwd, *args):
    return subprocess.run([sys.executable, "-m", "roar", *args], cwd=cwd, capture_output=True, text=True)


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "data.csv").write_text("b\na\nc\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def pipeline(tmp_path, server):
    work = tmp_path / "work"
    work.mkdir()
    (work / "gen.py").write_text(GEN)
    (work / "src.txt").write_text("header\n")
    git(work, "init", "-q")
    git(work, "add", "gen.py", "src.txt")
    git(work, "commit", "-q", "-m", "pipeline")
    for args in (["build", "--", "/bin/cp", "src.txt", "built.txt"],
                 ["get", f"{server}/data.csv", "data.csv"],
                 ["run", "--", sys.executable, "gen.py", "data.csv", "built.txt", "out.txt"],
                 ["run", "--", "/bin/sh", "-c", "sort out.txt > final.txt"]):
        done = roar(work, *args)
        assert done.returncode == 0, done.stderr
    return work


def test_recipe_lists_commit_steps_in_order_and_sources(pipeline):
    done = roar(pipeline, "reproduce", "final.txt", "--json")
    assert done.returncode == 0, done.stderr
    recipe = json.loads(done.stdout)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=pipeline, capture_output=True, text=True).stdout
    assert recipe["git"]["commit"] == head.strip()
    assert [s["step"] for s in recipe["steps"]] == ["@B1", "@1", "@2", "@3"]
    assert recipe["steps"][1]["type"] == "get"
    assert {s["path"] for s in recipe["sources"]} >= {str(pipeline / "gen.py"), str(pipeline / "src.txt")}
    assert str(pipeline / "data.csv") not in {s["path"] for s in recipe["sources"]}


def test_run_verify_reproduces_the_pipeline_bit_for_bit(pipeline, tmp_path):
    out = tmp_path / "again"
    done = roar(pipeline, "reproduce", "final.txt", "--run", "--verify", "--dir", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["@B1: identical", "@1: identical", "@2: identical", "@3: identical"]
    assert (out / "final.txt").read_text() == (pipeline / "final.txt").read_text()
    assert (out / ".roar").is_dir()    # the steps were recorded there, as a new session


def test_a_step_that_writes_the_time_is_reported_as_differing(pipeline, tmp_path):
    done = roar(pipeline, "run", "--", "/bin/sh", "-c", "date +%s%N > stamp.txt; cat final.txt >> stamp.txt")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "again"
    done = roar(pipeline, "reproduce", "stamp.txt", "--run", "--verify", "--dir", str(out))
    assert done.returncode == NotReproduced.exit_code, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:4] == ["@B1: identical", "@1: identical", "@2: identical", "@3: identical"]
    assert lines[4] == "@4: differs"
    assert lines[5].startswith(f"  differs: {out / 'stamp.txt'}  recorded ")
    assert "first difference at byte" in lines[5]
    assert done.stderr.endswith("was not reproduced bit for bit "
                                f"(see the steps above; the reproduction is in {out})\n")


def test_a_later_commit_does_not_matter_the_recorded_one_is_checked_out(pipeline, tmp_path):
    (pipeline / "src.txt").write_text("other\n")
    git(pipeline, "commit", "-q", "-am", "changed")
    recipe = json.loads(roar(pipeline, "reproduce", "final.txt", "--json").stdout)
    assert recipe["git"]["commit"]   # the recorded one, not the new HEAD
    done = roar(pipeline, "reproduce", "final.txt", "--run", "--dir", str(tmp_path / "again"))
    assert done.returncode == 0, done.stderr   # the recorded commit still has the recorded bytes


def test_a_missing_commit_is_one_clear_line(pipeline, tmp_path):
    git(pipeline, "commit", "-q", "--amend", "-m", "rewritten")
    git(pipeline, "reflog", "expire", "--expire=now", "--all")
    git(pipeline, "gc", "-q", "--prune=now")
    done = roar(pipeline, "reproduce", "final.txt", "--run", "--dir", str(tmp_path / "again"))
    assert done.returncode == ReproduceRefused.exit_code
    last = done.stderr.splitlines()[-1]
    assert last.startswith("roar: commit ") and "cannot be checked out from" in last


def test_a_source_input_that_differs_names_the_file(pipeline, tmp_path):
    (pipeline / "notes.txt").write_text("one\n")
    assert roar(pipeline, "run", "--", "/bin/cp", "notes.txt", "notes.out").returncode == 0
    (pipeline / "notes.txt").write_text("two\n")   # untracked: copied from the workspace, now other bytes
    out = tmp_path / "again"
    done = roar(pipeline, "reproduce", "notes.out", "--run", "--dir", str(out))
    assert done.returncode == ReproduceRefused.exit_code
    assert done.stderr.splitlines()[-1].startswith(
        f"roar: source input {out / 'notes.txt'} has other content (recorded ")
    assert done.stderr.endswith("restore it, or pass --allow-changed-inputs to go on\n")
    assert roar(pipeline, "reproduce", "notes.out", "--run", "--dir", str(tmp_path / "b"),
                "--allow-changed-inputs").returncode == 0


def test_a_failing_step_is_named(pipeline, tmp_path):
    (pipeline / "flag").write_text("x\n")
    assert roar(pipeline, "run", "--", "/bin/sh", "-c", "cat flag final.txt > last.txt").returncode == 0
    os.unlink(pipeline / "flag")
    git(pipeline, "rm", "-q", "--cached", "--ignore-unmatch", "flag")
    done = roar(pipeline, "reproduce", "last.txt", "--run", "--dir", str(tmp_path / "again"),
                "--allow-changed-inputs")
    assert done.returncode == StepFailed.exit_code, done.stderr
    assert done.stderr.splitlines()[-1] == (
        "roar: step @4 (/bin/sh -c 'cat flag final.txt > last.txt') exited with 1: "
        "fix it and rerun, or pass --keep-going")


def test_options_of_run_without_run_are_refused(pipeline):
    done = roar(pipeline, "reproduce", "final.txt", "--verify")
    assert done.returncode == 2 and done.stderr.startswith("roar: --verify, --dir, ")


def test_a_distribution_that_cannot_be_installed_is_one_line(pipeline, tmp_path):
    from roar.record import job as jobrec

    [path] = [p for p in (pipeline / ".roar" / "jobs").iterdir()
              if jobrec.decode(p.read_bytes())["argv"][:2] == ["/bin/sh", "-c"]]
    record = jobrec.decode(path.read_bytes())
    record["context"]["packages"]["python"] = [{"exe": sys.executable, "version": None, "distributions": [
        {"name": "roar-no-such-distribution", "version": "1.0", "site": "/nowhere", "files": 1}]}]
    path.write_bytes(jobrec.encode(record))
    env = {**os.environ, "PIP_NO_INDEX": "1"}
    done = subprocess.run([sys.executable, "-m", "roar", "reproduce", "final.txt", "--run", "--dir",
                           str(tmp_path / "again")], cwd=pipeline, capture_output=True, text=True, env=env)
    assert done.returncode == ReproduceRefused.exit_code, done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith("roar: cannot install the recorded Python distributions "
                           "(roar-no-such-distribution==1.0): ")


def first_difference(a: bytes, b: bytes) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def test_the_script_remakes_the_artifact_in_a_clean_directory(pipeline, tmp_path):
    script = tmp_path / "again.sh"
    done = roar(pipeline, "reproduce", "final.txt", "--script", str(script))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""   # the script is the output
    assert script.stat().st_mode & 0o777 == 0o755 and script.read_text().startswith("#!/bin/bash\n")
    clean = tmp_path / "clean"
    clean.mkdir()
    done = subprocess.run(["bash", str(script), "out"], cwd=clean, capture_output=True, text=True,
                          env=_with_roar_shim(tmp_path, dict(os.environ)))
    assert done.returncode == 0, done.stderr
    out = clean / "out"
    for name in ("built.txt", "data.csv", "out.txt", "final.txt"):
        assert (out / name).read_bytes() == (pipeline / name).read_bytes(), name
    steps = json.loads(roar(out, "log", "--json").stdout)
    assert len(steps) == 4   # each step recorded again, in the new directory's own workspace


def test_the_script_installs_only_the_distributions_the_interpreter_lacks(tmp_path):
    from roar.record import job as jobrec

    work = tmp_path / "work"
    work.mkdir()
    code = "import msgpack; open('v.txt', 'w').write(str(msgpack.packb([1, 2])))"
    assert roar(work, "run", "-q", "--", sys.executable, "-c", code).returncode == 0
    recipe = json.loads(roar(work, "reproduce", "v.txt", "--json").stdout)
    assert "msgpack" in {d["name"] for d in recipe["packages"]["python"]}
    offline = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": ""}   # pip could install nothing
    assert roar(work, "reproduce", "v.txt", "--script", str(tmp_path / "have.sh")).returncode == 0
    done = subprocess.run(["bash", str(tmp_path / "have.sh"), str(tmp_path / "a")], capture_output=True,
                          text=True, env=_with_roar_shim(tmp_path, offline))
    assert done.returncode == 0, done.stderr   # every distribution is there: no venv, no pip
    assert not (tmp_path / "a" / ".roar" / "venv").exists()
    assert (tmp_path / "a" / "v.txt").read_bytes() == (work / "v.txt").read_bytes()
    done = subprocess.run([sys.executable, "-m", "roar", "reproduce", "v.txt", "--run", "--verify", "--dir",
                           str(tmp_path / "c")], cwd=work, capture_output=True, text=True, env=offline)
    assert done.returncode == 0, done.stderr   # --run agrees: the venv's own site has msgpack
    assert not (tmp_path / "c" / ".roar" / "venv").exists()
    [path] = (work / ".roar" / "jobs").iterdir()
    record = jobrec.decode(path.read_bytes())
    record["context"]["packages"]["python"][0]["distributions"].append(
        {"name": "roar-no-such-distribution", "version": "1.0", "site": "/nowhere", "files": 1})
    path.write_bytes(jobrec.encode(record))
    assert roar(work, "reproduce", "v.txt", "--script", str(tmp_path / "lacks.sh")).returncode == 0
    done = subprocess.run(["bash", str(tmp_path / "lacks.sh"), str(tmp_path / "b")], capture_output=True,
                          text=True, env=_with_roar_shim(tmp_path, offline))
    assert done.returncode != 0 and "roar-no-such-distribution==1.0" in done.stderr
    assert (tmp_path / "b" / ".roar" / "venv").is_dir() and not (tmp_path / "b" / "v.txt").exists()


def _with_roar_shim(tmp_path, env):
    """env with a `roar` first in PATH that is the roar under test."""
    shim = tmp_path / "bin"
    shim.mkdir(exist_ok=True)
    (shim / "roar").write_text(f'#!/bin/sh\nexec {sys.executable} -m roar "$@"\n')
    (shim / "roar").chmod(0o755)
    return {**env, "PATH": f"{shim}:{env['PATH']}"}


def test_a_roar_package_in_the_checkout_is_not_what_runs_the_steps(tmp_path):
    """The steps' roar runs as root in the checkout: a `roar/` there must not be imported."""
    work, marker = tmp_path / "work", tmp_path / "imported"
    (work / "roar").mkdir(parents=True)
    (work / "roar" / "__init__.py").write_text("")
    (work / "roar" / "__main__.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    (work / "src.txt").write_text("x\n")
    git(work, "init", "-q")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "a repository with its own roar/")
    isolated = [sys.executable, "-I", "-m", "roar"]   # so that recording it does not import it either
    done = subprocess.run([*isolated, "run", "-q", "--", "/bin/cp", "src.txt", "out.txt"], cwd=work,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([*isolated, "reproduce", "out.txt", "--run", "--verify", "--dir",
                           str(tmp_path / "a")], cwd=work, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "a" / "roar" / "__main__.py").exists() and not marker.exists()


def test_verify_json_of_an_identical_reproduction(pipeline, tmp_path):
    out = tmp_path / "again"
    done = roar(pipeline, "reproduce", "final.txt", "--run", "--verify", "--json", "--dir", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) == {"directory", "steps"} and report["directory"] == str(out)
    recipe = json.loads(roar(pipeline, "reproduce", "final.txt", "--json").stdout)
    assert [(s["step"], s["uid"]) for s in report["steps"]] == [(s["step"], s["uid"])
                                                                for s in recipe["steps"]]
    for step, recorded in zip(report["steps"], recipe["steps"], strict=True):
        assert set(step) == {"step", "uid", "state", "outputs"} and step["state"] == "identical"
        assert [o["path"] for o in step["outputs"]] == [
            o["path"].replace(str(pipeline), str(out), 1) for o in recorded["outputs"]]
        for o, r in zip(step["outputs"], recorded["outputs"], strict=True):
            assert o == {"path": o["path"], "recorded": r["hash"], "now": r["hash"], "state": "identical",
                         "first_difference": None}


def test_verify_json_names_the_differing_output_with_both_hashes_and_the_offset(pipeline, tmp_path):
    from roar.artifacts.hashing import hash_file

    done = roar(pipeline, "run", "--", "/bin/sh", "-c", "cat final.txt > stamp.txt; date +%s%N >> stamp.txt")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "again"
    done = roar(pipeline, "reproduce", "stamp.txt", "--run", "--verify", "--json", "--dir", str(out))
    assert done.returncode == NotReproduced.exit_code, done.stderr
    report = json.loads(done.stdout)
    assert [s["state"] for s in report["steps"]] == ["identical"] * 4 + ["differs"]
    [stamp] = report["steps"][-1]["outputs"]
    recorded = json.loads(roar(pipeline, "show", "stamp.txt", "--json").stdout)["hash"]
    now = hash_file(str(out / "stamp.txt"))["blake3"]
    assert recorded != now
    before, after = (pipeline / "stamp.txt").read_bytes(), (out / "stamp.txt").read_bytes()
    assert stamp == {"path": str(out / "stamp.txt"), "recorded": recorded, "now": now, "state": "differs",
                     "first_difference": first_difference(before, after)}
    assert stamp["first_difference"] >= len((pipeline / "final.txt").read_bytes())   # the time, not the copy


@pytest.fixture
def users_pipeline(mallory, user_dir):  # noqa: F811
    """A two-step pipeline in a git repository of mallory's, recorded with `sudo roar run`;
    data.txt is untracked, so --run copies it."""
    work = user_dir / "work"
    assert mallory.run("mkdir", work).returncode == 0
    for name, text in (("src.txt", "b\na\n"), ("data.txt", "c\n")):
        assert mallory.run("sh", "-c", f"printf '{text}' > {name}", cwd=work).returncode == 0
    for args in (["init", "-q"], ["add", "src.txt"], ["commit", "-q", "-m", "pipeline"]):
        done = mallory.run("git", "-c", "user.name=t", "-c", "user.email=t@t", *args, cwd=work)
        assert done.returncode == 0, done.stderr
    for argv in (["/bin/cp", "src.txt", "built.txt"],
                 ["/bin/sh", "-c", "sort built.txt data.txt > final.txt"]):
        done = sudo_roar(mallory, "run", "-q", "--", *argv, cwd=work)
        assert done.returncode == 0, done.stderr
    return work


@pytest.mark.root
def test_under_sudo_the_checkout_and_every_step_belong_to_the_user(mallory, user_dir, users_pipeline):  # noqa: F811
    from roar.record import job as jobrec

    out = user_dir / "again"
    done = sudo_roar(mallory, "reproduce", "final.txt", "--run", "--verify", "--dir", out, cwd=users_pipeline)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().splitlines() == ["@1: identical", "@2: identical"]
    assert (out / "final.txt").read_text() == "a\nb\nc\n"
    owners = {}
    for top, dirs, files in os.walk(out):
        for name in [*dirs, *files]:
            owners[os.path.join(top, name)] = os.lstat(os.path.join(top, name)).st_uid
    assert owners and {path for path, uid in owners.items() if uid != mallory.uid} == set()
    assert os.lstat(out).st_uid == mallory.uid
    assert str(out / "data.txt") in owners and str(out / ".git" / "HEAD") in owners
    records = [jobrec.decode(p.read_bytes()) for p in sorted((out / ".roar" / "jobs").iterdir())]
    assert sorted(r["argv"][0] for r in records) == ["/bin/cp", "/bin/sh"]
    for r in records:   # traced as under `sudo roar run`: the command had the user's ids and environment
        variables = r["context"]["environment"]["variables"]
        assert (variables["HOME"], variables["USER"]) == (str(mallory.home), mallory.name)
        assert r["inputs"] and r["exit"]["status"] == "ok"


@pytest.mark.root
def test_without_root_reproduce_run_says_it_needs_sudo(mallory, users_pipeline):  # noqa: F811
    done = mallory.run(sys.executable, "-m", "roar", "reproduce", "final.txt", "--run", cwd=users_pipeline)
    assert done.returncode == NoPrivilege.exit_code
    assert one_line_error(done) == ("roar: reproduce --run traces each step with `roar run`, which needs "
                                    "root: run it as `sudo roar reproduce ... --run`")


def _record_system_packages(pipeline, packages):
    from roar.record import job as jobrec

    [path] = [p for p in (pipeline / ".roar" / "jobs").iterdir()
              if jobrec.decode(p.read_bytes())["argv"][:2] == ["/bin/sh", "-c"]]
    record = jobrec.decode(path.read_bytes())
    record["context"]["packages"]["system"] = packages
    path.write_bytes(jobrec.encode(record))


def _fake_apt_get(tmp_path):
    """An apt-get first on PATH that writes down how it was called and fails."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "apt-calls"
    bin_dir.mkdir()
    (bin_dir / "apt-get").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> {calls}\nexit 100\n')
    (bin_dir / "apt-get").chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}, calls


@pytest.mark.parametrize("hostile", [
    {"name": "./evil.deb", "version": None},                  # a local file: its scripts run as root
    {"name": "/var/tmp/evil.deb", "version": "1.0"},
    {"name": "coreutils-", "version": None},                  # apt-get removes it
    {"name": "roar-no-such-package", "version": "9.1 /var/tmp/evil.deb"},
    {"name": "roar-no-such-package", "version": "9.1", "arch": "amd64/unstable"},
    {"name": "-oAPT::Update::Pre-Invoke::=id", "version": None},
    {"name": "lib*", "version": None},
])
def test_install_system_refuses_what_is_not_a_package_name(pipeline, tmp_path, hostile):
    _record_system_packages(pipeline, [{**hostile, "manager": "dpkg"}])
    env, calls = _fake_apt_get(tmp_path)
    done = subprocess.run([sys.executable, "-m", "roar", "reproduce", "final.txt", "--run",
                           "--install-system", "--dir", str(tmp_path / "again")],
                          cwd=pipeline, capture_output=True, text=True, env=env)
    assert done.returncode == ReproduceRefused.exit_code, done.stderr
    assert done.stderr.splitlines()[-1].startswith("roar: will not apt-get install "), done.stderr
    assert "Traceback" not in done.stderr
    assert not calls.exists(), calls.read_text()


def test_install_system_passes_a_plain_package_to_apt_get(pipeline, tmp_path):
    _record_system_packages(pipeline, [{"name": "roar-no-such-package", "version": "1:2.3-4+deb12u1",
                                        "arch": "amd64", "manager": "dpkg"}])
    env, calls = _fake_apt_get(tmp_path)
    done = subprocess.run([sys.executable, "-m", "roar", "reproduce", "final.txt", "--run",
                           "--install-system", "--dir", str(tmp_path / "again")],
                          cwd=pipeline, capture_output=True, text=True, env=env)
    assert done.returncode == ReproduceRefused.exit_code, done.stderr
    assert calls.read_text().split() == ["install", "-y", "--", "roar-no-such-package:amd64=1:2.3-4+deb12u1"]
    last = done.stderr.splitlines()[-1]
    assert last.startswith("roar: apt-get install roar-no-such-package:amd64="), done.stderr
