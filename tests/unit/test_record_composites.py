"""Composite grouping is decided when the record is written and stored in it (record version
2); the index and a rebuild follow the record, and version 1 records are still grouped by
the rule when indexed (docs/record-format.md, "Composites, decided at write time")."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from roar.artifacts import composite
from roar.errors import CorruptStore
from roar.record import composites, job
from roar.store import synthetic


def shard(jobs, n=9, command="shard"):
    return jobs.add(command, reads={"in": b"i"}, writes={f"out/p{i}": bytes([i]) for i in range(n)})


def composite_rows(ws):
    conn = ws.index()
    try:
        return conn.execute("SELECT j.command, f.role, f.path, f.artifact FROM job_files f JOIN jobs j"
                            " ON j.uid = f.job WHERE f.composite IS NULL AND f.artifact IN"
                            " (SELECT hash FROM artifacts WHERE kind = 'composite') ORDER BY 1, 2").fetchall()
    finally:
        conn.close()


def test_the_record_written_holds_its_grouping(ws, jobs):
    rec = shard(jobs)
    on_disk = job.decode(open(ws.record_path(rec["uid"]), "rb").read())
    assert on_disk["version"] == job.VERSION == 2
    [group] = on_disk["composites"]["outputs"]
    assert on_disk["composites"]["inputs"] == []
    assert group["path"] == str(ws.root / "out") and group["members"] == [f"p{i}" for i in range(9)]
    files = {o["path"].rpartition("/")[2]: o for o in on_disk["outputs"]}
    listing = [(m, files[m]["hash"], files[m]["size"]) for m in group["members"]]
    assert group["hash"] == composite.tree_hash(listing)
    # inputs and outputs are the plain files, as every reader knows them
    assert len(on_disk["outputs"]) == 9 and all(o.get("kind", "file") == "file" for o in on_disk["outputs"])
    assert composite_rows(ws) == [("shard", "output", str(ws.root / "out"), group["hash"])]


def test_the_index_and_a_rebuild_follow_the_record_not_the_rule(ws, jobs):
    """A writer that grouped differently (no composite for 9 files, one for 3) is what the
    index shows, before and after `roar db rebuild`."""
    entries = []
    for i in range(9):
        (ws.root / "out").mkdir(exist_ok=True)
        (ws.root / "out" / f"p{i}").write_bytes(bytes([i]))
        entries.append(synthetic.file_entry(str(ws.root / "out" / f"p{i}")))
    record = synthetic.record("ungrouped", outputs=entries, cwd=str(ws.root))
    record["composites"] = {"inputs": [], "outputs": []}
    ws.add_job(record)
    small = [synthetic.file_entry(str(ws.root / "out" / f"p{i}")) for i in range(3)]
    hash_ = composite.tree_hash((f"p{i}", e["hash"], e["size"]) for i, e in enumerate(small))
    grouped = synthetic.record("three", inputs=small, cwd=str(ws.root))
    grouped["composites"] = {"inputs": [{"path": str(ws.root / "out"), "hash": hash_, "size": 3,
                                         "members": ["p0", "p1", "p2"]}], "outputs": []}
    ws.add_job(grouped)
    expected = [("three", "input", str(ws.root / "out"), hash_)]
    assert composite_rows(ws) == expected
    ws.rebuild()
    assert composite_rows(ws) == expected


def test_a_version_1_record_is_grouped_by_the_rule_when_indexed(ws, jobs):
    for n, command in ((8, "eight"), (7, "seven")):
        entries = []
        for i in range(n):
            path = ws.root / command / f"p{i}"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(bytes([i]))
            entries.append(synthetic.file_entry(str(path)))
        record = synthetic.record(command, outputs=entries, cwd=str(ws.root))
        record["version"] = 1
        ws.add_job(record)
        on_disk = job.decode(open(ws.record_path(record["uid"]), "rb").read())
        assert on_disk["version"] == 1 and "composites" not in on_disk
    assert [(c, p) for c, _, p, _ in composite_rows(ws)] == [("eight", str(ws.root / "eight"))]
    ws.rebuild()
    assert [(c, p) for c, _, p, _ in composite_rows(ws)] == [("eight", str(ws.root / "eight"))]


def test_a_transferred_directory_stays_an_inline_composite():
    members = [{"name": f"f{i}", "hash": "ab" * 32, "size": 1} for i in range(3)]
    record = {**synthetic.record("roar get file:///d d", kind="get"), "session": "0123456789abcdef",
              "step": 1, "outputs": [composite.make("/w/d", members)]}
    back = job.decode(job.encode(record))
    assert back["composites"] == {"inputs": [], "outputs": []}
    singles, groups = composites.split(back, "outputs")
    assert groups == [] and singles == back["outputs"]


def _v2(**fields):
    record = {**synthetic.record("make"), "session": "0123456789abcdef", "step": 1,
              "outputs": [{"path": f"/w/d/f{i}", "hash": "ab" * 32, "size": 1, "hashes": {}, "pids": []}
                          for i in range(3)]}
    record.update(fields)
    return record


@pytest.mark.parametrize("grouping, message", [
    (None, "field `composites` is missing"),
    ({"inputs": [], "outputs": [{"path": "/w/d", "hash": "cd" * 32, "size": 1, "members": ["nope"]}]},
     r"field `composites.outputs\[0\].members\[0\]` names '/w/d/nope', which is not one of the hashed"
     r" `outputs`"),
    ({"inputs": [{"path": "/w/d", "hash": "cd" * 32, "size": 1, "members": ["f0"]}], "outputs": []},
     r"names '/w/d/f0', which is not one of the hashed `inputs`"),
    ({"inputs": [], "outputs": [{"path": "/w/d", "hash": "cd" * 32, "size": 2, "members": ["f0"]},
                                {"path": "/w/d", "hash": "ef" * 32, "size": 1, "members": ["f0"]}]},
     "already a member of a composite"),
    ({"inputs": [], "outputs": [{"path": "/w/d", "hash": "XY", "size": 1, "members": ["f0"]}]},
     r"field `composites.outputs\[0\].hash` is 'XY', not a hex digest"),
    ({"outputs": []}, "field `composites.inputs` is missing"),
])
def test_a_bad_grouping_is_refused_naming_the_field(grouping, message):
    import msgpack

    record = _v2()
    if grouping is not None:
        record["composites"] = grouping
    data = msgpack.packb(record, use_bin_type=True)     # as written by someone else, not job.encode
    with pytest.raises(CorruptStore, match=message):
        job.decode(data, "/w/.roar/jobs/x.msgpack")


def test_decide_is_done_once():
    record = _v2(outputs=[{"path": f"/w/d/f{i}", "hash": f"{i:02x}" * 32, "size": 1, "hashes": {}, "pids": []}
                          for i in range(8)])
    composites.decide(record)
    first = json.dumps(record["composites"])
    record["outputs"].pop()        # the files change after the record was written: the grouping does not
    composites.decide(record)
    assert json.dumps(record["composites"]) == first


def test_show_and_dag_read_a_version_2_record(ws, jobs):
    shard(jobs)
    jobs.add("peek", reads=["out/p3"], writes={"peek": b"p"})
    run = [sys.executable, "-m", "roar"]
    shown = json.loads(subprocess.run([*run, "show", "@1", "--json"], cwd=ws.root, capture_output=True,
                                      text=True, check=True).stdout)
    assert shown["version"] == 2 and len(shown["outputs"]) == 9
    assert [o["read_by"] for o in shown["outputs"] if o["path"].endswith("/p3")] != [[]]
    dag = json.loads(subprocess.run([*run, "dag", "--json"], cwd=ws.root, capture_output=True, text=True,
                                    check=True).stdout)
    assert [n["paths"] for n in dag["nodes"] if n["kind"] == "composite"] == [[str(ws.root / "out")]]
    assert [e["role"] for e in dag["edges"]].count("member") == 1
