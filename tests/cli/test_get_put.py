"""`roar get` and `roar put` through the real CLI: records, exit codes, no partial files."""

from __future__ import annotations

import functools
import glob
import http.server
import os
import socket
import subprocess
import sys
import threading

import pytest

from roar.artifacts.hashing import hash_file
from roar.errors import ContextError
from roar.record import job as jobrec

IN_CI = os.environ.get("CI") == "true"


def roar(cwd, *args, env=None):
    return subprocess.run([sys.executable, "-m", "roar", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def records(workspace):
    return [jobrec.decode(open(p, "rb").read()) for p in glob.glob(f"{workspace}/.roar/jobs/*.msgpack")]


def leftovers(directory):
    return [n for n in os.listdir(directory) if ".roar-" in n]


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def work(tmp_path):
    d = tmp_path / "work"
    d.mkdir()
    return d


def test_get_over_http_records_the_url_as_input_and_the_file_as_output(server, work):
    root, base = server
    (root / "data.csv").write_bytes(b"a,b\n1,2\n")
    result = roar(work, "get", f"{base}/data.csv", "data.csv")
    assert result.returncode == 0, result.stderr
    digest = hash_file(str(work / "data.csv"))["blake3"]
    [rec] = records(work)
    assert rec["type"] == "get" and rec["exit_code"] == 0
    assert rec["inputs"] == [{"path": f"{base}/data.csv", "url": f"{base}/data.csv", "external": True,
                              "hash": digest, "hashes": {"blake3": digest}, "size": 8, "pids": []}]
    assert rec["outputs"][0]["path"] == str(work / "data.csv") and rec["outputs"][0]["hash"] == digest
    assert rec["transfer"]["source"] == f"{base}/data.csv"
    assert oct(os.stat(work / "data.csv").st_mode & 0o777) != oct(0o600)
    assert f"@1 {rec['uid']}  get -> {work / 'data.csv'}  8 bytes" in result.stderr


def test_get_http_404_exits_7_and_leaves_nothing(server, work):
    _, base = server
    result = roar(work, "get", f"{base}/missing.bin", "out.bin")
    assert result.returncode == ContextError.exit_code == 7
    assert result.stderr == f"roar: {base}/missing.bin: HTTP 404 File not found; check the URL\n"
    assert not (work / "out.bin").exists() and leftovers(work) == []


def test_get_unreachable_exits_7(work):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]   # closed when the block ends: nothing listens there
    result = roar(work, "get", f"http://127.0.0.1:{port}/x", "x")
    assert result.returncode == 7
    assert result.stderr == (f"roar: cannot reach http://127.0.0.1:{port}/x: Connection refused; "
                             "check the URL and the network\n")
    assert "Traceback" not in result.stderr and not (work / "x").exists()


def test_get_refuses_an_existing_dest_unless_forced(server, work):
    root, base = server
    (root / "f").write_text("new")
    (work / "f").write_text("old")
    result = roar(work, "get", f"{base}/f", "f")
    assert result.returncode == 7
    assert result.stderr == (f"roar: {work / 'f'} exists: choose another destination or pass --force "
                             "to replace it\n")
    assert (work / "f").read_text() == "old"
    assert roar(work, "get", "--force", f"{base}/f", "f").returncode == 0
    assert (work / "f").read_text() == "new"


def test_get_credentials_in_the_url_are_never_recorded(server, work):
    root, base = server
    (root / "f").write_text("x")
    url = base.replace("http://", "http://alice:hunter2@") + "/f?token=t0ps3cret&v=1"
    assert roar(work, "get", url, "f").returncode == 0
    data = open(glob.glob(f"{work}/.roar/jobs/*.msgpack")[0], "rb").read()
    assert b"hunter2" not in data and b"t0ps3cret" not in data
    assert records(work)[0]["inputs"][0]["url"] == f"{base}/f?v=1"


def test_get_a_directory_as_a_composite(tmp_path, work):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.txt").write_text("b")
    result = roar(work, "get", f"file://{src}", "copy")
    assert result.returncode == 0, result.stderr
    out = records(work)[0]["outputs"][0]
    assert out["kind"] == "composite" and out["path"] == str(work / "copy")
    assert sorted(m["name"] for m in out["members"]) == ["a.txt", "sub/b.txt"]
    assert (work / "copy" / "sub" / "b.txt").read_text() == "b"


def test_get_a_missing_file_source_exits_7(work):
    result = roar(work, "get", f"file://{work}/nope", "x")
    assert result.returncode == 7
    assert result.stderr == f"roar: source {work}/nope does not exist: check the path\n"


def test_get_an_unsupported_scheme_is_a_usage_error(work):
    result = roar(work, "get", "ftp://example.com/x", "x")
    assert result.returncode == 2
    assert result.stderr == "roar: unsupported location ftp://example.com/x: use one of http://, https://, " \
                            "file://, s3://\n"


def test_put_to_a_directory_verifies_and_records(tmp_path, work):
    (work / "model.pt").write_bytes(b"\0" * 1000)
    (work / "metrics").mkdir()
    (work / "metrics" / "m.json").write_text("{}")
    dest = tmp_path / "published"
    dest.mkdir()
    result = roar(work, "put", "model.pt", "metrics", f"file://{dest}")
    assert result.returncode == 0, result.stderr
    [rec] = records(work)
    assert rec["type"] == "put"
    assert [i["path"] for i in rec["inputs"]] == [str(work / "model.pt"), str(work / "metrics")]
    assert [(o["path"], o["verified"]) for o in rec["outputs"]] == [(str(dest / "model.pt"), True),
                                                                     (str(dest / "metrics"), True)]
    copied = hash_file(str(dest / "model.pt"))["blake3"]
    assert rec["outputs"][0]["hash"] == copied == rec["inputs"][0]["hash"]
    assert rec["outputs"][1]["kind"] == "composite"
    again = roar(work, "put", "model.pt", str(dest))
    assert again.returncode == 7 and "exists: choose another destination or pass --force" in again.stderr


def test_put_missing_source_and_missing_dest_dir_exit_7(tmp_path, work):
    missing = roar(work, "put", "nope", str(tmp_path))
    assert missing.returncode == 7
    assert missing.stderr == f"roar: source {work / 'nope'} does not exist: check the path\n"
    (work / "f").write_text("x")
    result = roar(work, "put", "f", f"file://{tmp_path}/absent")
    assert result.returncode == 7
    assert result.stderr == f"roar: destination directory {tmp_path}/absent does not exist: create it first\n"


def test_put_checksum_mismatch_places_nothing(tmp_path, work, monkeypatch):
    from roar.transfer import put as putmod

    (work / "f").write_text("good")
    dest = tmp_path / "dest"
    dest.mkdir()

    def corrupting_copy(src, dst):
        with open(dst, "w") as f:
            f.write("bad!")

    monkeypatch.chdir(work)
    monkeypatch.setattr(putmod.shutil, "copy", corrupting_copy)
    with pytest.raises(ContextError, match=r"does not match its source after the copy \(checksum mismatch\)"):
        putmod.put(["f"], str(dest))
    assert os.listdir(dest) == []


@pytest.fixture
def s3_server(monkeypatch):
    try:
        import boto3
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        if IN_CI:
            pytest.fail(f"the s3 extra must be installed in CI: {exc}")
        pytest.skip(f"boto3/moto not installed (pip install 'roar[test]'): {exc}")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    client = boto3.client("s3")
    client.create_bucket(Bucket="bkt")
    yield client, env
    server.stop()


def test_s3_put_then_get_round_trip(s3_server, tmp_path, work):
    client, env = s3_server
    (work / "weights.bin").write_bytes(os.urandom(4096))
    (work / "shards").mkdir()
    for i in range(3):
        (work / "shards" / f"{i}.txt").write_text(str(i))
    put = roar(work, "put", "weights.bin", "shards", "s3://bkt/runs/1/", env=env)
    assert put.returncode == 0, put.stderr
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="bkt")["Contents"])
    assert keys == ["runs/1/shards/0.txt", "runs/1/shards/1.txt", "runs/1/shards/2.txt", "runs/1/weights.bin"]
    [put_rec] = records(work)
    assert [o["path"] for o in put_rec["outputs"]] == ["s3://bkt/runs/1/weights.bin", "s3://bkt/runs/1/shards"]
    assert all(o["verified"] for o in put_rec["outputs"])
    assert roar(work, "put", "weights.bin", "s3://bkt/runs/1", env=env).returncode == 7

    got = roar(work, "get", "s3://bkt/runs/1/weights.bin", "w2.bin", env=env)
    assert got.returncode == 0, got.stderr
    assert (work / "w2.bin").read_bytes() == (work / "weights.bin").read_bytes()
    got_dir = roar(work, "get", "s3://bkt/runs/1/shards/", "shards2", env=env)
    assert got_dir.returncode == 0, got_dir.stderr
    assert sorted(os.listdir(work / "shards2")) == ["0.txt", "1.txt", "2.txt"]
    get_recs = sorted((r for r in records(work) if r["type"] == "get"), key=lambda r: r["step"])
    assert get_recs[0]["inputs"][0]["path"] == "s3://bkt/runs/1/weights.bin"
    assert get_recs[0]["outputs"][0]["hash"] == put_rec["inputs"][0]["hash"]
    assert get_recs[1]["outputs"][0]["hash"] == put_rec["inputs"][1]["hash"]   # same tree hash


