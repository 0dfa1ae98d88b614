"""context.capture as a whole: shape, never raising, no secret in any record byte."""

from __future__ import annotations

import os
import time

from roar.record import job as jobrec
from roar.record.context import capture, warnings

SECRETS = ["hunter2-db-password", "ghp_" + "Z" * 36, "sk-" + "q" * 40, "s3cr3t-session-cookie",
           "my-private-key-material"]


def _record(context):
    return {"format": jobrec.FORMAT, "version": jobrec.VERSION, "uid": "0" * 16, "type": "run",
            "context": context}


def test_secrets_in_the_environment_never_reach_the_record_bytes(tmp_path):
    env = dict(os.environ, DB_PASSWORD=SECRETS[0], GH=SECRETS[1], OPENAI=SECRETS[2],
               MY_SESSION=SECRETS[3], SSH_PRIVATE=SECRETS[4],
               DATABASE_URL=f"postgres://app:{SECRETS[0]}@db.example/x")
    context = capture(cwd=str(tmp_path), argv=["true"], env=env, processes=[], paths_read=[],
                      cache_dir=tmp_path / "cache")
    data = jobrec.encode(_record(context))
    for secret in SECRETS:
        assert secret.encode() not in data
    assert context["environment"]["variables"]["DATABASE_URL"] == "postgres://<redacted>@db.example/x"


def test_shape_and_warm_cost(tmp_path):
    kwargs = dict(cwd=str(tmp_path), argv=["sort"], env={"PATH": "/usr/bin"},
                  processes=[{"exe": "/usr/bin/sort", "argv": ["sort"]}],
                  paths_read=["/usr/lib/x86_64-linux-gnu/libc.so.6"], cache_dir=tmp_path / ".roar" / "cache")
    context = capture(**kwargs)
    assert set(context) == {"version", "machine", "git", "environment", "packages", "notes"}
    assert context["git"] is None
    started = time.perf_counter()
    assert capture(**kwargs)["machine"] == context["machine"]
    assert time.perf_counter() - started < 0.05


def test_a_failing_part_is_a_note_not_an_exception(tmp_path, monkeypatch):
    from roar.record.context import machine

    def boom(_cache_dir):
        raise RuntimeError("no /proc")

    monkeypatch.setattr(machine, "capture", boom)
    context = capture(cwd=str(tmp_path), argv=[], env={}, processes=[], paths_read=[], cache_dir=tmp_path)
    assert context["machine"] is None
    assert context["notes"] == ["machine: not recorded (RuntimeError: no /proc)"]


def test_dirty_tree_warning():
    assert warnings({"git": {"dirty": True, "dirty_paths": ["a", "b", "c", "d"]}}) == [
        "the git tree is dirty (a, b, c and 1 more): commit to make this job reproducible from the commit"]
    assert warnings({"git": None}) == []
