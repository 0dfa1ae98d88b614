"""The session DAG has no cycle, whatever the jobs did: one node per artifact version
(docs/lineage.md, "Artifact versions"), checked on the shapes that used to loop (a copy
with its input's bytes, a file re-made with bytes it had before, get then put to the same
place, members of a directory) and on many generated sessions, in every `roar dag` format.

The graph is checked here by its own walk, not by the builder's assertion: both must hold."""

from __future__ import annotations

import io
import json
import random
import re

import pytest

from roar.lineage import dag as dagmod
from roar.lineage import dagformat, dagjson, facts
from roar.lineage.disk import DiskCheck
from roar.store import synthetic


def json_graph(conn, sid):
    out = io.StringIO()
    dagjson.write(conn, sid, facts.stale_jobs(conn, sid, DiskCheck(conn)), out)
    return json.loads(out.getvalue())


def cycle(edges: list[tuple[str, str]]) -> list[str] | None:
    """A cycle of the directed graph, as the nodes along it, or None."""
    after: dict[str, list[str]] = {}
    for a, b in edges:
        after.setdefault(a, []).append(b)
    state: dict[str, int] = {}     # 1: on the current path, 2: done
    for start in list(after):
        if state.get(start):
            continue
        stack = [(start, iter(after.get(start, ())))]
        path = [start]
        state[start] = 1
        while stack:
            node, nexts = stack[-1]
            nxt = next(nexts, None)
            if nxt is None:
                stack.pop()
                path.pop()
                state[node] = 2
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, iter(after.get(nxt, ()))))
    return None


def dot_edges(text: str) -> list[tuple[str, str]]:
    return re.findall(r'^  "([^"]+)" -> "([^"]+)"', text, re.M)


def mermaid_edges(text: str) -> list[tuple[str, str]]:
    return re.findall(r"^  (\w+) -\.?-> (\w+)$", text, re.M)


def check_session(conn, sid):
    """Every format of the session's graph is acyclic, and JSON and objects agree."""
    dag = dagmod.build(conn, sid, DiskCheck(conn))    # asserts check_acyclic
    graph = json_graph(conn, sid)
    edges = [(e["from"], e["to"]) for e in graph["edges"]]
    assert cycle(edges) is None, cycle(edges)
    assert all(a != b for a, b in edges)
    ids = {n["id"] for n in graph["nodes"]}
    assert all(a in ids and b in ids for a, b in edges)
    order = {f"job:{j.uid}": j.position for j in dag.jobs}
    made = {n["id"]: order[f"job:{n['producer']}"] for n in graph["nodes"] if n.get("producer")}
    for a, b in edges:     # every edge goes forward in job order
        if b in order:
            assert made.get(a, -1) < order[b], (a, b)
        if a in order:
            assert made[b] == order[a], (a, b)
    arts = [n for n in graph["nodes"] if n["kind"] != "job"]
    keys = [n["id"].removeprefix("artifact:") if n["kind"] != "location" else n["id"] for n in arts]
    assert keys == list(dag.artifacts)
    assert [(n["hash"], n["producer"], n["source"], n["paths"]) for n in arts] == [
        (a.hash, a.producer, a.source, a.paths) for a in dag.artifacts.values()]
    for render, parse in ((dagformat.to_dot, dot_edges), (dagformat.to_mermaid, mermaid_edges)):
        found = parse(render(dag))
        assert len(found) == len(edges)
        assert cycle(found) is None
    return dag, graph


def check_all(ws):
    conn = ws.index()
    try:
        return [check_session(conn, sid) for (sid,) in conn.execute("SELECT id FROM sessions ORDER BY seq")]
    finally:
        conn.close()


