"""Refs, options and messages a user meets in the first hour: URLs as refs, --label on
run, label/reset/log edge cases, dag's -o and --json. Real jobs (real tracer)."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import pytest

from tests.trace.conftest import roar

pytestmark = pytest.mark.ebpf


def out(proc) -> str:
    return proc.stdout.decode()


def err_line(proc) -> str:
    text = proc.stderr.decode()
    assert "Traceback" not in text and "internal error" not in text, text
    return text.strip().splitlines()[-1]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "a").write_text("a\n")
    assert roar("run", "-q", "--", "cp", "a", "b", cwd=tmp_path).returncode == 0
    return tmp_path


def test_a_url_is_a_ref_to_what_get_fetched(tmp_path: Path) -> None:
    www = tmp_path / "www"
    www.mkdir()
    (www / "remote.csv").write_text("x,y\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/remote.csv"
        work = tmp_path / "w"
        work.mkdir()
        assert roar("get", url, "local.csv", cwd=work).returncode == 0
        shown = roar("show", url, "--json", cwd=work)
        assert shown.returncode == 0, shown.stderr
        local = json.loads(roar("show", "local.csv", "--json", cwd=work).stdout)
        assert json.loads(shown.stdout)["hash"] == local["hash"]
        missing = roar("show", url + "?v=2", cwd=work)
        assert missing.returncode == 3 and "never recorded" in err_line(missing)
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_run_takes_labels(tmp_path: Path) -> None:
    proc = roar("run", "-q", "--label", "stage=prep", "-l", "owner=me", "--", "true", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(roar("label", "show", "@1", "--json", cwd=tmp_path).stdout)
    assert shown["labels"] == {"stage": "prep", "owner": "me"}
    bad = roar("run", "--label", "novalue", "--", "true", cwd=tmp_path)
    assert bad.returncode == 2 and "no '='" in err_line(bad)


def test_unsetting_a_missing_label_fails_and_writes_nothing(ws: Path) -> None:
    before = sorted((ws / ".roar" / "labels").iterdir())
    proc = roar("label", "unset", "@1", "nokey", cwd=ws)
    assert proc.returncode == 3 and "no label nokey" in err_line(proc)
    assert sorted((ws / ".roar" / "labels").iterdir()) == before


def test_label_without_a_verb_is_a_usage_error(ws: Path) -> None:
    proc = roar("label", "@1", "a=b", cwd=ws)
    assert proc.returncode == 2, proc.stdout


def test_reset_of_an_empty_session_makes_no_new_one(ws: Path) -> None:
    first = json.loads(roar("reset", "--json", cwd=ws).stdout)
    again = json.loads(roar("reset", "--json", cwd=ws).stdout)
    assert first["new"] is True and again["new"] is False and again["id"] == first["id"]
    assert roar("show", "session:", cwd=ws).returncode == 2


def test_empty_and_odd_refs_are_usage_errors(ws: Path) -> None:
    proc = roar("show", "", cwd=ws)
    assert proc.returncode == 2 and "empty reference" in err_line(proc)
    proc = roar("show", "session:nosuch", cwd=ws)
    assert proc.returncode == 3 and "--all" not in err_line(proc)


def test_dag_output_errors(ws: Path) -> None:
    proc = roar("dag", "-o", "/nonexistent/dir/x.dot", "-f", "dot", cwd=ws)
    assert proc.returncode == 2 and "cannot write /nonexistent/dir/x.dot" in err_line(proc)
    proc = roar("dag", "--json", "-o", "/nonexistent/dir/x.json", cwd=ws)
    assert proc.returncode == 2 and "cannot write" in err_line(proc)
    proc = roar("dag", "--json", "-f", "dot", cwd=ws)
    assert proc.returncode == 2 and "--json" in err_line(proc)


def test_show_of_an_edited_file_says_it_differs(ws: Path) -> None:
    # "model.txt", not a name of hex digits: once deleted it would be taken for a hash prefix
    assert roar("run", "-q", "--", "cp", "a", "model.txt", cwd=ws).returncode == 0
    same = json.loads(roar("show", "model.txt", "--json", cwd=ws).stdout)
    assert same["on_disk"]["state"] == "same"
    (ws / "model.txt").write_text("edited\n")
    shown = roar("show", "model.txt", cwd=ws)
    assert shown.returncode == 0, shown.stderr
    text = out(shown)
    recorded = same["hash"]
    assert "now differs" in text and recorded in text
    info = json.loads(roar("show", "model.txt", "--json", cwd=ws).stdout)
    assert info["hash"] == recorded and info["on_disk"]["state"] == "differs"
    assert info["on_disk"]["hash"] not in (None, recorded) and info["on_disk"]["hash"] in text
    (ws / "model.txt").unlink()
    gone = json.loads(roar("show", str(ws / "model.txt"), "--json", cwd=ws).stdout)
    assert gone["on_disk"]["state"] == "missing"

def test_counts_say_job_or_jobs(ws: Path) -> None:
    assert out(roar("status", cwd=ws)).splitlines()[0].endswith(": 1 job, 0 stale")
    assert out(roar("db", "rebuild", cwd=ws)).strip() == "rebuilt the index: 1 job"
    assert roar("run", "-q", "--", "true", cwd=ws).returncode == 0
    assert ": 2 jobs, " in out(roar("status", cwd=ws)).splitlines()[0]


def test_a_step_run_again_supersedes_the_earlier_run(tmp_path: Path) -> None:
    """prepare, train, aggregate, then the raw data changes and all three run again: the
    session as it now stands has three fresh steps, not three stale ones."""
    steps = [["sh", "-c", "sort raw.txt > clean.txt"], ["sh", "-c", "wc -l < clean.txt > model.txt"],
             ["sh", "-c", "cat model.txt clean.txt > report.txt"]]
    (tmp_path / "raw.txt").write_text("b\na\n")
    for cmd in steps:
        assert roar("run", "-q", "--", *cmd, cwd=tmp_path).returncode == 0
    (tmp_path / "raw.txt").write_text("c\nb\na\n")
    before = json.loads(roar("status", "--json", cwd=tmp_path).stdout)
    assert len(before["stale"]) == 3
    for cmd in steps:
        assert roar("run", "-q", "--", *cmd, cwd=tmp_path).returncode == 0
    st = json.loads(roar("status", "--json", cwd=tmp_path).stdout)
    assert st["stale"] == []
    assert [s["step"] for s in st["steps"]] == ["@4", "@5", "@6"]
    assert st["session"]["jobs"] == 6 and st["session"]["superseded"] == 3
    text = out(roar("status", cwd=tmp_path))
    assert ": 6 jobs (3 run again later, in `roar log`), 0 stale" in text.splitlines()[0]
    assert len(json.loads(roar("log", "--json", cwd=tmp_path).stdout)) == 6
    # the same command in another directory is another step
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "raw.txt").write_text("z\n")
    assert roar("run", "-q", "--", *steps[0], cwd=sub).returncode == 0
    assert json.loads(roar("status", "--json", cwd=tmp_path).stdout)["session"]["superseded"] == 3
