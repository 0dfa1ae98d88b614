"""Job record encoding: versioned, exact for any file name, clear errors."""

from __future__ import annotations

import os

import msgpack
import pytest

from roar.errors import CorruptStore
from roar.record import job
from roar.store import synthetic


def _record(**fields) -> dict:
    """A valid record, as roar.runner writes them (with a session and step)."""
    return {**synthetic.record("make all"), "session": "0123456789abcdef", "step": 1, **fields}


def test_roundtrip_keeps_non_utf8_paths_exact() -> None:
    odd = os.fsdecode(b"/tmp/caf\xe9\n.txt")
    record = _record(inputs=[{"path": odd}], n=3)
    back = job.decode(job.encode(record))
    assert back == record
    assert os.fsencode(back["inputs"][0]["path"]) == b"/tmp/caf\xe9\n.txt"


def test_newer_version_asks_for_upgrade() -> None:
    data = msgpack.packb({"format": job.FORMAT, "version": job.VERSION + 1})
    with pytest.raises(CorruptStore, match="upgrade roar"):
        job.decode(data, "x.msgpack")


def test_garbage_names_the_file() -> None:
    with pytest.raises(CorruptStore, match="x.msgpack is not a valid job record"):
        job.decode(b"\xc1\xc1", "x.msgpack")


def test_exit_fields() -> None:
    assert job.exit_code_of(3 << 8) == 3
    assert job.exit_code_of(9) == 137
    assert job.exit_fields(9, interrupted=False) == {"code": None, "signal": 9, "status": "killed"}
    assert job.exit_fields(2, interrupted=False)["status"] == "interrupted"   # SIGINT
    assert job.exit_fields(5 << 8, interrupted=True) == {"code": 5, "signal": None, "status": "interrupted"}
    assert job.exit_fields(0, interrupted=False)["status"] == "ok"


def test_json_path_for_non_utf8() -> None:
    odd = os.fsdecode(b"/x/\xff")
    out = job.json_path(odd)
    assert out["path_b64"] == "L3gv/w=="


def _broken(path: tuple, value) -> dict:
    """A valid record with the field at `path` set to `value` (MISSING: removed)."""
    record = _record(inputs=[synthetic.file_entry("/w/a", b"a")], context={"machine": {"cpu": {}}})
    *parents, last = path
    target = record
    for key in parents:
        target = target[key]
    if value is MISSING:
        del target[last]
    else:
        target[last] = value
    return record


MISSING = object()
BROKEN = [   # (field, value, what the message says)
    (("ended_at",), "yesterday", "field `ended_at` is a str, not a number"),
    (("ended_at",), float("nan"), "field `ended_at` is nan, not a Unix time from 1970 to 9999"),
    (("started_at",), 1e300, r"field `started_at` is 1e\+300, not a Unix time"),
    (("duration_s",), float("inf"), "field `duration_s` is inf, not a finite number"),
    (("inputs",), 5, "field `inputs` is an int, not a list"),
    (("inputs", 0), "/w/a", r"field `inputs\[0\]` is a str, not a map"),
    (("inputs", 0, "path"), None, r"field `inputs\[0\].path` is nil, not a str"),
    (("inputs", 0, "hash"), 7, r"field `inputs\[0\].hash` is an int, not a str"),
    (("inputs", 0, "hash"), "../x", r"field `inputs\[0\].hash` is '../x', not a hex digest"),
    (("inputs", 0, "hashes"), {"blake3": 1}, r"field `inputs\[0\].hashes.blake3` is an int, not a str"),
    (("inputs", 0, "size"), -1, r"field `inputs\[0\].size` is -1, out of range"),
    (("inputs", 0, "kind"), "composite", r"field `inputs\[0\].members` is missing"),
    (("step",), 10**19, "field `step` is 10000000000000000000, out of range"),
    (("step",), 0, "field `step` is 0, out of range"),
    (("step",), True, "field `step` is a bool, not an int"),
    (("step",), "1", "field `step` is a str, not an int"),
    (("session",), MISSING, "field `session` is missing"),
    (("session",), None, "field `session` is nil, not a str"),
    (("uid",), "../../etc/x", "field `uid` is '../../etc/x', not 16 hex digits"),
    (("type",), "shell", "field `type` is 'shell', not one of run, build, get, put"),
    (("exit",), [], "field `exit` is a list, not a map"),
    (("exit", "status"), "fine", "field `exit.status` is 'fine', not one of"),
    (("exit_code",), 2**63, "field `exit_code` is 9223372036854775808, out of range"),
    (("processes", 0, "ppid"), "1", r"field `processes\[0\].ppid` is a str, not an int"),
    (("processes",), {"pid": 1}, "field `processes` is a map, not a list"),
    (("warnings",), [1], r"field `warnings\[0\]` is an int, not a str"),
    (("labels",), {"k": ["v"]}, "field `labels.k` is a list, not a str"),
    (("labels",), "k=v", "field `labels` is a str, not a map"),
    (("renamed",), [["a"]], r"field `renamed\[0\]` has 1 items, not 2"),
    (("duration_s",), None, "field `duration_s` is nil, not a number"),
    (("context",), [], "field `context` is a list, not a map"),
    (("context", "machine", "cpu"), "8 cores", "field `context.machine.cpu` is a str, not a map"),
    (("tracer",), None, "field `tracer` is nil, not a map"),
    (("version",), "1", "field `version` is a str, not an int"),
    (("command",), MISSING, "field `command` is missing"),
]


