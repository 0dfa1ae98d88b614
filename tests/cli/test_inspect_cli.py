"""The inspection CLI contract: status, show, dag, log, label, reset, db; exact
messages and exit codes (docs/exit-codes.md), JSON shapes (docs/json.md)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import blake3
import pytest

from roar.store import synthetic
from roar.store.workspace import Workspace


def roar(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "roar", *args], cwd=cwd, capture_output=True, text=True)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    ws = Workspace.find_or_create(tmp_path)
    files = {"raw.csv": b"raw", "data.csv": b"data", "model.pt": b"model"}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    entry = {n: synthetic.file_entry(str(tmp_path / n)) for n in files}
    prepare = synthetic.record("python prepare.py", [entry["raw.csv"]], [entry["data.csv"]])
    train = synthetic.record("python train.py", [entry["data.csv"]], [entry["model.pt"]],
                             warnings=["3 tracer events were lost"])
    ws.add_job(prepare)
    ws.add_job(train)
    ws.uids = [prepare["uid"], train["uid"]]   # the oracle for uids shown by the CLI
    return ws


def test_status_text(ws):
    r = roar(ws.root, "status")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].endswith(": 2 jobs, 0 stale")
    assert lines[1:3] == ["  @1    ok          python prepare.py", "  @2    ok          python train.py"]
    assert f"  {ws.root}/model.pt" in r.stdout
    assert r.stdout.endswith("warnings:\n  @2: 3 tracer events were lost\n")


def test_status_json_and_staleness(ws):
    (ws.root / "raw.csv").write_bytes(b"changed")
    st = json.loads(roar(ws.root, "status", "--json").stdout)
    assert [s["step"] for s in st["stale"]] == ["@1", "@2"]
    assert st["stale"][0]["reasons"] == [f"{ws.root}/raw.csv changed on disk"]
    assert st["outputs"] == [{"path": f"{ws.root}/model.pt", "hash": blake3.blake3(b"model").hexdigest(),
                              "step": "@2", "uid": ws.uids[1], "stale": True}]


def test_show_job_and_artifact(ws):
    job = json.loads(roar(ws.root, "show", "@2", "--json").stdout)
    assert job["command"] == "python train.py"
    assert job["inputs"][0]["made_by"]["step"] == "@1"
    art = json.loads(roar(ws.root, "show", "model.pt", "--json").stdout)
    assert art["paths"] == [f"{ws.root}/model.pt"]
    assert [j["step"] for j in art["produced_by"]] == ["@2"]
    assert job["uid"] == ws.uids[1]
    # the producer, then the job that fed it
    assert [j["uid"] for j in art["lineage"]["jobs"]] == [ws.uids[1], ws.uids[0]]
    text = roar(ws.root, "show", art["hash"][:10]).stdout
    assert text.startswith(f"artifact {art['hash']}  (file, 5 bytes)\n")
    assert "(source)" in text


def test_dag_formats(ws):
    dag = json.loads(roar(ws.root, "dag", "--json").stdout)
    assert sorted(n["kind"] for n in dag["nodes"]) == ["file", "file", "file", "job", "job"]
    assert len(dag["edges"]) == 4 and len(dag["job_edges"]) == 1
    assert roar(ws.root, "dag", "--format", "dot").stdout.startswith("digraph roar {")
    assert roar(ws.root, "dag", "--format", "mermaid").stdout.startswith("flowchart LR")
    assert "@2    python train.py  [ok]" in roar(ws.root, "dag").stdout


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
def test_dag_svg(ws):
    r = roar(ws.root, "dag", "--format", "svg", "-o", "g.svg")
    assert r.returncode == 0, r.stderr
    assert "<svg" in (ws.root / "g.svg").read_text()


def test_log_reset_and_old_jobs_stay_queryable(ws):
    uid = json.loads(roar(ws.root, "log", "--json").stdout)[0]["uid"]
    assert roar(ws.root, "reset").stdout.startswith("session 2 (")
    assert "0 jobs" in roar(ws.root, "status").stdout
    assert roar(ws.root, "show", uid).returncode == 0
    assert roar(ws.root, "show", "@1").returncode == 3
    assert len(json.loads(roar(ws.root, "log", "--json").stdout)) == 2


def test_labels_with_history(ws):
    assert roar(ws.root, "label", "set", "@1", "acc=0.9", "note=a b").returncode == 0
    assert roar(ws.root, "label", "set", "@1", "acc=0.95").returncode == 0
    assert roar(ws.root, "label", "unset", "@1", "note").returncode == 0
    assert roar(ws.root, "label", "show", "@1").stdout == "acc=0.95\n"
    shown = json.loads(roar(ws.root, "label", "show", "@1", "--json").stdout)
    assert [(c["action"], c["key"], c["value"]) for c in shown["history"]] == [
        ("set", "acc", "0.9"), ("set", "note", "a b"), ("set", "acc", "0.95"), ("unset", "note", None)]
    assert roar(ws.root, "label", "set", "session", "exp=7").returncode == 0
    assert roar(ws.root, "label", "set", "model.pt", "kind=model").returncode == 0
    assert roar(ws.root, "label", "show", "session").stdout == "exp=7\n"
    # labels survive a rebuild of the index
    assert roar(ws.root, "db", "rebuild").stdout == "rebuilt the index: 2 jobs\n"
    assert roar(ws.root, "label", "show", "@1").stdout == "acc=0.95\n"
    assert roar(ws.root, "label", "show", "model.pt").stdout == "kind=model\n"


@pytest.mark.parametrize("args, code, message", [
    (("show", "@7"), 3, "roar: no step @7 in the current session: `roar log` lists the jobs\n"),
    (("show", "./never.txt"), 3, "roar: ./never.txt was never recorded as an input or output of a job\n"),
    (("show", "zzz"), 3, "roar: nothing matches 'zzz': not a step, job uid, artifact hash or recorded path "
                         "(`roar log` lists the jobs)\n"),
    (("label", "set", "@1", "novalue"), 2, "roar: label 'novalue' has no '=': write key=value\n"),
    (("dag", "--format", "gif"), 2, "roar: unknown format 'gif': use one of text, json, dot, mermaid, svg, png\n"),
])
def test_bad_input(ws, args, code, message):
    r = roar(ws.root, *args)
    assert (r.returncode, r.stderr, r.stdout) == (code, message, "")


def test_not_a_workspace(tmp_path):
    r = roar(tmp_path, "status")
    assert r.returncode == 6
    assert r.stderr == f"roar: no roar workspace here or above {tmp_path}: run a command with `roar run` first\n"


def test_corrupt_index_says_rebuild_and_rebuild_fixes_it(ws):
    for suffix in ("-wal", "-shm"):
        ws.db_path.with_name(ws.db_path.name + suffix).unlink(missing_ok=True)
    ws.db_path.write_bytes(b"garbage" * 1000)
    r = roar(ws.root, "status")
    assert r.returncode == 5 and "run `roar db rebuild`" in r.stderr and "Traceback" not in r.stderr
    assert roar(ws.root, "db", "rebuild").returncode == 0
    assert roar(ws.root, "status").returncode == 0


def test_corrupt_record_is_reported_by_status(ws):
    (ws.jobs_dir / "0123456789abcdef.msgpack").write_bytes(b"\x00\x01")
    r = roar(ws.root, "status")
    assert r.returncode == 0
    assert "unreadable record jobs/0123456789abcdef.msgpack" in r.stdout


def test_every_command_has_help():
    for cmd in (["status"], ["show"], ["dag"], ["log"], ["reset"], ["label", "set"], ["label", "show"],
                ["label", "unset"], ["db", "rebuild"]):
        r = subprocess.run([sys.executable, "-m", "roar", *cmd, "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and "Usage:" in r.stdout, cmd
