"""The workspace store: steps and sessions, self-healing, rebuild, concurrency, crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from roar.errors import CorruptStore
from roar.store import index, synthetic


def rows(ws, query, *params):
    conn = ws.index()
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


def test_steps_count_from_one_and_builds_apart(jobs, ws):
    a = jobs.add("a")
    b = jobs.add("make", kind="build")
    c = jobs.add("c")
    assert (a["step"], b["step"], c["step"]) == (1, 1, 2)
    assert a["session"] == b["session"] == c["session"]
    assert ws.read_record(c["uid"])["step"] == 2


def test_reset_starts_a_new_session_and_keeps_old_jobs(jobs, ws):
    first = jobs.add("a", writes={"x": b"1"})
    new = ws.reset()
    assert new["seq"] == 2
    second = jobs.add("b")
    assert second["session"] == new["id"] != first["session"]
    assert second["step"] == 1
    assert rows(ws, "SELECT COUNT(*) FROM jobs") == [(2,)]
    assert rows(ws, "SELECT seq, ended_at IS NOT NULL FROM sessions ORDER BY seq") == [(1, 1), (2, 0)]


def test_artifacts_are_content_addressed(jobs, ws):
    jobs.add("copy", reads={"a.txt": b"same"}, writes={"b.txt": b"same"})
    assert rows(ws, "SELECT COUNT(*) FROM artifacts") == [(1,)]
    assert sorted(r[0] for r in rows(ws, "SELECT path FROM job_files")) == [
        str(ws.root / "a.txt"), str(ws.root / "b.txt")]


def test_every_digest_is_kept(jobs, ws):
    entry = synthetic.file_entry(str(ws.root / "f"), b"x")
    entry["hashes"]["sha256"] = "ab" * 32
    ws.add_job(synthetic.record("j", [entry]))
    assert dict(rows(ws, "SELECT algorithm, digest FROM artifact_hashes")) == {
        "blake3": entry["hash"], "sha256": "ab" * 32}


def test_unindexed_record_is_healed_on_next_open(jobs, ws):
    jobs.add("a")
    orphan = synthetic.record("crashed before indexing")
    orphan.update(session=rows(ws, "SELECT id FROM sessions")[0][0], step=2)
    ws.write_record(orphan)            # the file landed, the index commit did not
    assert rows(ws, "SELECT step FROM jobs ORDER BY step") == [(1,), (2,)]


def test_corrupt_record_is_listed_not_fatal(jobs, ws):
    jobs.add("a")
    (ws.jobs_dir / "deadbeefdeadbeef.msgpack").write_bytes(b"\xc1garbage")
    assert rows(ws, "SELECT file FROM bad_files") == [("deadbeefdeadbeef",)]
    assert rows(ws, "SELECT COUNT(*) FROM jobs") == [(1,)]
    assert jobs.add("b")["step"] == 2


def test_missing_record_file_names_the_file(jobs, ws):
    job = jobs.add("a")
    ws.record_path(job["uid"]).unlink()
    with pytest.raises(CorruptStore, match=f"{job['uid']}.msgpack is missing.*roar db rebuild"):
        ws.read_record(job["uid"])


def _dump(ws):
    tables = ("sessions", "jobs", "artifacts", "artifact_hashes", "job_files", "composite_members",
              "label_events", "job_warnings")
    return {t: sorted(map(repr, rows(ws, f"SELECT * FROM {t}"))) for t in tables}


def test_rebuild_gives_the_same_index(jobs, ws):
    jobs.add("prepare", reads={"raw": b"r"}, writes={"data": b"d"}, labels={"lr": "0.1"}, warnings=["w"])
    ws.reset()
    jobs.add("train", reads=["data"], writes={f"out/{i}": bytes([i]) for i in range(10)})
    ws.add_label_changes("job", rows(ws, "SELECT uid FROM jobs")[0][0], {"acc": "0.9"})
    before = _dump(ws)
    assert ws.rebuild() == 2
    assert _dump(ws) == before


def test_rebuild_moves_a_damaged_index_aside(jobs, ws):
    jobs.add("a")
    ws.db_path.write_bytes(b"this is not sqlite" * 100)
    for suffix in ("-wal", "-shm"):
        ws.db_path.with_name(ws.db_path.name + suffix).unlink(missing_ok=True)
    with pytest.raises(CorruptStore, match="roar db rebuild"):
        ws.index()
    assert ws.rebuild() == 1
    assert list(ws.dir.glob("roar.db.corrupt-*"))


def test_newer_schema_is_refused(ws):
    conn = ws.index()
    conn.execute("INSERT INTO migrations VALUES ('999_future', 0)")
    conn.close()
    with pytest.raises(CorruptStore, match="newer roar"):
        ws.index()


ADDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from roar.store import synthetic
    from roar.store.workspace import Workspace
    ws = Workspace.find(Path(sys.argv[1]))
    for i in range(int(sys.argv[2])):
        ws.add_job(synthetic.record(f"job {sys.argv[3]} {i}"))
""")


