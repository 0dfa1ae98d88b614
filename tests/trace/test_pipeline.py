"""A real three-step pipeline under `roar run`: its DAG, lineage and staleness."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.ebpf


def roar(cwd, *args):
    r = subprocess.run([sys.executable, "-m", "roar", *args], cwd=cwd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_prepare_train_evaluate(tmp_path):
    (tmp_path / "raw.csv").write_text("1\n2\n3\n")
    roar(tmp_path, "run", "-q", "sh", "-c", "sort -r raw.csv > data.csv")
    roar(tmp_path, "run", "-q", "sh", "-c", "wc -l < data.csv > model.txt")
    roar(tmp_path, "run", "-q", "sh", "-c", "cat model.txt data.csv > metrics.txt")
    dag = json.loads(roar(tmp_path, "dag", "--json"))
    jobs = {n["id"]: n["step"] for n in dag["nodes"] if n["kind"] == "job"}
    fed = sorted((jobs[e["from"]], jobs[e["to"]]) for e in dag["job_edges"])
    assert fed == [("@1", "@2"), ("@1", "@3"), ("@2", "@3")]
    files = {p.rsplit("/", 1)[1] for n in dag["nodes"] if n["kind"] == "file" for p in n["paths"]}
    assert {"raw.csv", "data.csv", "model.txt", "metrics.txt"} <= files
    art = json.loads(roar(tmp_path, "show", "metrics.txt", "--json"))
    sources = {p.rsplit("/", 1)[1] for s in art["lineage"]["sources"] for p in s["paths"]}
    assert "raw.csv" in sources
    assert len({j["uid"] for j in art["lineage"]["jobs"]}) == 3
    assert json.loads(roar(tmp_path, "status", "--json"))["stale"] == []
    (tmp_path / "raw.csv").write_text("4\n")
    stale = json.loads(roar(tmp_path, "status", "--json"))["stale"]
    assert [s["step"] for s in stale] == ["@1", "@2", "@3"]
    assert stale[0]["reasons"] == [f"{tmp_path}/raw.csv changed on disk"]
