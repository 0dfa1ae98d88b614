"""`roar reproduce HASH` outside the workspace that recorded it: the recipe comes from the
GLaaS server the lineage was registered on, with the steps, commands, commit and source
inputs of the local recipe."""

from __future__ import annotations

import json

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