def test_s3_missing_object_exits_7(s3_server, work):
    _, env = s3_server
    result = roar(work, "get", "s3://bkt/none/such", "x", env=env)
    assert result.returncode == 7
    assert result.stderr == "roar: s3://bkt/none/such: no such object or prefix; check the URL\n"
    assert leftovers(work) == []


# Lineage through get and put (docs/lineage-rules.md, "Transfers")

def show(work, ref):
    import json
    result = roar(work, "show", "--json", ref)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def dag(work):
    import json
    result = roar(work, "dag", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_acyclic(graph):
    edges: dict[str, set[str]] = {}
    for edge in graph["edges"]:
        if edge["role"] != "member":
            edges.setdefault(edge["from"], set()).add(edge["to"])
    done: set[str] = set()

    def visit(node, path):
        assert node not in path, f"cycle through {node}"
        if node in done:
            return
        for nxt in edges.get(node, ()):
            visit(nxt, path | {node})
        done.add(node)

    for node in list(edges):
        visit(node, frozenset())


def test_a_get_output_comes_from_that_jobs_url(server, tmp_path, work):
    root, base = server
    (root / "early.csv").write_bytes(b"same bytes\n")
    remote = tmp_path / "srv"
    remote.mkdir()
    (remote / "remote.csv").write_bytes(b"same bytes\n")
    assert roar(work, "get", f"{base}/early.csv", "early.csv").returncode == 0
    assert roar(work, "get", str(remote / "remote.csv"), "plain.csv").returncode == 0
    info = show(work, "plain.csv")
    [latest] = [j for j in info["lineage"]["jobs"] if j["uid"] == info["lineage"]["made_by"]]
    assert latest["command"].endswith("plain.csv")
    assert [i["path"] for i in latest["inputs"]] == [f"file://{remote / 'remote.csv'}"]
    assert all(i["made_by"] is None for i in latest["inputs"])
    assert len(info["lineage"]["jobs"]) == 1
    # same bytes, several origins: every one is listed
    assert {str(work / "early.csv"), str(work / "plain.csv"), f"{base}/early.csv",
            f"file://{remote / 'remote.csv'}"} == set(info["paths"])
    lines = roar(work, "show", "plain.csv").stdout.splitlines()
    tree = lines[lines.index("  lineage:") + 1:]
    assert tree[0].startswith(f"    {work / 'plain.csv'}  ") and "(source)" in tree[1], lines
    graph = dag(work)
    assert_acyclic(graph)
    urls = [n for n in graph["nodes"] if n["kind"] == "location"]
    assert sorted(n["paths"] for n in urls) == sorted([[f"{base}/early.csv"],
                                                       [f"file://{remote / 'remote.csv'}"]])


def test_a_put_consumes_its_inputs_and_makes_no_local_artifact(tmp_path, work):
    src = tmp_path / "src"
    src.mkdir()
    (src / "metrics.json").write_text('{"acc": 1}\n')
    (src / "model.json").write_text('{"w": 2}\n')
    dest = tmp_path / "dest"
    dest.mkdir()
    for name in ("metrics.json", "model.json"):
        assert roar(work, "get", str(src / name), name).returncode == 0
    put = roar(work, "put", "model.json", "metrics.json", str(dest))
    assert put.returncode == 0, put.stderr
    info = show(work, "metrics.json")
    assert [j["type"] for j in info["produced_by"]] == ["get"]
    assert [j["type"] for j in info["consumed_by"]] == ["put"]
    assert [j["type"] for j in info["lineage"]["jobs"]] == ["get"]
    paths = {i["path"] for j in info["lineage"]["jobs"] for i in j["inputs"]}
    assert not any("model.json" in p for p in paths)
    graph = dag(work)
    assert_acyclic(graph)
    put_node = next(n["id"] for n in graph["nodes"] if n.get("type") == "put")
    made = {e["to"] for e in graph["edges"] if e["from"] == put_node}
    assert made and all(m.startswith("location:") for m in made)
    rebuilt = roar(work, "db", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert dag(work) == graph and show(work, "metrics.json")["lineage"] == info["lineage"]
