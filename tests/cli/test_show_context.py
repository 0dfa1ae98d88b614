"""`roar show` of a job displays its context (machine, git, packages, environment), tracer
facts and warnings; get and put jobs show where the data came from and went; and every field
of the JSON outputs is documented in docs/json.md."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from roar.store import synthetic
from roar.store.workspace import Workspace

DOC = Path(__file__).resolve().parents[2] / "docs" / "json.md"
GIB = 2**30


def roar(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "roar", *args], cwd=cwd, capture_output=True, text=True)


def context(**changes) -> dict:
    ctx = {
        "version": 1,
        "machine": {
            "hostname": "box", "kernel": "6.1.0-18-amd64", "kernel_version": "#1 SMP Debian", "arch": "x86_64",
            "os": {"name": "Debian GNU/Linux", "id": "debian", "version": "12",
                   "pretty_name": "Debian GNU/Linux 12 (bookworm)"},
            "cpu": {"model": "AMD EPYC 7763", "logical_cores": 16, "usable_cores": 8},
            "memory_bytes": 64 * GIB,
            "gpus": [{"vendor": "nvidia", "model": "NVIDIA A100", "memory_bytes": 80 * GIB, "driver": "535.104",
                      "cuda": "12.2", "uuid": f"GPU-{i}"} for i in range(2)],
            "container": None, "vm": "kvm",
        },
        "git": {"root": "/src/proj", "remote": "https://example.com/org/proj.git", "branch": "main",
                "commit": "0123456789abcdef0123456789abcdef01234567", "dirty": True,
                "dirty_paths": ["a.py", "b.py"]},
        "environment": {"scope": "initial environment of the root process",
                        "variables": {"HOME": "/root", "PATH": "/usr/bin", "GITHUB_TOKEN": "<redacted>"},
                        "redacted": ["GITHUB_TOKEN"]},
        "packages": {
            "python": [{"exe": "/usr/bin/python3.11", "version": "3.11.2",
                        "distributions": [{"name": "numpy", "version": "1.26.4", "site": "/usr/lib/python3/dist-packages",
                                           "files": 12}]}],
            "system": [{"manager": "dpkg", "name": "coreutils", "version": "9.1-1", "arch": "amd64", "files": 1},
                       {"manager": "dpkg", "name": "libc6", "version": "2.36-9", "arch": "amd64", "files": 3}],
        },
        "notes": [],
    }
    ctx.update(changes)
    return ctx


def add(ws: Workspace, ctx: dict | None, kind: str = "run", **extra) -> dict:
    (ws.root / "in.csv").write_bytes(b"in")
    (ws.root / "out.csv").write_bytes(b"out")
    record = synthetic.record("python3 train.py", [synthetic.file_entry(str(ws.root / "in.csv"))],
                              [synthetic.file_entry(str(ws.root / "out.csv"))], kind=kind, cwd=str(ws.root),
                              warnings=["3 tracer events were lost"])
    record["tracer"] = {"backend": "ebpf", "roar_version": "0.1.0", "events": 1234, "dropped": 3,
                        "paths_truncated": 0, "dedup_map_full": 0, "ring_buffer_bytes": 16 << 20}
    if ctx is not None:
        record["context"] = ctx
    record.update(extra)
    return ws.add_job(record)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.find_or_create(tmp_path)


def lines_from(text: str, first: str) -> list[str]:
    lines = text.splitlines()
    return lines[lines.index(first):]


def test_show_displays_the_context(ws):
    add(ws, context())
    r = roar(ws.root, "show", "@1")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "  tracer:  ebpf, 1234 events, 3 dropped" in lines
    assert lines_from(r.stdout, "  context:") == [
        "  context:",
        "    machine:     Debian GNU/Linux 12 (bookworm), kernel 6.1.0-18-amd64, x86_64, host box",
        "                 AMD EPYC 7763 x 16 cores (8 usable), 64.0 GiB memory, "
        "GPUs: 2 x NVIDIA A100 (80.0 GiB, driver 535.104, CUDA 12.2)",
        "                 container: none, VM: kvm",
        "    git:         /src/proj, branch main, commit 0123456789ab, dirty, 2 paths: a.py, b.py",
        "                 remote https://example.com/org/proj.git",
        "    python:      3.11.2  /usr/bin/python3.11",
        "                   numpy==1.26.4",
        "    system:      coreutils 9.1-1, libc6 2.36-9",
        "    environment: 3 variables, redacted: GITHUB_TOKEN",
        "  warning: 3 tracer events were lost",
    ]


def test_show_context_none_values_and_notes(ws):
    machine = dict(context()["machine"], gpus=[], container="docker", vm=None,
                   gpu_note="nvidia-smi did not answer within 2 s: GPUs not recorded",
                   cpu={"model": "AMD EPYC 7763", "logical_cores": 16, "usable_cores": 16})
    add(ws, context(machine=machine, git=None, packages={"python": [], "system": []},
                    environment={"scope": "initial environment of the root process",
                                 "variables": {"HOME": "/root"}, "redacted": []},
                    notes=["machine: nvidia-smi did not answer within 2 s: GPUs not recorded"]))
    out = roar(ws.root, "show", "@1").stdout
    assert lines_from(out, "  context:") == [
        "  context:",
        "    machine:     Debian GNU/Linux 12 (bookworm), kernel 6.1.0-18-amd64, x86_64, host box",
        "                 AMD EPYC 7763 x 16 cores, 64.0 GiB memory, GPUs: none (not recorded: see note)",
        "                 container: docker, VM: none",
        "    git:         none (not in a git repository)",
        "    python:      none",
        "    system:      none",
        "    environment: 1 variable, redacted: none",
        "    note:        machine: nvidia-smi did not answer within 2 s: GPUs not recorded",
        "  warning: 3 tracer events were lost",
    ]


def test_long_lists_are_truncated_with_a_json_hint(ws):
    ctx = context()
    ctx["git"].update(branch=None, dirty_paths=[f"f{i}.py" for i in range(1000)], dirty_paths_omitted=234)
    ctx["packages"]["python"][0]["distributions"] = [
        {"name": f"dist{i:02}", "version": "1.0", "site": "/s", "files": 1} for i in range(20)]
    ctx["packages"]["system"] = [{"manager": "dpkg", "name": f"pkg{i:02}", "version": "2", "arch": "amd64",
                                  "files": 1} for i in range(30)]
    record = add(ws, ctx)
    out = roar(ws.root, "show", "@1").stdout
    assert ("    git:         /src/proj, detached HEAD, commit 0123456789ab, dirty, 1234 paths: "
            "f0.py, f1.py, f2.py, f3.py, f4.py, (+1229 more)") in out
    assert ("                   dist00==1.0, dist01==1.0, dist02==1.0, dist03==1.0, dist04==1.0, dist05==1.0,\n"
            "                   dist06==1.0, dist07==1.0, (+12 more)\n") in out
    assert "pkg07 2, (+22 more)\n" in out and "pkg08" not in out
    assert f"    (lists shortened: `roar show {record['uid']} --json` has them all)\n" in out
    # the JSON has everything
    shown = json.loads(roar(ws.root, "show", "@1", "--json").stdout)
    assert len(shown["context"]["packages"]["system"]) == 30


def test_record_without_context(ws):
    add(ws, None)
    out = roar(ws.root, "show", "@1").stdout
    assert "  context: not recorded\n" in out


def test_get_and_put_show_source_and_destination(ws):
    ctx = context(packages={"python": [], "system": []})
    url = "https://example.com/data/in.csv"
    add(ws, ctx, kind="get", processes=[], tracer={"backend": "none", "events": 0, "dropped": 0},
        transfer={"source": url, "destination": str(ws.root / "in.csv"), "scheme": "https",
                  "etag": '"abc"', "content_type": "text/csv", "last_modified": None})
    add(ws, ctx, kind="put", processes=[], tracer={"backend": "none", "events": 0, "dropped": 0},
        transfer={"sources": [str(ws.root / "out.csv")], "destination": "s3://bucket/results",
                  "scheme": "s3", "verified": True})
    got = roar(ws.root, "show", "@1").stdout.splitlines()
    assert got[5:9] == [f"  from:    {url}", f"  to:      {ws.root}/in.csv", '  etag: "abc"',
                        "  content type: text/csv"]
    assert "  tracer:  none (roar moved the data itself; no process was traced)" in got
    assert not any(line.startswith("  processes") or line.startswith("    python:") for line in got)
    put = roar(ws.root, "show", "@2").stdout.splitlines()
    assert put[5:7] == [f"  from:    {ws.root}/out.csv", "  to:      s3://bucket/results  (verified after the copy)"]


def test_json_carries_the_context(ws):
    ctx = context()
    add(ws, ctx)
    shown = json.loads(roar(ws.root, "show", "@1", "--json").stdout)
    assert shown["context"] == ctx
    assert shown["tracer"]["dropped"] == 3


# docs/json.md: every field of every JSON output is documented

def documented(section: str) -> set[str]:
    """The field names in the first column of the tables of one `## ` section of docs/json.md."""
    text = DOC.read_text()
    match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"docs/json.md has no section {section!r}"
    names = set()
    for row in re.findall(r"^\| ([^|]+?) \|", match.group(1), re.M):
        found = re.findall(r"`([^`]+)`", row)
        # "`machine.hostname`, `.kernel`": `.kernel` is machine.kernel
        names.update(found[0].split(".")[0] + n if n.startswith(".") and found else n for n in found)
    return names


def documented_path(name: str, names: set[str]) -> bool:
    return name in names or any(n.startswith(name + ".") for n in names)


def test_every_key_of_a_shown_job_is_documented(ws):
    add(ws, context())
    add(ws, context(), kind="get", processes=[], transfer={"source": "file:///x", "destination": "/y",
                                                           "scheme": "file"})
    keys = documented("`roar show` of a job")
    for step in ("@1", "@2"):
        shown = json.loads(roar(ws.root, "show", step, "--json").stdout)
        assert set(shown) - keys == set(), f"undocumented top-level keys of `roar show {step} --json`"
        assert shown["inputs"] and shown["outputs"], "no entries: the checks below pass on nothing"
        for entry in shown["inputs"] + shown["outputs"]:
            assert set(entry) <= documented("`roar show` of a job"), entry
    ctx = shown["context"]
    assert all(documented_path(k, keys) for k in ctx), sorted(ctx)
    for part in ("machine", "git", "environment", "packages"):
        assert [k for k in ctx[part] if not documented_path(f"{part}.{k}", keys)] == [], part


def test_every_key_of_the_other_outputs_is_documented(ws):
    add(ws, context())
    add(ws, context())
    assert roar(ws.root, "label", "set", "@1", "acc=0.9").returncode == 0
    summary = documented("Job summary")
    log = json.loads(roar(ws.root, "log", "--json").stdout)
    assert log and all(set(j) <= summary for j in log)
    artifact = json.loads(roar(ws.root, "show", "out.csv", "--json").stdout)
    assert artifact and set(artifact) <= documented("`roar show` of an artifact")
    assert set(artifact["lineage"]) <= documented("`roar show` of an artifact")
    session = json.loads(roar(ws.root, "show", "session", "--json").stdout)
    assert set(session) <= documented("`roar show` of a session")
    assert set(json.loads(roar(ws.root, "status", "--json").stdout)) <= documented("`roar status`")
    dag = json.loads(roar(ws.root, "dag", "--json").stdout)
    dag_doc = documented("`roar dag`")
    assert set(dag) <= dag_doc
    assert dag["nodes"] and all(set(node) <= dag_doc for node in dag["nodes"])
    label = json.loads(roar(ws.root, "label", "show", "@1", "--json").stdout)
    assert set(label) <= documented("`roar label show`")
