"""`roar reproduce HASH` outside the workspace that recorded it: the recipe comes from the
GLaaS server the lineage was registered on, with the steps, commands, commit and source
inputs of the local recipe."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.glaas.test_register import client_env, pipeline, receipt, register, roar  # noqa: F401 (fixture)

pytestmark = pytest.mark.ebpf


def test_a_registered_artifact_is_reproduced_from_the_server(pipeline, server, make_token, tmp_path):  # noqa: F811
    local = json.loads(roar(pipeline["root"], "reproduce", "final.txt", "--json", env=pipeline["env"]).stdout)
    token = make_token("alice")
    receipt(register(pipeline, tmp_path, server.url, "final.txt", "--json", token=token))
    env = client_env(tmp_path, server.url, token)
    done = roar(tmp_path, "reproduce", pipeline["final"][:20], "--json", env=env)
    assert done.returncode == 0, done.stderr
    remote = json.loads(done.stdout)
    assert remote["target"] == pipeline["final"]
    assert [(s["step"], s["type"], s["command"], s["argv"]) for s in remote["steps"]] == \
        [(s["step"], s["type"], s["command"], s["argv"]) for s in local["steps"]]
    assert remote["git"]["commit"] == local["git"]["commit"]
    assert [s["hash"] for s in remote["sources"]] == [s["hash"] for s in local["sources"]]
    assert remote["origin"].startswith(f"{server.url}/s/")
    # a private lineage is someone else's to reproduce
    bob = client_env(tmp_path, server.url, make_token("bob"))
    other = roar(tmp_path, "reproduce", pipeline["final"], env=bob)
    assert other.returncode == 3 and "nothing matches" in other.stderr


def test_run_verify_rebuilds_a_registered_artifact_from_its_git_remote(server, tmp_path):
    """Another machine's view: only the server and the git remote, no workspace."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    origin, proj = tmp_path / "origin.git", tmp_path / "proj"
    subprocess.run([*git, "init", "-q", "--bare", str(origin)], check=True)
    subprocess.run([*git, "init", "-q", "-b", "main", str(proj)], check=True)
    (proj / "in.txt").write_text("b\na\nc\n")
    for args in (["add", "in.txt"], ["commit", "-qm", "input"], ["remote", "add", "origin", str(origin)],
                 ["push", "-q", "origin", "main"]):
        subprocess.run([*git, *args], cwd=proj, check=True)
    env = client_env(tmp_path / "config", server.url)
    for command in ("sort in.txt > mid.txt", "tr a-z A-Z < mid.txt > out.txt"):
        done = roar(proj, "run", "--", "/bin/sh", "-c", command, env=env)
        assert done.returncode == 0, done.stderr
    final = json.loads(roar(proj, "show", "out.txt", "--json", env=env).stdout)["hash"]
    receipt(roar(proj, "register", "out.txt", "--json", env=env))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    again = elsewhere / "again"
    done = roar(elsewhere, "reproduce", final, "--run", "--verify", "--dir", str(again), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["@1: identical", "@2: identical"]
    assert (again / "out.txt").read_text() == "A\nB\nC\n"
