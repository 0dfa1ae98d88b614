"""One DAG node per artifact version, through real traced jobs: a `cp` whose output has its
input's exact bytes, and a file re-made with the bytes it held before, give no loop in any
`roar dag` format, and `roar show`/`status` name the same bytes and jobs (docs/lineage.md,
"Artifact versions")."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.unit.test_dag_shapes import cycle, dot_edges, mermaid_edges

pytestmark = pytest.mark.ebpf


def roar(cwd, *args):
    result = subprocess.run([sys.executable, "-m", "roar", *args], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def graph(cwd):
    dag = json.loads(roar(cwd, "dag", "--json"))
    edges = [(e["from"], e["to"]) for e in dag["edges"]]
    assert cycle(edges) is None, cycle(edges)
    assert cycle(dot_edges(roar(cwd, "dag", "-f", "dot"))) is None
    assert cycle(mermaid_edges(roar(cwd, "dag", "-f", "mermaid"))) is None
    return dag


def test_cp_with_identical_bytes_is_a_second_version(tmp_path):
    (tmp_path / "raw.csv").write_text("a,b\n1,2\n")
    roar(tmp_path, "run", "-q", "cp", "raw.csv", "copy.csv")
    roar(tmp_path, "run", "-q", "sh", "-c", "cat copy.csv > again.csv")
    dag = graph(tmp_path)
    jobs = {n["id"]: n for n in dag["nodes"] if n["kind"] == "job"}
    cp, cat = (uid for uid in jobs)
    ins = {e["to"]: e["from"] for e in dag["edges"] if e["role"] == "input"}
    outs = {e["path"].rsplit("/", 1)[1]: e["to"] for e in dag["edges"] if e["role"] == "output"}
    nodes = {n["id"]: n for n in dag["nodes"]}
    read, wrote = nodes[ins[cp]], nodes[outs["copy.csv"]]
    # the same bytes, two versions: as the session found them, and as cp wrote them
    assert read["hash"] == wrote["hash"] and read["id"] != wrote["id"]
    assert (read["source"], read["producer"]) == (True, None)
    assert wrote["producer"] == jobs[cp]["uid"]
    assert wrote["id"] == f"artifact:{wrote['hash']}@{wrote['producer']}"
    assert ins[cat] == wrote["id"]     # the reader reads cp's copy
    assert [(e["from"], e["to"]) for e in dag["job_edges"]] == [(cp, cat)]
    # text: the copy comes from @1; show and status name the same bytes and job
    text = roar(tmp_path, "dag")
    assert re.search(r"<- \S*copy\.csv  " + wrote["hash"][:12] + r"  \(from @1\)", text), text
    shown = json.loads(roar(tmp_path, "show", "--json", "copy.csv"))
    assert shown["hash"] == wrote["hash"]
    assert jobs[cp]["uid"] in [j["uid"] for j in shown["produced_by"]]
    status = json.loads(roar(tmp_path, "status", "--json"))
    finals = {(o["hash"], o["uid"]) for o in status["outputs"]}
    assert (nodes[outs["again.csv"]]["hash"], jobs[cat]["uid"]) in finals


def test_bytes_that_come_back_are_the_latest_version(tmp_path):
    (tmp_path / "f").write_text("A")
    roar(tmp_path, "run", "-q", "sh", "-c", "cat f > /dev/null; printf B > f")
    roar(tmp_path, "run", "-q", "sh", "-c", "cat f > /dev/null; printf A > f")
    roar(tmp_path, "run", "-q", "sh", "-c", "cat f > g")
    dag = graph(tmp_path)
    uids = [n["uid"] for n in dag["nodes"] if n["kind"] == "job"]
    versions = sorted((n["producer"] or "", n["hash"][:8]) for n in dag["nodes"] if n["kind"] == "file"
                      and any(p.endswith("/f") for p in n["paths"]))
    assert len(versions) == 3 and len({h for _, h in versions}) == 2    # A found, B made, A made again
    fed = [(e["from"], e["to"]) for e in dag["job_edges"]]
    assert fed == [(f"job:{uids[0]}", f"job:{uids[1]}"), (f"job:{uids[1]}", f"job:{uids[2]}")]