def test_concurrent_adds_all_land_with_distinct_steps(ws):
    procs = [subprocess.Popen([sys.executable, "-c", ADDER, str(ws.root), "15", str(n)]) for n in range(6)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 6
    steps = [r[0] for r in rows(ws, "SELECT step FROM jobs ORDER BY step")]
    assert steps == list(range(1, 91))
    assert len(list(ws.jobs_dir.glob("*.msgpack"))) == 90


SLOW_WRITER = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from roar.store import synthetic
    from roar.store.workspace import Workspace
    ws = Workspace.find(Path(sys.argv[1]))
    real_fsync = os.fsync
    def fsync(fd):                       # stop in the middle of the record write
        print("writing", flush=True)
        import time; time.sleep(60)
    os.fsync = fsync
    big = [synthetic.file_entry(f"/data/{i}", hash_="ab" * 32, size=1) for i in range(20000)]
    ws.add_job(synthetic.record("killed", big))
""")


def test_kill_9_in_the_middle_of_a_record_write(jobs, ws):
    jobs.add("before")
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(ws.root)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # the index lock died with the process; the next job lands, nothing is corrupt
    after = jobs.add("after")
    assert after["step"] == 2
    assert [r[0] for r in rows(ws, "SELECT command FROM jobs ORDER BY step")] == ["before", "after"]
    assert list(ws.jobs_dir.glob("*.msgpack")) and not rows(ws, "SELECT * FROM bad_files")


def test_kill_9_storm_leaves_a_working_store(ws):
    """Kill writers at random moments; every record on disk is whole and indexed."""
    for delay in (0.05, 0.1, 0.2, 0.3):
        proc = subprocess.Popen([sys.executable, "-c", ADDER, str(ws.root), "1000", "k"])
        time.sleep(delay + 0.3)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    files = {p.stem for p in ws.jobs_dir.glob("*.msgpack")}
    indexed = {r[0] for r in rows(ws, "SELECT uid FROM jobs")}
    assert files == indexed
    assert not rows(ws, "SELECT * FROM bad_files")
    steps = [r[0] for r in rows(ws, "SELECT step FROM jobs ORDER BY step")]
    assert steps == list(range(1, len(steps) + 1))
    assert index.current_session(ws.index()) is not None


def test_orphan_whose_step_was_taken_gets_the_next_one(jobs, ws):
    jobs.add("a")
    orphan = synthetic.record("crashed")
    orphan.update(session=rows(ws, "SELECT id FROM sessions")[0][0], step=2)
    conn = ws.index()     # opened (and healed) before the orphan lands
    ws.write_record(orphan)
    from roar.store.workspace import _write_transaction
    winner = {**synthetic.record("won the race"), "session": orphan["session"], "step": 2}
    with _write_transaction(conn):
        ws.write_record(winner)
        index.index_job(conn, winner)
    conn.close()
    assert rows(ws, "SELECT command, step FROM jobs ORDER BY step") == [("a", 1), ("won the race", 2), ("crashed", 3)]
    assert ws.read_record(orphan["uid"])["step"] == 3


def test_synthetic_records_have_the_shape_roar_run_writes(tmp_path):
    """The records the other tests stand on: every key `roar run` writes, and a
    record the store's own validation reads back unchanged."""
    from roar.record import job as jobrec

    entry = synthetic.file_entry(str(tmp_path / "f"), b"x")
    rec = synthetic.record("python step.py", [entry], [], exit_code=3)
    assert set(rec) == set(jobrec.new_record("run", ["true"], "/", 0.0, 1.0))
    assert set(entry) == {"path", "hash", "hashes", "size", "pids"}
    assert rec["exit"] == {"code": 3, "signal": None, "status": "failed"} and rec["exit_code"] == 3
    back = jobrec.decode(jobrec.encode({**rec, "session": "0123456789abcdef", "step": 1}))
    assert back["inputs"] == [entry] and back["processes"] == rec["processes"]
