"""Refs, the session DAG, staleness and lineage, on made-up records."""

from __future__ import annotations

import os

import pytest

from roar.errors import AmbiguousRef, RefNotFound
from roar.lineage import dag as dagmod
from roar.lineage import queries, refs
from roar.lineage.disk import DiskCheck
from roar.store import index


@pytest.fixture
def pipeline(jobs):
    """prepare: raw -> data; train: data -> model; evaluate: model, data -> metrics."""
    p = jobs.add("prepare", reads={"raw.csv": b"raw"}, writes={"data.csv": b"data"})
    t = jobs.add("train", reads=["data.csv"], writes={"model.pt": b"model"})
    e = jobs.add("evaluate", reads=["model.pt", "data.csv"], writes={"metrics.json": b"{}"})
    return p, t, e


def build(ws):
    conn = ws.index()
    try:
        return dagmod.build(conn, index.current_session(conn), DiskCheck(conn))
    finally:
        conn.close()


def resolve(ws, ref):
    conn = ws.index()
    try:
        return refs.resolve(conn, ref, str(ws.root))
    finally:
        conn.close()


def stale(dag):
    return {j.name: j.stale for j in dag.jobs if j.stale}


def test_edges_and_who_fed_whom(ws, pipeline):
    p, t, e = pipeline
    dag = build(ws)
    assert [j.name for j in dag.jobs] == ["@1", "@2", "@3"]
    assert dag.job(t["uid"]).fed_by == {f'{t["inputs"][0]["hash"]}@{p["uid"]}': p["uid"]}
    assert set(dag.job(e["uid"]).fed_by.values()) == {p["uid"], t["uid"]}
    assert len(dag.artifacts) == 4
    assert dag.artifacts[p["inputs"][0]["hash"]].source
    assert [(os.path.basename(path), job.name) for path, _, job in dag.final_outputs()] == [("metrics.json", "@3")]
    assert stale(dag) == {}


def test_input_changed_on_disk_makes_everything_downstream_stale(ws, pipeline):
    (ws.root / "raw.csv").write_bytes(b"RAW")
    raw = str(ws.root / "raw.csv")
    data = str(ws.root / "data.csv")
    model = str(ws.root / "model.pt")
    assert stale(build(ws)) == {
        "@1": [f"{raw} changed on disk"],
        "@2": [f"{data} was made by @1, which is stale"],
        "@3": [f"{data} was made by @1, which is stale", f"{model} was made by @2, which is stale"],
    }


def test_missing_input_is_not_a_change(ws, pipeline):
    (ws.root / "raw.csv").unlink()
    assert stale(build(ws)) == {}


def test_remade_input_makes_consumers_stale(ws, jobs, pipeline):
    jobs.add("prepare again", reads=["raw.csv"], writes={"data.csv": b"new data"})
    data, model = str(ws.root / "data.csv"), str(ws.root / "model.pt")
    assert stale(build(ws)) == {
        "@2": [f"{data} was re-made by @4"],
        "@3": [f"{data} was re-made by @4", f"{model} was made by @2, which is stale"]}


def test_remade_with_identical_content_is_not_stale(ws, jobs, pipeline):
    jobs.add("prepare again", reads=["raw.csv"], writes={"data.csv": b"data"})
    assert stale(build(ws)) == {}


def test_refs(ws, pipeline):
    p, t, e = pipeline
    assert resolve(ws, "@2") == refs.Ref("job", t["uid"])
    assert resolve(ws, t["uid"][:8]) == refs.Ref("job", t["uid"])
    model = t["outputs"][0]["hash"]
    assert resolve(ws, model[:16]) == refs.Ref("artifact", model)
    assert resolve(ws, "model.pt") == refs.Ref("artifact", model, str(ws.root / "model.pt"))
    assert resolve(ws, "session").kind == "session"
    assert resolve(ws, "session:1") == resolve(ws, "session")


def test_path_ref_is_the_latest_artifact_there(ws, jobs, pipeline):
    newer = jobs.add("prepare again", reads=["raw.csv"], writes={"data.csv": b"new data"})
    assert resolve(ws, "data.csv").id == newer["outputs"][0]["hash"]


def test_bad_refs(ws, pipeline):
    with pytest.raises(RefNotFound, match="no step @9 in the current session"):
        resolve(ws, "@9")
    with pytest.raises(RefNotFound, match="bad step reference @x"):
        resolve(ws, "@x")
    with pytest.raises(RefNotFound, match="never recorded"):
        resolve(ws, "./nowhere.txt")
    (ws.root / "unrecorded.txt").write_text("x")
    with pytest.raises(RefNotFound, match="unrecorded.txt was never recorded"):
        resolve(ws, "unrecorded.txt")


def test_ambiguous_prefix_lists_candidates(ws, jobs):
    # 40 artifacts: some two share a first hex digit
    jobs.add("many", writes={f"f{i}": str(i).encode() for i in range(40)})
    conn = ws.index()
    digit = conn.execute("SELECT substr(hash, 1, 1) AS d FROM artifacts GROUP BY d HAVING COUNT(*) > 1").fetchone()[0]
    conn.close()
    with pytest.raises(AmbiguousRef, match=f"'{digit}' matches several: .*artifact {digit}"):
        resolve(ws, digit)


