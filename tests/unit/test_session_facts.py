"""The session facts the index keeps as jobs are indexed (producer, rewritten, read_later,
path_writes), and what status, `dag --json` and staleness read from them."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import time

import pytest

from roar.lineage import dag as dagmod
from roar.lineage import dagjson, facts
from roar.lineage.disk import DiskCheck
from roar.lineage.status import status
from roar.store import index, synthetic

FACT_ROWS = ("SELECT job, role, path, session_id, seq, producer, rewritten, read_later FROM job_files"
             " ORDER BY job, role, path")


def snapshot(ws):
    conn = ws.index()
    try:
        return (conn.execute(FACT_ROWS).fetchall(),
                conn.execute("SELECT * FROM path_writes ORDER BY 1, 2").fetchall())
    finally:
        conn.close()


def busy_session(ws, jobs):
    """Re-made paths (other bytes, then the same bytes), a composite output and a member read,
    and a second session."""
    jobs.add("prepare", reads={"raw.csv": b"raw"}, writes={"data.csv": b"data"})
    jobs.add("train", reads=["data.csv"], writes={"model.pt": b"model"})
    jobs.add("shard", reads=["model.pt"], writes={f"out/p{i}": bytes([i]) for i in range(9)})
    jobs.add("peek", reads=["out/p3"], writes={"peek": b"p"})
    jobs.add("prepare again", reads=["raw.csv"], writes={"data.csv": b"other"})
    jobs.add("prepare back", reads=["raw.csv"], writes={"data.csv": b"data"})
    jobs.add("evaluate", reads=["model.pt", "data.csv"], writes={"metrics": b"{}"})
    ws.reset()
    jobs.add("report", reads=["metrics"], writes={"report": b"r"})
    jobs.add("report again", reads=["metrics"], writes={"report": b"r2"})


def test_facts_kept_while_indexing_equal_a_recomputation_and_a_rebuild(ws, jobs):
    busy_session(ws, jobs)
    jobs.add("append", reads=["report"], writes={"report": b"r3"})    # in place
    kept = snapshot(ws)
    conn = ws.index()
    conn.execute("BEGIN")
    index.refresh_facts(conn)
    recomputed = (conn.execute(FACT_ROWS).fetchall(),
                  conn.execute("SELECT * FROM path_writes ORDER BY 1, 2").fetchall())
    conn.execute("ROLLBACK")
    conn.close()
    assert kept == recomputed
    ws.rebuild()
    assert snapshot(ws) == kept


def test_the_facts(ws, jobs):
    busy_session(ws, jobs)
    conn = ws.index()
    uid = {cmd: u for cmd, u in conn.execute("SELECT command, uid FROM jobs")}
    fact = {(cmd, role, os.path.basename(index.from_db_path(path))): (producer, rewritten, read_later)
            for cmd, role, path, producer, rewritten, read_later in conn.execute(
                "SELECT j.command, f.role, f.path, f.producer, f.rewritten, f.read_later FROM job_files f"
                " JOIN jobs j ON j.uid = f.job WHERE f.composite IS NULL")}
    conn.close()
    # train read data.csv made by prepare; a later job rewrote data.csv, so the input is rewritten
    assert fact["train", "input", "data.csv"] == (uid["prepare"], 1, 0)
    # prepare's data.csv was read later (by train) and rewritten later (by prepare again)
    assert fact["prepare", "output", "data.csv"] == (None, 1, 1)
    # the last write of data.csv holds the original bytes again: evaluate's producer is that job
    assert fact["evaluate", "input", "data.csv"] == (uid["prepare back"], 0, 0)
    # peek read one member of shard's composite output: shard made it
    assert fact["peek", "input", "p3"] == (uid["shard"], 0, 0)
    # the facts stop at the session: report read metrics made in session 1, so no producer here
    assert fact["report", "input", "metrics"] == (None, 0, 0)
    assert fact["report", "output", "report"][1:] == (1, 0)


def test_staleness_from_the_facts(ws, jobs):
    busy_session(ws, jobs)
    conn = ws.index()
    sid = conn.execute("SELECT id FROM sessions ORDER BY seq LIMIT 1").fetchone()[0]
    stale = facts.stale_jobs(conn, sid, DiskCheck(conn))
    conn.close()
    # train read data.csv, re-made with other bytes and then the same bytes: not a change
    assert stale == {}
    (ws.root / "data.csv").write_bytes(b"edited")
    conn = ws.index()
    evaluate = conn.execute("SELECT uid FROM jobs WHERE command = 'evaluate'").fetchone()[0]
    stale = facts.stale_jobs(conn, sid, DiskCheck(conn))
    conn.close()
    # only the last reader compares data.csv with the disk: for train, later jobs re-made it
    assert stale == {evaluate: [f"{ws.root / 'data.csv'} changed on disk"]}


def test_status_lists_the_last_outputs_and_counts_them_all(ws, jobs):
    for i in range(5):
        jobs.add(f"make {i}", writes={f"f{i}": bytes([i])})
    full = status(ws)
    short = status(ws, 2)
    assert [o["path"] for o in full["outputs"]] == [str(ws.root / f"f{i}") for i in range(5)]
    assert short["outputs"] == full["outputs"][-2:] and short["outputs_total"] == 5
    assert short["steps"] == full["steps"][-2:] and short["session"]["jobs"] == 5
    assert "outputs_total" not in full


def test_streamed_json_is_the_dag(ws, jobs):
    busy_session(ws, jobs)
    (ws.root / "raw.csv").write_bytes(b"changed")
    conn = ws.index()
    for (sid,) in conn.execute("SELECT id FROM sessions").fetchall():
        dag = dagmod.build(conn, sid, DiskCheck(conn))
        out = io.StringIO()
        dagjson.write(conn, sid, facts.stale_jobs(conn, sid, DiskCheck(conn)), out)
        js = json.loads(out.getvalue())
        jobs_ = [n for n in js["nodes"] if n["kind"] == "job"]
        assert [(n["uid"], n["stale_reasons"]) for n in jobs_] == [(j.uid, j.stale) for j in dag.jobs]
        arts = [n for n in js["nodes"] if n["kind"] != "job"]
        assert [(n["id"], n["hash"], n["kind"], n["paths"], n["source"], n["stale"]) for n in arts] == [
            (f"artifact:{a}", n.hash, n.kind, n.paths, n.source, n.stale) for a, n in dag.artifacts.items()]
        assert len(js["job_edges"]) == sum(len(j.fed_by) for j in dag.jobs)
    conn.close()


def test_a_name_that_is_not_utf8_is_shown_with_replacement_characters(ws):
    name = os.fsdecode(b"caf\xe9.csv")
    path = os.path.join(str(ws.root), name)
    with open(path, "wb") as f:
        f.write(b"x")
    ws.add_job(synthetic.record("write", outputs=[synthetic.file_entry(path)]))
    conn = ws.index()
    out = io.StringIO()
    dagjson.write(conn, index.current_session(conn), {}, out)
    conn.close()
    paths = [p for n in json.loads(out.getvalue())["nodes"] for p in n.get("paths", [])]
    assert paths == [str(ws.root) + "/caf\ufffd.csv"]


def test_an_index_made_before_the_facts_is_migrated(ws, jobs, tmp_path):
    busy_session(ws, jobs)
    kept = snapshot(ws)
    # the same rows in an index with only the first two migrations, as an older roar left it
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old, isolation_level=None)
    conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    for name, sql in index.MIGRATIONS[:2]:
        for statement in filter(str.strip, sql.split(";")):
            conn.execute(statement)
        conn.execute("INSERT INTO migrations VALUES (?, 0)", (name,))
    conn.execute("ATTACH ? AS new", (str(ws.db_path),))
    for table in ("sessions", "artifacts", "artifact_hashes", "composite_members", "label_events",
                  "job_warnings"):
        conn.execute(f"INSERT INTO {table} SELECT * FROM new.{table}")
    conn.execute("INSERT INTO jobs SELECT uid, session_id, step, type, command, exit_code, status, started_at,"
                 " ended_at, seq FROM new.jobs")   # the columns of the first two migrations
    conn.execute("INSERT INTO job_files SELECT job, role, path, artifact, size, composite FROM new.job_files")
    conn.execute("DETACH new")
    conn.close()
    for suffix in ("", "-wal", "-shm"):
        ws.db_path.with_name(ws.db_path.name + suffix).unlink(missing_ok=True)
    os.replace(old, ws.db_path)
    assert snapshot(ws) == kept


def test_a_job_indexed_before_later_ones_recomputes_its_session(ws, jobs):
    jobs.add("prepare", reads={"raw": b"r"}, writes={"data": b"d"})
    jobs.add("train", reads=["data"], writes={"model": b"m"})
    early = synthetic.record("first draft", [], [synthetic.file_entry(str(ws.root / "data"), b"draft")])
    conn = ws.index()
    early.update(session=conn.execute("SELECT id FROM sessions").fetchone()[0], step=9)
    with conn:
        index.index_job(conn, early, seq=0)    # before prepare: out of order
    kept = conn.execute(FACT_ROWS).fetchall()
    conn.execute("BEGIN")
    index.refresh_facts(conn)
    assert conn.execute(FACT_ROWS).fetchall() == kept
    conn.execute("ROLLBACK")
    # prepare wrote data after the draft: the draft is rewritten
    assert conn.execute("SELECT rewritten FROM job_files WHERE job = ?", (early["uid"],)).fetchone() == (1,)
    conn.close()


def test_disk_check_of_many_inputs(ws, jobs, monkeypatch):
    jobs.add("make", writes={"same": b"1", "edited": b"2", "grown": b"3"})
    jobs.add("shard", writes={f"d/p{i}": bytes([i]) for i in range(8)})
    conn = ws.index()
    rows = [(index.from_db_path(p), a, s) for p, a, s in conn.execute(
        "SELECT path, artifact, size FROM job_files WHERE role = 'output' AND composite IS NULL"
        " ORDER BY path")]
    rows.append((str(ws.root / "gone" / "x"), "0" * 64, 1))        # a vanished directory
    (ws.root / "edited").write_bytes(b"X")                           # same size, other bytes
    (ws.root / "grown").write_bytes(b"333")
    (ws.root / "d" / "p5").write_bytes(b"\xff")                      # a member of the composite d/
    past = time.time() - 3600    # not "racy": the hash cache may keep the digests
    os.utime(ws.root / "same", (past, past))
    with DiskCheck(conn, ws.hash_cache) as disk:
        changed = {os.path.basename(p) for p, _ in disk.changed_among(rows)}
    assert changed == {"edited", "grown", "d"}
    # the hash cache now knows the unchanged files: a second look hashes nothing
    import roar.artifacts.hashing as hashing

    monkeypatch.setattr(hashing, "hash_uncached", lambda *a, **k: pytest.fail("hashed again"))
    ok = [r for r in rows if os.path.basename(r[0]) == "same"]
    with DiskCheck(conn, ws.hash_cache) as disk:
        assert disk.changed_among(ok) == []
    conn.close()
