"""A job record that decodes but breaks the format (docs/record-format.md, "Validation")
is named and set aside; it never blocks another command, and the good jobs stay.

Each test makes a real workspace with real traced jobs, then plants next to them a
copy of a real record with one field broken, the way anyone who can write in
`.roar/jobs/` could."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import msgpack
import pytest

from tests.security.conftest import one_line_error, roar

pytestmark = pytest.mark.root

BAD_UID = "badbadbadbad0001"
MISSING = object()
DEEP: list = []
for _ in range(100):
    DEEP = [DEEP]

BROKEN = [   # (field path in the record, the value planted (MISSING: removed), the field named)
    (("ended_at",), "yesterday", "ended_at"),
    (("inputs",), 5, "inputs"),
    (("step",), 10**19, "step"),
    (("outputs", 0, "path"), None, "outputs[0].path"),
    (("session",), MISSING, "session"),
    (("started_at",), float("nan"), "started_at"),
    (("step",), "2", "step"),
    (("type",), "shell", "type"),
    (("exit_code",), 2**63, "exit_code"),
    (("exit",), "ok", "exit"),
    (("inputs", 0, "hashes"), {"blake3": 5}, "inputs[0].hashes.blake3"),
    (("inputs", 0, "hash"), "' OR 1=1 --", "inputs[0].hash"),
    (("processes", 0, "pid"), "1", "processes[0].pid"),
    (("labels",), {"k": ["v"]}, "labels.k"),
    (("warnings",), "oops", "warnings"),
    (("context", "machine"), "a laptop", "context.machine"),
    (("version",), "1", "version"),
    (("uid",), "../../../tmp/x", "uid"),
    (("labels",), {"k": msgpack.ExtType(1, b"x")}, "labels.k"),
    (("tracer",), DEEP, "tracer" + "[0]" * 18 + "..."),     # the path is cut short
]
IDS = [f"{'.'.join(map(str, path))}={value!r}"[:40] if value is not MISSING else f"{path[0]} missing"
       for path, value, _ in BROKEN]


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "internal error" not in err, err
    return proc


def make_workspace(root: Path) -> list[str]:
    """Two real jobs, @1 writing `out` and @2 reading it; their uids."""
    ok(roar("run", "-q", "--", "sh", "-c", "echo hi > out", cwd=root))
    ok(roar("run", "-q", "--", "sh", "-c", "cat out > out2", cwd=root))
    return [job["uid"] for job in log(root)]


def log(root: Path) -> list[dict]:
    return json.loads(ok(roar("log", "--json", cwd=root)).stdout)


def jobs_dir(root: Path) -> Path:
    return root / ".roar" / "jobs"


def broken_copy(root: Path, uid: str, path: tuple, value) -> dict:
    """The real record of job `uid` with the field at `path` set to `value`."""
    record = copy.deepcopy(msgpack.unpackb((jobs_dir(root) / f"{uid}.msgpack").read_bytes(), raw=False))
    *parents, last = path
    target = record
    for key in parents:
        target = target[key]
    if value is MISSING:
        del target[last]
    else:
        target[last] = value
    return record


def plant(root: Path, name: str, record: dict) -> Path:
    path = jobs_dir(root) / f"{name}.msgpack"
    path.write_bytes(msgpack.packb(record, use_bin_type=True))
    return path


@pytest.mark.parametrize("path, value, field", BROKEN, ids=IDS)
def test_a_bad_record_is_set_aside_and_blocks_no_command(tmp_path, path, value, field):
    good = make_workspace(tmp_path)
    record = broken_copy(tmp_path, good[0], path, value)
    record.setdefault("uid", BAD_UID)
    if path != ("uid",):
        record["uid"] = BAD_UID
    bad = plant(tmp_path, BAD_UID, record)
    named = f"jobs/{BAD_UID}.msgpack"

    # the next job is recorded: the first command after the plant sets the record aside
    ok(roar("run", "-q", "--", "sh", "-c", "cat out2 > out3", cwd=tmp_path))
    everyone = {job["uid"] for job in log(tmp_path)}
    assert len(everyone) == 3 and set(good) < everyone and BAD_UID not in everyone

    status = ok(roar("status", cwd=tmp_path)).stdout.decode()
    assert f"unreadable record {named}: " in status and f"field `{field}`" in status
    assert "set aside" in status and "roar db rebuild" in status
    assert "3 jobs" in status
    for args in (["show", "@1"], ["show", "@3"], ["show", "@1", "--json"], ["dag"], ["dag", "-f", "json"],
                 ["log"]):
        ok(roar(*args, cwd=tmp_path))

    rebuilt = ok(roar("db", "rebuild", cwd=tmp_path)).stdout.decode()
    assert rebuilt.startswith("rebuilt the index: 3 jobs; 1 bad record set aside:")
    assert f"{bad}: field `{field}` " in rebuilt
    assert {job["uid"] for job in log(tmp_path)} == everyone
    unreadable = json.loads(ok(roar("status", "--json", cwd=tmp_path)).stdout)["unreadable_records"]
    assert [u["file"] for u in unreadable] == [named] and f"`{field}`" in unreadable[0]["message"]
    assert json.loads(ok(roar("db", "rebuild", "--json", cwd=tmp_path)).stdout) == {
        "jobs": 3, "unreadable_records": [named]}
    assert bad.exists()        # set aside, never deleted


@pytest.mark.parametrize("path, value, field", BROKEN[:5], ids=IDS[:5])
def test_db_rebuild_as_the_first_command_sets_it_aside(tmp_path, path, value, field):
    good = make_workspace(tmp_path)
    plant(tmp_path, BAD_UID, {**broken_copy(tmp_path, good[0], path, value), "uid": BAD_UID})
    rebuilt = ok(roar("db", "rebuild", cwd=tmp_path)).stdout.decode()
    assert "rebuilt the index: 2 jobs; 1 bad record set aside:" in rebuilt
    assert f"{BAD_UID}.msgpack: field `{field}` " in rebuilt
    assert [job["uid"] for job in log(tmp_path)] == good


def test_a_record_cannot_pose_as_another_job(tmp_path):
    """A copy of @1 under another file name, claiming @1's uid and a new command, is refused:
    `roar show @1` still shows the real job."""
    good = make_workspace(tmp_path)
    impostor = {**broken_copy(tmp_path, good[1], ("command",), "rm -rf /"), "step": 9}
    plant(tmp_path, BAD_UID, impostor)
    status = ok(roar("status", cwd=tmp_path)).stdout.decode()
    assert f"field `uid` is '{good[1]}', not the file's name '{BAD_UID}'" in status
    shown = json.loads(ok(roar("show", "@1", "--json", cwd=tmp_path)).stdout)
    assert shown["uid"] == good[1] and shown["command"] == "sh -c 'echo hi > out'"
    assert "rm -rf" not in ok(roar("log", cwd=tmp_path)).stdout.decode()


@pytest.mark.parametrize("path, value, field", BROKEN[:5] + BROKEN[-3:], ids=IDS[:5] + IDS[-3:])
def test_showing_a_record_broken_after_it_was_indexed_is_one_line_exit_5(tmp_path, path, value, field):
    good = make_workspace(tmp_path)
    first = good[1]                 # log lists the newest first: @1 is the second
    record = broken_copy(tmp_path, first, path, value)
    if path != ("uid",):
        record["uid"] = first
    bad = plant(tmp_path, first, record)
    for args in (["show", "@1"], ["show", "@1", "--json"], ["show", first]):
        proc = roar(*args, cwd=tmp_path)
        line = one_line_error(proc)
        assert proc.returncode == 5, line
        assert f"{bad}: field `{field}` " in line and "roar db rebuild" in line
    ok(roar("show", "@2", cwd=tmp_path))
    rebuilt = ok(roar("db", "rebuild", cwd=tmp_path)).stdout.decode()
    assert "rebuilt the index: 1 job; 1 bad record set aside:" in rebuilt
    assert one_line_error(roar("show", "@1", cwd=tmp_path)).startswith("roar: no step @1")
    ok(roar("show", "@2", cwd=tmp_path))


# session files and label changes are checked the same way


@pytest.mark.parametrize("kind, doc", [
    ("sessions", {"format": "roar.session", "version": 1, "id": "0123456789abcdef", "seq": 10**19,
                  "started_at": 1.0}),
    ("labels", {"format": "roar.label", "version": 1, "id": "00000000000000000001-abcdef01",
                "target_kind": "job", "target": "x", "key": "k", "value": "v"}),   # no `at`
    ("sessions", b"\xc1not msgpack"),
])
def test_a_bad_session_or_label_file_is_set_aside(tmp_path: Path, kind: str, doc) -> None:
    uids = make_workspace(tmp_path)
    name = "0123456789abcdef" if kind == "sessions" else "00000000000000000001-abcdef01"
    (tmp_path / ".roar" / kind / f"{name}.msgpack").write_bytes(doc if isinstance(doc, bytes)
                                                                 else msgpack.packb(doc))
    ok(roar("run", "-q", "--", "true", cwd=tmp_path))
    for args in (["status"], ["log"], ["show", "@1"], ["db", "rebuild"]):
        ok(roar(*args, cwd=tmp_path))
    status = json.loads(ok(roar("status", "--json", cwd=tmp_path)).stdout)
    assert [b["file"] for b in status["unreadable_records"]] == [f"{kind}/{name}.msgpack"]
    assert set(uids) <= {job["uid"] for job in log(tmp_path)}


def test_a_record_from_elsewhere_does_not_become_the_current_session(tmp_path: Path) -> None:
    """A valid record of an unknown session (one a cloned repository carried) is indexed,
    but new jobs keep joining the user's own session."""
    uids = make_workspace(tmp_path)
    foreign = broken_copy(tmp_path, uids[0], ("session",), "feedfacefeedface")
    foreign["uid"] = BAD_UID
    (jobs_dir(tmp_path) / f"{BAD_UID}.msgpack").write_bytes(msgpack.packb(foreign))
    ok(roar("run", "-q", "--", "true", cwd=tmp_path))
    jobs = {job["uid"]: job for job in log(tmp_path)}
    assert BAD_UID in jobs
    newest = max(jobs.values(), key=lambda j: j.get("ended_at") or 0)
    assert newest["session"] == jobs[uids[0]]["session"] != "feedfacefeedface"
    assert newest["step"] == "@3"


def test_a_planted_huge_step_is_refused(tmp_path: Path) -> None:
    uids = make_workspace(tmp_path)
    planted = broken_copy(tmp_path, uids[0], ("step",), 2**63 - 1)
    planted["uid"] = BAD_UID
    (jobs_dir(tmp_path) / f"{BAD_UID}.msgpack").write_bytes(msgpack.packb(planted))
    proc = ok(roar("run", "--", "true", cwd=tmp_path))
    assert "@3 " in proc.stderr.decode()
