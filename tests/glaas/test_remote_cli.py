"""The GLaaS client as a user meets it: `roar login/logout/whoami` and their file (0600, the
invoking user's under sudo, never written through a link), the CI variables, `roar show`
and `roar dag --remote` (the same drawing as the local DAG; a private DAG stays invisible
to others), and the import cost of the verbs that never talk to a server."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from roar.errors import Untrusted
from roar.remote.errors import AuthRefused
from tests.glaas.conftest import roar_cmd
from tests.glaas.test_register import client_env, pipeline, receipt, register, roar  # noqa: F401 (fixture)

CONFIG = ("roar", "glaas.json")


def login(config, url, token, **extra) -> subprocess.CompletedProcess:
    return roar("/", "login", url, "--token", token, env=client_env(config, **extra))


def test_login_saves_a_private_file_and_whoami_asks_the_server(server, make_token, db_url, tmp_path):
    token = make_token("alice")
    done = login(tmp_path, server.url + "/", token)
    assert done.returncode == 0, done.stderr
    path = tmp_path.joinpath(*CONFIG)
    assert done.stdout == f"logged in to {server.url} as alice (glaas:user:1); the token is saved in {path}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text()) == {"url": server.url, "token": token, "user": "alice",
                                            "identity": "glaas:user:1"}
    who = roar("/", "whoami", "--json", env=client_env(tmp_path))
    assert json.loads(who.stdout) == {"server": server.url, "user": "alice", "identity": "glaas:user:1",
                                      "token_from": str(path)}
    path.chmod(0o644)     # a token others can read is refused until the owner fixes it
    who = roar("/", "whoami", env=client_env(tmp_path))
    assert who.returncode == Untrusted.exit_code and f"chmod 600 {path}" in who.stderr
    path.chmod(0o600)
    roar_cmd("glaas", "token", "revoke", token, "--db", db_url, check=True)
    who = roar("/", "whoami", env=client_env(tmp_path))      # it asks the server, which now refuses
    assert who.returncode == AuthRefused.exit_code and "unknown or revoked token" in who.stderr
    out = roar("/", "logout", env=client_env(tmp_path))
    assert out.stdout == f"logged out: removed {path}\n" and not path.exists()
    assert roar("/", "logout", env=client_env(tmp_path)).stdout.startswith("not logged in (")


def test_a_refused_token_or_a_bad_url_saves_nothing(server, tmp_path):
    done = login(tmp_path, server.url, "glaas_wrong")
    assert done.returncode == AuthRefused.exit_code
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    done = login(tmp_path, "http://glaas.example.org", "glaas_x")   # a token in clear text over a network
    assert done.returncode == 2 and "plain http" in done.stderr
    done = login(tmp_path, "ftp://x", "glaas_x")
    assert done.returncode == 2 and "is not a server URL" in done.stderr
    assert not tmp_path.joinpath("roar").exists()


def test_login_never_writes_through_a_link(server, make_token, tmp_path):
    token = make_token("alice")
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    config = tmp_path / "config"
    (config / "roar").mkdir(parents=True)
    (config / "roar" / "glaas.json").symlink_to(victim)
    assert login(config, server.url, token).returncode == 0
    assert victim.read_text() == "keep\n"
    saved = config / "roar" / "glaas.json"
    assert not saved.is_symlink() and json.loads(saved.read_text())["token"] == token
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "roar").symlink_to(victim.parent / "elsewhere", target_is_directory=True)
    (victim.parent / "elsewhere").mkdir()
    done = login(linked, server.url, token)
    assert done.returncode == Untrusted.exit_code and "symbolic link" in done.stderr
    assert list((victim.parent / "elsewhere").iterdir()) == []


@pytest.mark.root
def test_under_sudo_the_file_is_the_invoking_users(server, make_token):
    from tests.security.conftest import _make_user, _remove_user

    if os.geteuid() != 0:
        pytest.skip("needs root to create a second user")
    user = _make_user("roar-l")
    try:
        env = {"PATH": "/usr/bin:/bin", "HOME": "/root", "USER": "root", "LC_ALL": "C.UTF-8",
               "SUDO_UID": str(user.uid), "SUDO_GID": str(user.gid), "SUDO_USER": user.name}
        done = subprocess.run([sys.executable, "-m", "roar", "login", server.url, "--token", make_token("u")],
                              cwd="/", env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        path = user.home / ".config" / "roar" / "glaas.json"
        st = path.stat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (user.uid, user.gid, 0o600)
        assert path.parent.stat().st_uid == user.uid
    finally:
        _remove_user(user)


def test_ci_variables_override_the_file_and_the_token_stays_with_its_server(server, make_token, tmp_path):
    assert login(tmp_path, server.url, make_token("alice")).returncode == 0
    bob = make_token("bob")
    who = roar("/", "whoami", "--json", env=client_env(tmp_path, token=bob))
    assert json.loads(who.stdout)["user"] == "bob"
    # another server by GLAAS_URL: the saved token is not sent there
    other = server.url.replace("127.0.0.1", "localhost")
    who = roar("/", "whoami", env=client_env(tmp_path, url=other))
    assert who.returncode == 0 and who.stdout.startswith(f"anonymous on {other}: not logged in")


def _local(root, *args):
    done = roar(root, *args, env=client_env(root / ".no-config"))
    assert done.returncode == 0, done.stderr
    return done.stdout.replace(f"{root}/", "")    # registered paths are relative to the workspace


@pytest.mark.ebpf
def test_show_and_dag_remote_draw_the_registered_dag_as_the_local_one(pipeline, server, tmp_path):  # noqa: F811
    done = receipt(register(pipeline, tmp_path, server.url, "session", "--json"))
    digest = done["session_hash"]
    env = client_env(tmp_path, server.url)
    for fmt in ("text", "mermaid"):
        local = _local(pipeline["root"], "dag", "-f", fmt)
        remote = roar(tmp_path, "dag", "--remote", digest, "-f", fmt, env=env)
        assert remote.returncode == 0, remote.stderr
        if fmt == "text":
            head, local = local.split("\n", 1)
            first, remote_body = remote.stdout.split("\n", 1)
            assert first == f"registered session {digest} on {server.url}: 3 jobs, 4 artifacts"
            assert local == remote_body
        else:
            assert remote.stdout == local
    graph = json.loads(roar(tmp_path, "dag", "--remote", pipeline["final"], "--json", env=env).stdout)
    assert graph["session"]["hash"] == digest
    assert [n["step"] for n in graph["nodes"] if n["kind"] == "job"] == ["@1", "@2", "@3"]
    # not in a workspace and not --remote: a hash is looked up on the server
    shown = roar(tmp_path, "show", pipeline["final"][:16], env=env)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"artifact {pipeline['final']}  (registered on {server.url}")
    assert "  made by: @3 /bin/sh -c 'cat mid.txt up.txt > final.txt'" in shown.stdout
    assert f"  session: {digest}" in lines
    assert "other artifacts of that session:" in shown.stdout and "    up.txt  " in shown.stdout
    session = json.loads(roar(tmp_path, "show", digest, "--json", env=env).stdout)
    assert session["kind"] == "session" and len(session["jobs"]) == 3
    # in the workspace, a local hash is shown locally; --remote asks the server
    here = roar(pipeline["root"], "show", pipeline["final"], "--remote", env=env)
    assert here.stdout == shown.stdout


@pytest.mark.ebpf
def test_a_private_dag_is_invisible_to_another_token(pipeline, server, make_token, tmp_path):  # noqa: F811
    alice = make_token("alice")
    done = receipt(register(pipeline, tmp_path, server.url, "final.txt", "--json", token=alice))
    digest = done["session_hash"]
    mine = roar(tmp_path, "show", "--remote", pipeline["final"], env=client_env(tmp_path, server.url, alice))
    assert "made by: @3" in mine.stdout
    for token in (make_token("bob"), None):
        env = client_env(tmp_path, server.url, token)
        shown = roar(tmp_path, "show", "--remote", pipeline["final"], env=env)
        assert shown.returncode == 0    # that the hash exists is public
        assert "made by" not in shown.stdout and digest not in shown.stdout
        assert "cat mid.txt" not in shown.stdout
        assert "no lineage of it is visible to you" in shown.stdout
        for ref in (digest, pipeline["final"]):
            drawn = roar(tmp_path, "dag", "--remote", ref, env=env)
            assert drawn.returncode == 3 and drawn.stdout == "" and "cat mid.txt" not in drawn.stderr
        assert roar(tmp_path, "show", digest, env=env).returncode == 3


@pytest.mark.ebpf
def test_the_verbs_that_never_talk_to_a_server_do_not_import_httpx(tmp_path):
    code = ("import sys, roar.cli.main, roar.cli.entry, roar.runner; "
            "print('httpx' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "False\n"
    for args in (["--help"], ["register", "--help"], ["run", "--", "/bin/true"]):
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", "roar", *args], cwd=tmp_path,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
        assert "roar.cli.main" in imported or args[0] == "run"
        assert not {m for m in imported if m.split(".")[0] in ("httpx", "httpcore")}, args