def test_lineage_back_to_sources(ws, pipeline):
    p, t, e = pipeline
    conn = ws.index()
    lin = queries.lineage(conn, e["outputs"][0]["hash"])
    conn.close()
    assert lin["made_by"] == e["uid"]
    assert {j["uid"] for j in lin["jobs"]} == {p["uid"], t["uid"], e["uid"]}
    assert [s["hash"] for s in lin["sources"]] == [p["inputs"][0]["hash"]]


def test_lineage_crosses_sessions(ws, jobs, pipeline):
    p, t, e = pipeline
    ws.reset()
    again = jobs.add("report", reads=["metrics.json"], writes={"report.md": b"r"})
    conn = ws.index()
    lin = queries.lineage(conn, again["outputs"][0]["hash"])
    conn.close()
    assert len(lin["jobs"]) == 4


def test_composite_output_is_one_node(ws, jobs):
    jobs.add("shard", reads={"in": b"i"}, writes={f"out/part-{i}": bytes([i]) for i in range(10)})
    jobs.add("merge", reads=[f"out/part-{i}" for i in range(10)], writes={"merged": b"m"})
    dag = build(ws)
    kinds = sorted(n.kind for n in dag.artifacts.values())
    assert kinds == ["composite", "file", "file"]
    comp = next(a for a, n in dag.artifacts.items() if n.kind == "composite")
    assert dag.jobs[1].fed_by == {comp: dag.jobs[0].uid}
    conn = ws.index()
    info = queries.artifact(conn, dag.artifacts[comp].hash)
    conn.close()
    assert [m["name"] for m in info["members"]] == [f"part-{i}" for i in range(10)]
    (ws.root / "out/part-3").write_bytes(b"X")
    assert list(stale(build(ws))) == ["@2"]


def test_reading_one_member_of_a_composite_output_links_to_its_producer(ws, jobs):
    jobs.add("shard", reads={"in": b"i"}, writes={f"out/part-{i}": bytes([i]) for i in range(10)})
    jobs.add("peek", reads=["out/part-3"], writes={"peeked": b"p"})
    dag = build(ws)
    member = dag.jobs[1].inputs[0][1]
    assert dag.jobs[1].fed_by == {member: dag.jobs[0].uid}
    [composite] = [a for a, art in dag.artifacts.items() if art.kind == "composite"]
    assert dag.artifacts[member].member_of == composite
    jobs.add("reshard part 3", reads=["in"], writes={"out/part-3": b"new"})
    assert stale(build(ws)) == {"@2": [f"{ws.root}/out/part-3 was re-made by @3"]}


# an input that exists but cannot be read: neither stale nor up to date (docs/lineage.md)

def _status(ws):
    from roar.lineage.status import status

    return status(ws, 15)


def _unknown(st):
    return {s["step"] for s in st["steps"] if s.get("unknown")}


def test_unreadable_input_makes_staleness_unknown_not_ok(ws, pipeline):
    raw = ws.root / "raw.csv"
    raw.unlink()
    raw.symlink_to("raw.csv")      # a loop: the name exists, stat fails with ELOOP
    st = _status(ws)
    assert st["stale"] == []
    assert _unknown(st) == {"@1", "@2", "@3"}
    [why] = [w["message"] for w in st["warnings"] if w["step"] == "@1"]
    assert why.startswith("staleness unknown: ") and f"{raw} could not be read" in why
    assert any("was made by @1, whose staleness is unknown" in w["message"]
               for w in st["warnings"] if w["step"] == "@2")


def test_input_that_cannot_be_hashed_is_unknown(ws, pipeline, monkeypatch):
    from roar.artifacts import hashing

    (ws.root / "raw.csv").write_bytes(b"RAW")   # same size: only a hash can tell

    def refuse(path, *args, **kw):
        raise PermissionError(13, "Permission denied", path)
    monkeypatch.setattr(hashing, "hash_file", refuse)
    st = _status(ws)
    assert st["stale"] == [] and _unknown(st) == {"@1", "@2", "@3"}
    assert "Permission denied" in next(w["message"] for w in st["warnings"] if w["step"] == "@1")


def test_directory_that_cannot_be_looked_into_is_unknown(ws, jobs):
    jobs.add("prepare", reads={"in/raw.csv": b"raw"}, writes={"data.csv": b"data"})
    jobs.add("train", reads=["data.csv"], writes={"model.pt": b"model"})
    (ws.root / "in" / "raw.csv").unlink()
    (ws.root / "in").rmdir()
    (ws.root / "in").symlink_to("in")
    st = _status(ws)
    assert st["stale"] == [] and _unknown(st) == {"@1", "@2"}


def test_changed_input_stays_stale_and_missing_one_is_neither(ws, jobs):
    jobs.add("a", reads={"x.csv": b"x", "y.csv": b"y"}, writes={"a.out": b"a"})
    (ws.root / "x.csv").write_bytes(b"xx")
    (ws.root / "y.csv").unlink()
    st = _status(ws)
    assert [s["step"] for s in st["stale"]] == ["@1"] and _unknown(st) == set()
    assert st["warnings"] == []


def test_status_text_counts_and_flags_unknown_steps(ws, pipeline):
    from roar.cli.status import _text

    raw = ws.root / "raw.csv"
    raw.unlink()
    raw.symlink_to("raw.csv")
    text = _text(_status(ws))
    assert "3 jobs, 0 stale, 3 unknown" in text
    assert text.count("UNKNOWN") == 3 and "staleness unknown" in text
