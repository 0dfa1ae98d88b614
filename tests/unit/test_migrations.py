"""Migrations of an index an older roar left: its rows are kept and the new columns and facts
are right, the same as a fresh rebuild from the records gives (docs/store.md)."""

from __future__ import annotations

import os
import sqlite3

from roar.store import index, synthetic
from tests.unit.test_dag_shapes import transfer

FACT_ROWS = ("SELECT job, role, path, artifact, size, composite, session_id, seq, producer, rewritten,"
             " read_later, remote FROM job_files ORDER BY job, role, path")
JOB_ROWS = "SELECT uid, session_id, step, type, command, seq, cwd FROM jobs"
KEPT = ("sessions", "artifacts", "artifact_hashes", "composite_members", "label_events", "job_warnings")


def rows(conn, sql, *args):
    return conn.execute(sql, args).fetchall()


def up_to(name: str) -> list[tuple[str, str]]:
    names = [n for n, _ in index.MIGRATIONS]
    return index.MIGRATIONS[:names.index(name) + 1]


def old_index(ws, path, last: str) -> None:
    """ws's rows in an index migrated only up to `last`, with the facts as that roar
    computed them, put in place of ws's index."""
    new = ws.index()
    columns = {t: [r[1] for r in new.execute(f"PRAGMA table_info({t})")] for t in ("jobs", "job_files")}
    new.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    for name, sql in up_to(last):
        for statement in filter(str.strip, sql.split(";")):
            conn.execute(statement)
        conn.execute("INSERT INTO migrations VALUES (?, 0)", (name,))
    conn.execute("ATTACH ? AS new", (str(ws.db_path),))
    for table in KEPT:
        conn.execute(f"INSERT INTO {table} SELECT * FROM new.{table}")
    for table in ("jobs", "job_files"):
        have = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        shared = ", ".join(c for c in columns[table] if c in have)
        conn.execute(f"INSERT INTO {table} ({shared}) SELECT {shared} FROM new.{table}")
    conn.execute("DETACH new")
    conn.execute("DELETE FROM path_writes")
    for statement in index.FACTS_SQL_003:     # the facts as roar before 005 worked them out
        conn.execute(statement.format(where="1"))
    conn.close()
    for suffix in ("", "-wal", "-shm"):
        ws.db_path.with_name(ws.db_path.name + suffix).unlink(missing_ok=True)
    os.replace(path, ws.db_path)


def test_005_remote_locations_keeps_the_rows_and_marks_transfers(ws, jobs, tmp_path):
    got = transfer(ws, "get", "http://h/data.csv", "data.csv", b"d")
    ran = jobs.add("cp data.csv copy.csv", reads=["data.csv"], writes={"copy.csv": b"d"}, labels={"k": "v"},
                   warnings=["careful"])
    put = transfer(ws, "put", "copy.csv", "file:///srv/data.csv", b"d")
    again = transfer(ws, "get", "file:///srv/data.csv", "back.csv", b"d")
    conn = ws.index()
    fresh = rows(conn, FACT_ROWS)
    fresh_writes = rows(conn, "SELECT * FROM path_writes ORDER BY 1, 2")
    kept = {t: sorted(rows(conn, f"SELECT * FROM {t}")) for t in KEPT}
    jobs_before = sorted(rows(conn, "SELECT uid, session_id, step, type, command, seq FROM jobs"))
    conn.close()

    old_index(ws, tmp_path / "old.db", "004_job_cwd")
    conn = sqlite3.connect(ws.db_path)
    # what 004 believed: the put made the bytes everyone later read, the URL came from a job
    producers = dict(rows(conn, "SELECT job, producer FROM job_files WHERE role = 'input'"))
    assert producers[again["uid"]] == put["uid"] and producers[ran["uid"]] == got["uid"]
    assert "remote" not in [r[1] for r in conn.execute("PRAGMA table_info(job_files)")]
    conn.close()

    conn = ws.index()        # migrates: 005 and anything after it
    try:
        assert {n for (n,) in rows(conn, "SELECT name FROM migrations")} == {n for n, _ in index.MIGRATIONS}
        assert {t: sorted(rows(conn, f"SELECT * FROM {t}")) for t in KEPT} == kept
        assert sorted(rows(conn, "SELECT uid, session_id, step, type, command, seq FROM jobs")) == jobs_before
        remote = {(job, role): flag
                  for job, role, flag in rows(conn, "SELECT job, role, remote FROM job_files")}
        assert remote == {(got["uid"], "input"): 1, (got["uid"], "output"): 0,
                          (ran["uid"], "input"): 0, (ran["uid"], "output"): 0,
                          (put["uid"], "input"): 0, (put["uid"], "output"): 1,
                          (again["uid"], "input"): 1, (again["uid"], "output"): 0}
        # the facts follow: a URL has no producer, a put's copy is nobody's producer
        assert rows(conn, FACT_ROWS) == fresh
        assert rows(conn, "SELECT * FROM path_writes ORDER BY 1, 2") == fresh_writes
        producers = dict(rows(conn, "SELECT job, producer FROM job_files WHERE role = 'input'"))
        assert producers == {got["uid"]: None, ran["uid"]: got["uid"], put["uid"]: ran["uid"],
                             again["uid"]: None}
    finally:
        conn.close()
    # and a rebuild from the records agrees
    ws.rebuild()
    conn = ws.index()
    assert rows(conn, FACT_ROWS) == fresh
    conn.close()


def test_a_migrated_index_keeps_non_utf8_paths(ws, tmp_path):
    name = os.fsdecode(b"caf\xe9.csv")
    path = os.path.join(str(ws.root), name)
    with open(path, "wb") as f:
        f.write(b"x")
    ws.add_job(synthetic.record("write", outputs=[synthetic.file_entry(path)]))
    old_index(ws, tmp_path / "old.db", "004_job_cwd")
    conn = ws.index()
    assert [index.from_db_path(p) for (p,) in rows(conn, "SELECT path FROM job_files")] == [path]
    conn.close()


def test_006_job_git_keeps_the_rows_and_a_rebuild_fills_the_state(ws, jobs, tmp_path):
    record = synthetic.record("prepare", cwd=str(ws.root))
    record["context"] = {"git": {"root": str(ws.root), "branch": "main", "commit": "c" * 40, "dirty": True,
                                 "dirty_paths": ["a.py"], "changed_by_job": []}}
    ws.add_job(record)
    conn = ws.index()
    jobs_before = sorted(rows(conn, JOB_ROWS))
    conn.close()
    old_index(ws, tmp_path / "old.db", "005_remote_locations")
    conn = ws.index()
    try:
        assert sorted(rows(conn, JOB_ROWS)) == jobs_before
        assert rows(conn, "SELECT git FROM jobs") == [(None,)]     # not known until a rebuild
    finally:
        conn.close()
    ws.rebuild()
    conn = ws.index()
    [(state,)] = rows(conn, "SELECT git FROM jobs")
    conn.close()
    assert state is not None and '"own": ["a.py"]' in state