def test_a_copy_with_its_inputs_bytes_is_a_second_version(ws, jobs):
    jobs.add("make", writes={"a": b"same"})
    jobs.add("cp a b", reads=["a"], writes={"b": b"same"})
    jobs.add("cat b", reads=["b"], writes={"c": b"C"})
    [(dag, graph)] = check_all(ws)
    make, cp, cat = dag.jobs
    [(_, read)] = cp.inputs
    [(_, wrote)] = cp.outputs
    assert read != wrote and dag.artifacts[read].hash == dag.artifacts[wrote].hash
    assert (dag.artifacts[read].producer, dag.artifacts[wrote].producer) == (make.uid, cp.uid)
    # the reader of b reads the copy, made by cp
    assert cat.fed_by == {wrote: cp.uid}
    assert "(from @2)" in dagformat.to_text(dag).splitlines()[-2]


def test_a_copy_of_a_source_with_its_bytes(ws, jobs):
    jobs.add("cp raw copy", reads={"raw": b"r"}, writes={"copy": b"r"})
    [(dag, graph)] = check_all(ws)
    [node] = [n for n in graph["nodes"] if n["kind"] == "file" and n["source"]]
    assert node["id"] == f"artifact:{node['hash']}" and node["producer"] is None
    [made] = [n for n in graph["nodes"] if n["kind"] == "file" and not n["source"]]
    assert made["id"] == f"artifact:{node['hash']}@{dag.jobs[0].uid}"


def test_bytes_made_again_after_another_content(ws, jobs):
    """@1 writes A, @2 reads it and writes B there, @3 reads B and writes A back, @4 reads A."""
    jobs.add("write A", writes={"f": b"A"})
    jobs.add("A to B", reads=["f"], writes={"f": b"B"})
    jobs.add("B to A", reads=["f"], writes={"f": b"A"})
    jobs.add("read", reads=["f"], writes={"g": b"g"})
    [(dag, _)] = check_all(ws)
    first, _, back, read = dag.jobs
    assert set(read.fed_by.values()) == {back.uid}
    versions = [n.producer for n in dag.artifacts.values() if n.hash == dag.artifacts[read.inputs[0][1]].hash]
    assert versions == [first.uid, back.uid]


def test_rewrite_in_place_with_the_same_bytes(ws, jobs):
    jobs.add("make", writes={"f": b"x"})
    jobs.add("touch up", reads=["f"], writes={"f": b"x"})
    jobs.add("read", reads=["f"], writes={"out": b"o"})
    [(dag, _)] = check_all(ws)
    assert set(dag.jobs[2].fed_by.values()) == {dag.jobs[1].uid}


def transfer(ws, kind, source, dest, content):
    """A get (URL -> local file) or put (local file -> remote copy) record, as roar.transfer makes."""
    path = str(ws.root / (dest if kind == "get" else source))
    if kind == "get":
        (ws.root / dest).write_bytes(content)
        remote = synthetic.file_entry(source, content)
        record = synthetic.record(f"roar get {source} {dest}", [remote], [synthetic.file_entry(path)],
                                  kind="get")
    else:
        remote = synthetic.file_entry(dest, content)
        record = synthetic.record(f"roar put {source} {dest}", [synthetic.file_entry(path)], [remote],
                                  kind="put")
    return ws.add_job(record)


def test_get_and_put_of_the_same_place(ws, jobs):
    transfer(ws, "get", "file:///srv/x", "x", b"X")
    jobs.add("cp x y", reads=["x"], writes={"y": b"X"})
    transfer(ws, "put", "y", "file:///srv/x", b"X")
    transfer(ws, "get", "file:///srv/x", "x2", b"X")
    [(dag, graph)] = check_all(ws)
    locations = sorted((n["id"], n["source"]) for n in graph["nodes"] if n["kind"] == "location")
    put_uid = dag.jobs[2].uid
    assert locations == [("location:file:///srv/x", True), (f"location:file:///srv/x@{put_uid}", False)]


def test_members_of_a_directory_are_versions_of_the_job_that_made_it(ws, jobs):
    jobs.add("shard", reads={"in": b"i"}, writes={f"out/p{i}": bytes([i]) for i in range(9)})
    jobs.add("copy a shard", reads=["out/p3"], writes={"out/p3": bytes([3])})
    jobs.add("peek", reads=["out/p3"], writes={"peek": b"p"})
    [(dag, graph)] = check_all(ws)
    shard, copy, peek = dag.jobs
    member = copy.inputs[0][1]
    assert dag.artifacts[member].member_of == shard.outputs[0][1]
    assert peek.fed_by == {copy.outputs[0][1]: copy.uid}
    assert [e for e in graph["edges"] if e["role"] == "member"] == [
        {"from": f"artifact:{shard.outputs[0][1]}", "to": f"artifact:{member}", "role": "member"}]