@pytest.mark.parametrize("path, value, message", BROKEN, ids=[f"{'.'.join(map(str, p))}={v!r}"[:40]
                                                             for p, v, _ in BROKEN])
def test_a_record_with_a_bad_field_names_the_file_and_the_field(path, value, message) -> None:
    data = job.encode(_broken(path, value))
    expected = f"^/w/jobs/x.msgpack: {message}.*set aside.*roar db rebuild"
    with pytest.raises(CorruptStore, match=expected) as err:
        job.decode(data, "/w/jobs/x.msgpack")
    assert "\n" not in err.value.message


def test_plain_data_only_no_extension_types_no_deep_nesting() -> None:
    with pytest.raises(CorruptStore, match=r"field `labels\.k` is a ExtType, not plain data"):
        job.decode(msgpack.packb(_record(labels={"k": msgpack.ExtType(5, b"x")})))
    deep: list = []
    for _ in range(900):        # deeper than roar's limit, shallower than msgpack's
        deep = [deep]
    with pytest.raises(CorruptStore, match="nested more than 32 levels deep"):
        job.decode(msgpack.packb(_record(extra=deep)))
    with pytest.raises(CorruptStore, match="has a key that is an int, not a string"):
        job.decode(msgpack.packb({**_record(), 5: "five"}))


def test_the_uid_must_be_the_file_name() -> None:
    record = _record()
    data = job.encode(record)
    assert job.decode(data, f"/w/.roar/jobs/{record['uid']}.msgpack") == record
    with pytest.raises(CorruptStore, match="field `uid` is '[0-9a-f]{16}', not the file's name 'f00dfeed"):
        job.decode(data, "/w/.roar/jobs/f00dfeedf00dfeed.msgpack")


def test_a_file_name_with_a_newline_stays_on_one_line() -> None:
    with pytest.raises(CorruptStore) as err:
        job.decode(job.encode(_record(step="x")), "/w/.roar/jobs/a\nb.msgpack")
    assert "\n" not in err.value.message and "a\\nb.msgpack" in err.value.message


def test_what_roar_writes_is_valid() -> None:
    """Every kind of record roar makes passes, composites and context included."""
    from roar.artifacts import composite

    members = [{"name": f"f{i}", "hash": "ab" * 32, "size": 1} for i in range(3)]
    record = _record(type="get", outputs=[composite.make("/w/d", members)],
                     transfer={"sources": ["s3://b/k"], "verified": True}, exit_code=None,
                     exit={"code": None, "signal": 9, "status": "killed"})
    assert job.decode(job.encode(record)) == record


def test_session_and_label_files_are_checked_too() -> None:
    """validate.check_doc, for the workspace to set a bad session or label file aside."""
    from roar.record import validate

    session = {"format": "roar.session", "version": 1, "id": "00000000000000aa", "seq": 1,
               "started_at": 1.5, "ended_at": None}
    label = {"format": "roar.label", "version": 1, "id": "01796228160779225000-0a1b2c3d", "at": 1.5,
             "target_kind": "job", "target": "0" * 16, "key": "k", "value": None}
    validate.check_doc(session, "session", "/w/sessions/00000000000000aa.msgpack")
    validate.check_doc(label, "label", "/w/labels/01796228160779225000-0a1b2c3d.msgpack")
    for kind, doc, message in (
            ("session", {**session, "seq": 10**19}, "field `seq` is 10000000000000000000, out of range"),
            ("session", {**session, "started_at": "now"}, "field `started_at` is a str, not a number"),
            ("session", {**session, "id": "../x"}, "field `id` is '../x', not 16 hex digits"),
            ("label", {k: v for k, v in label.items() if k != "at"}, "field `at` is missing"),
            ("label", {**label, "target_kind": "user"}, "field `target_kind` is 'user', not one of"),
            ("label", {**label, "value": 5}, "field `value` is an int, not a str")):
        with pytest.raises(CorruptStore, match=f"^/w/{kind}s/x.msgpack: {message}.*set aside"):
            validate.check_doc(doc, kind, f"/w/{kind}s/x.msgpack")