def test_sessions_after_a_reset_start_from_sources(ws, jobs):
    jobs.add("make", writes={"a": b"A"})
    ws.reset()
    jobs.add("cp a b", reads=["a"], writes={"b": b"A"})
    first, second = check_all(ws)
    [(_, read)] = second[0].jobs[0].inputs
    assert second[0].artifacts[read].source


def test_the_fixture_sessions_of_the_other_tests(ws, jobs):
    """The workspaces other lineage tests build: a pipeline and the busy session (bytes made
    again, members read, a second session)."""
    from tests.unit.test_session_facts import busy_session

    jobs.add("prepare", reads={"raw.csv": b"raw"}, writes={"data.csv": b"data"})
    jobs.add("train", reads=["data.csv"], writes={"model.pt": b"model"})
    jobs.add("evaluate", reads=["model.pt", "data.csv"], writes={"metrics.json": b"{}"})
    ws.reset()
    busy_session(ws, jobs)
    (ws.root / "raw.csv").write_bytes(b"changed")     # and stale, for the stale marks
    sessions = check_all(ws)
    assert len(sessions) == 3 and any(j.stale for d, _ in sessions for j in d.jobs)


@pytest.mark.parametrize("seed", range(60))
def test_generated_sessions(ws, jobs, seed):
    """Random jobs over a few paths and contents: copies, rewrites in place, bytes coming
    back, directory members, transfers and resets."""
    rnd = random.Random(seed)
    paths = ["a", "b", "c", "d/x0", "d/x1"]
    contents = [b"1", b"2", b"3"]
    made: set[str] = set()
    for step in range(12):
        what = rnd.random()
        if what < 0.06:
            ws.reset()
            continue
        if what < 0.12:
            transfer(ws, "get", f"http://h/{rnd.choice('uv')}", rnd.choice(paths[:3]), rnd.choice(contents))
            continue
        if what < 0.18 and made:
            src = rnd.choice(sorted(made))
            transfer(ws, "put", src, f"file:///srv/{rnd.choice('uv')}", (ws.root / src).read_bytes())
            continue
        if what < 0.24:
            jobs.add(f"shard {step}", reads=rnd.sample(sorted(made), min(len(made), 1)),
                     writes={f"d/x{i}": rnd.choice(contents) for i in range(8)})
            made.update(f"d/x{i}" for i in range(8))
            continue
        reads = rnd.sample(sorted(made), min(len(made), rnd.randint(0, 2)))
        writes = {p: rnd.choice(contents) for p in rnd.sample(paths, rnd.randint(1, 2))}
        if reads and rnd.random() < 0.5:      # a copy: an output with an input's bytes
            writes[rnd.choice(paths)] = (ws.root / reads[0]).read_bytes()
        jobs.add(f"job {step}", reads=reads, writes=writes)
        made.update(writes)
    sessions = check_all(ws)
    conn = ws.index()
    assert len(sessions) == conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
    assert sum(len(d.jobs) for d, _ in sessions) == conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    conn.close()


def test_a_cycle_is_caught_by_the_builders_check():
    """check_acyclic is not vacuous: an input made by a later job fails it."""
    key = "h@" + "b" * 16
    early = dagmod.JobNode("a" * 16, 1, "run", "x", "ok", 0, 0.0, inputs=[("/f", key)], position=0)
    late = dagmod.JobNode("b" * 16, 2, "run", "y", "ok", 0, 0.0, outputs=[("/f", key)], position=1)
    nodes = {"h@" + "b" * 16: dagmod.ArtifactNode("h", "file", 1, producers=["b" * 16])}
    with pytest.raises(AssertionError):
        dagmod.check_acyclic([early, late], nodes)
