"""`roar register` against a real `roar glaas serve` (SQLite and PostgreSQL), with a real
three-step pipeline recorded by the real tracer: anonymous and with a token, again (same
session hash, nothing duplicated), --dry-run (sends nothing, shows only redacted values),
an interrupted registration (nothing visible; the next run completes it), connection
errors and 5xx (retried), a bad token (one line, exit 13), labels."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from roar.remote.errors import AuthRefused, ServerUnavailable

pytestmark = pytest.mark.ebpf

SECRET = "hunter2hunter2"
STEPS = (
    # reads API_TOKEN (a secret name: recorded as <redacted>) and in.txt
    (f"API_TOKEN={SECRET}", [sys.executable, "-c",
                             "import os; os.environ.get('API_TOKEN'); "
                             "open('mid.txt', 'w').write(''.join(sorted(open('in.txt'))))"]),
    (None, ["/bin/sh", "-c", "tr a-z A-Z < mid.txt > up.txt", f"--password={SECRET}"]),
    (None, ["/bin/sh", "-c", "cat mid.txt up.txt > final.txt"]),
)


def roar(cwd, *args, env=None, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "roar", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=timeout)


def client_env(config: Path, url: str | None = None, token: str | None = None, **extra: str) -> dict:
    """roar's environment as a user's: its own config directory, this server, this token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUDO_", "GLAAS_", "ROAR_"))}
    env["XDG_CONFIG_HOME"] = str(config)
    env["ROAR_GLAAS_RETRIES"] = "3"
    if url:
        env["GLAAS_URL"] = url
    if token:
        env["ROAR_GLAAS_TOKEN"] = token
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """A git project where three traced jobs made final.txt: {root, final, hashes}."""
    root = tmp_path_factory.mktemp("pipeline") / "proj"
    root.mkdir()
    (root / "in.txt").write_text("b\na\nc\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "in.txt"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "input"], cwd=root, check=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SUDO_", "GLAAS_", "ROAR_"))}
    for assignment, argv in STEPS:
        env = dict(base)
        if assignment:
            key, _, value = assignment.partition("=")
            env[key] = value
        done = roar(root, "run", "--", *argv, env=env)
        assert done.returncode == 0, done.stderr
    assert roar(root, "label", "set", "@3", "stage=final", env=base).returncode == 0
    show = json.loads(roar(root, "show", "final.txt", "--json", env=base).stdout)
    return {"root": root, "final": show["hash"], "env": base}


def counts(db_url: str) -> dict[str, int]:
    """Rows the server holds, straight from its database."""
    from sqlalchemy import text

    from roar.glaas.db import open_engine

    engine = open_engine(db_url)
    try:
        with engine.connect() as conn:
            return {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar()
                    for t in ("dags", "jobs", "job_io", "artifacts", "staged", "registration_sessions",
                              "labels")}
    finally:
        engine.dispose()


def register(pipeline, config, url, *args, token=None, **extra) -> subprocess.CompletedProcess:
    return roar(pipeline["root"], "register", *args, env=client_env(config, url, token, **extra))


def receipt(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


class Proxy:
    """A loopback HTTP proxy in front of the server that records requests and can break
    them: `rule(method, path, n)` returns None (forward), "drop" (close the connection
    without a reply), "lose" (forward it, then close the connection without the reply: the
    server did it, the client cannot know), a status to answer with (503), or "hold" (keep
    the request until `release` is set, then drop). `most_in_flight`: the most requests it
    held at once."""

    def __init__(self, backend: str) -> None:
        self.backend = urlsplit(backend)
        self.seen: list[tuple[str, str]] = []
        self.rule = lambda method, path, n: None
        self.held = threading.Event()
        self.release = threading.Event()
        self.in_flight = self.most_in_flight = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self._forward()

            def do_POST(self):
                self._forward()

            def _forward(self):
                with proxy._lock:
                    proxy.in_flight += 1
                    proxy.most_in_flight = max(proxy.most_in_flight, proxy.in_flight)
                try:
                    self._handle()
                finally:
                    with proxy._lock:
                        proxy.in_flight -= 1

            def _handle(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with proxy._lock:
                    proxy.seen.append((self.command, self.path))
                    n = len(proxy.seen)
                action = proxy.rule(self.command, self.path, n)
                if action == "hold":
                    proxy.held.set()
                    proxy.release.wait(120)
                if action in ("drop", "hold"):
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if isinstance(action, int):
                    self._reply(action, b'{"success": false, "detail": "busy"}', "application/json")
                    return
                conn = http.client.HTTPConnection(proxy.backend.hostname, proxy.backend.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                reply = conn.getresponse()
                data = reply.read()
                conn.close()
                if action == "lose":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self._reply(reply.status, data, reply.getheader("Content-Type") or "application/json")

            def _reply(self, status, data, kind):
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def proxy(server):
    p = Proxy(server.url)
    yield p
    p.close()


def test_anonymous_registration_and_again_gives_the_same_hash_and_no_duplicates(pipeline, server, db_url,
                                                                               tmp_path):
    dry = json.loads(register(pipeline, tmp_path, server.url, "final.txt", "--dry-run", "--json").stdout)
    first = receipt(register(pipeline, tmp_path, server.url, "final.txt", "--json"))
    assert first["created"] is True and first["scope"] == "anonymous" and first["jobs"] == 3
    assert first["session_hash"] == dry["session_hash"]    # the client computes the server's hash
    assert first["url"] == f"{server.url}/s/{first['session_hash']}"
    assert first["reproduce"] == f"roar reproduce {pipeline['final']}"
    status, dag = server.call("GET", f"/sessions/{first['session_hash']}")
    assert status == 200
    assert [j["command"].split()[-1] for j in dag["jobs"]][1:] == ["'--password=<redacted>'", "final.txt'"]
    assert {e["path"] for j in dag["jobs"] for e in j["inputs"] + j["outputs"]} == {
        "in.txt", "mid.txt", "up.txt", "final.txt"}    # relative to the workspace root
    status, lineage = server.call("GET", f"/artifacts/{pipeline['final']}/lineage")
    assert lineage["producedBy"]["sessionHash"] == first["session_hash"]
    before = counts(db_url)
    assert before["dags"] == 1 and before["jobs"] == 3
    again = receipt(register(pipeline, tmp_path, server.url, "final.txt", "--json"))
    assert again["session_hash"] == first["session_hash"] and again["created"] is False
    after = counts(db_url)
    assert {k: after[k] for k in ("dags", "jobs", "job_io", "artifacts", "labels")} == \
        {k: before[k] for k in ("dags", "jobs", "job_io", "artifacts", "labels")}
    done = register(pipeline, tmp_path, server.url, "final.txt")
    assert done.returncode == 0
    assert done.stdout.splitlines() == [f"already registered as session {first['session_hash']} (anonymous)",
                                        f"  {server.url}/s/{first['session_hash']}",
                                        f"  roar reproduce {pipeline['final']}"]


def test_a_job_ref_sends_it_and_its_upstream_only(pipeline, server, tmp_path):
    done = receipt(register(pipeline, tmp_path, server.url, "@2", "--json"))
    assert done["jobs"] == 2 and done["target"] is None
    _, dag = server.call("GET", f"/sessions/{done['session_hash']}")
    assert [j["stepNumber"] for j in dag["jobs"]] == [1, 2]


def test_with_a_token_registration_is_private_and_owned(pipeline, server, make_token, tmp_path):
    alice = make_token("alice")
    done = receipt(register(pipeline, tmp_path, server.url, "final.txt", "--json", token=alice))
    assert done["scope"] == "private"
    digest = done["session_hash"]
    assert server.call("GET", f"/sessions/{digest}")[0] == 404                      # anonymous
    assert server.call("GET", f"/sessions/{digest}", token=make_token("bob"))[0] == 404
    status, dag = server.call("GET", f"/sessions/{digest}", token=alice)
    assert status == 200 and dag["scope"] == {"owner_name": "alice", "project_name": None,
                                              "visibility": "private"}
    again = receipt(register(pipeline, tmp_path, server.url, "final.txt", "--json", token=alice))
    assert again["session_hash"] == digest and again["created"] is False
    public = receipt(register(pipeline, tmp_path, server.url, "final.txt", "--public", "--json", token=alice))
    assert public["session_hash"] == digest and public["scope"] == "private"   # the same DAG: kept private


def test_dry_run_sends_nothing_and_only_redacted_values(pipeline, proxy, db_url, make_token, tmp_path):
    token = make_token("carol")
    for extra in ((), ("--json",)):
        done = register(pipeline, tmp_path, proxy.url, "final.txt", "--dry-run", *extra, token=token)
        assert done.returncode == 0, done.stderr
        assert SECRET not in done.stdout and token not in done.stdout
        assert "<redacted>" in done.stdout
    assert proxy.seen == []
    assert counts(db_url)["registration_sessions"] == 0
    doc = json.loads(done.stdout)
    jobs = next(r["body"]["jobs"] for r in doc["requests"] if r["path"].endswith("/jobs/batch"))
    first = json.loads(jobs[0]["metadata"])
    assert first["runtime"]["env_vars"]["API_TOKEN"] == "<redacted>"
    assert "environment" not in jobs[0]["metadata"] and "HOME" not in first["runtime"]["env_vars"]
    assert jobs[1]["command"].endswith("'--password=<redacted>'")
    # what it prints is what a real registration sends
    anonymous = json.loads(register(pipeline, tmp_path, proxy.url, "final.txt", "--dry-run", "--json").stdout)
    paths = [r["path"] for r in anonymous["requests"]]
    real = receipt(register(pipeline, tmp_path, proxy.url, "final.txt", "--json"))
    assert real["session_hash"] == anonymous["session_hash"]
    assert paths[0] == "/api/v1/health"
    rs_id = proxy.seen[2][1].split("/")[4]
    sent, planned = [path for _, path in proxy.seen], [p.replace("rs_ID", rs_id) for p in paths]
    assert sorted(sent) == sorted(planned)          # the edges go several at a time: in any order
    assert sent[:4] == planned[:4] and sent[-2:] == planned[-2:]   # health, open, jobs, artifacts; ...


def test_an_interrupted_registration_leaves_nothing_and_the_next_run_completes_it(pipeline, server, proxy,
                                                                                db_url, tmp_path):
    proxy.rule = lambda method, path, n: "hold" if path.endswith("/finalize") else None
    client = subprocess.Popen([sys.executable, "-m", "roar", "register", "final.txt", "--json"],
                              cwd=pipeline["root"], env=client_env(tmp_path, proxy.url),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proxy.held.wait(120), "the registration never reached finalize"
        staged = counts(db_url)
        assert staged["staged"] > 0 and staged["dags"] == 0   # it was mid-way
        client.kill()
    finally:
        client.wait()
        client.stdout.close()
        client.stderr.close()
    assert server.call("GET", f"/artifacts/{pipeline['final']}")[0] == 404   # nothing is visible
    assert counts(db_url)["jobs"] == 0
    proxy.release.set()
    done = receipt(register(pipeline, tmp_path, server.url, "final.txt", "--json"))
    assert done["created"] is True
    status, lineage = server.call("GET", f"/artifacts/{pipeline['final']}/lineage")
    assert status == 200 and lineage["producedBy"]["sessionHash"] == done["session_hash"]
    assert {k: counts(db_url)[k] for k in ("dags", "jobs")} == {"dags": 1, "jobs": 3}


def test_connection_errors_and_5xx_are_retried(pipeline, proxy, db_url, tmp_path):
    faults = {2: "drop", 3: 503, 5: 429, 7: "drop"}     # these requests fail
    proxy.rule = lambda method, path, n: faults.get(n)
    done = receipt(register(pipeline, tmp_path, proxy.url, "final.txt", "--json", ROAR_GLAAS_RETRIES="4"))
    assert done["created"] is True and counts(db_url)["dags"] == 1
    assert proxy.seen[1] == proxy.seen[2] == proxy.seen[3]   # the same request, until it went through


def test_a_server_that_stays_down_is_one_line_and_exit_12(pipeline, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]     # nothing listens there once closed
    done = register(pipeline, tmp_path, f"http://127.0.0.1:{port}", "final.txt", ROAR_GLAAS_RETRIES="2")
    assert done.returncode == ServerUnavailable.exit_code
    last = done.stderr.splitlines()[-1]
    assert last.startswith(f"roar: cannot reach the GLaaS server at http://127.0.0.1:{port} (")
    assert "after 2 attempts" in last and "Traceback" not in done.stderr
    assert "retrying in 0.25 s" in done.stderr


def test_a_bad_token_is_one_line_and_exit_13(pipeline, server, db_url, tmp_path):
    done = register(pipeline, tmp_path, server.url, "final.txt", token="glaas_not-a-token")
    assert done.returncode == AuthRefused.exit_code
    assert done.stderr == (f"roar: the GLaaS server at {server.url} refused: unknown or revoked token: "
                           "ask the server's admin for one (roar glaas token create)\n")
    assert counts(db_url)["registration_sessions"] == 0


def test_usage_errors(pipeline, server, tmp_path):
    done = register(pipeline, tmp_path, server.url, "final.txt", "--private")
    assert done.returncode == 2 and "--private needs a token" in done.stderr
    done = register(pipeline, tmp_path, server.url, "final.txt", "--public", "--anonymous")
    assert done.returncode == 2
    done = register(pipeline, tmp_path, server.url, "in.txt")
    assert done.returncode == 3 and "made by no recorded job" in done.stderr
    done = register(pipeline, tmp_path, None, "final.txt")
    assert done.returncode == ServerUnavailable.exit_code and "no GLaaS server is configured" in done.stderr


def test_labels_go_with_the_registration_and_sync(pipeline, server, make_token, tmp_path):
    token = make_token("dave")
    done = receipt(register(pipeline, tmp_path, server.url, "final.txt", "--json", token=token))
    digest = done["session_hash"]
    status, dag = server.call("GET", f"/sessions/{digest}", token=token)
    last = dag["jobs"][-1]["jobUid"]
    query = f"/labels/current?entity_type=job&session_hash={digest}&job_uid={last}"
    status, current = server.call("GET", query, token=token)
    assert status == 200 and current["metadata"] == {"stage": "final"}
    env = client_env(tmp_path, server.url, token)
    root = pipeline["root"]
    try:
        assert roar(root, "label", "set", "@3", "stage=shipped", "owner=me", env=env).returncode == 0
        pushed = roar(root, "label", "push", "final.txt", env=env)
        assert pushed.returncode == 0, pushed.stderr
        assert server.call("GET", query, token=token)[1]["metadata"] == {"stage": "shipped", "owner": "me"}
        assert roar(root, "label", "unset", "@3", "owner", env=env).returncode == 0
        pulled = roar(root, "label", "pull", "final.txt", env=env)
        assert pulled.returncode == 0, pulled.stderr
        assert roar(root, "label", "show", "@3", env=env).stdout.splitlines() == ["owner=me", "stage=shipped"]
        eve = client_env(tmp_path, server.url, make_token("eve"))
        other = roar(root, "label", "push", "final.txt", env=eve)
        assert other.returncode == 3 and "not registered" in other.stderr   # eve's lineage would be hers
    finally:
        roar(root, "label", "unset", "@3", "owner", env=env)
        roar(root, "label", "set", "@3", "stage=final", env=env)


def test_a_progress_bar_on_a_terminal_only(pipeline, server, tmp_path):
    import pty

    master, slave = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "roar", "register", "final.txt"], cwd=pipeline["root"],
                              env=client_env(tmp_path, server.url), stdout=subprocess.PIPE, stderr=slave,
                              text=True, timeout=120)
        os.close(slave)
        slave = -1
        shown = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:    # EIO: the terminal's other side is closed
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert done.returncode == 0
    assert b"registering [" in shown and b"] 11/11" in shown   # open, 8 sends, finalize, labels
    piped = register(pipeline, tmp_path, server.url, "final.txt")
    assert piped.returncode == 0 and piped.stderr == ""


def test_an_anonymous_dag_keeps_its_first_labels_and_registering_again_says_so(pipeline, server, tmp_path):
    first = receipt(register(pipeline, tmp_path, server.url, "final.txt", "--json"))
    env = client_env(tmp_path, server.url)
    try:
        assert roar(pipeline["root"], "label", "set", "@3", "stage=changed", env=env).returncode == 0
        again = register(pipeline, tmp_path, server.url, "final.txt", "--json")
        assert receipt(again)["session_hash"] == first["session_hash"]
        assert again.stderr.startswith("roar: warning: labels not updated: the GLaaS server at ")
        assert "write access is required" in again.stderr
    finally:
        roar(pipeline["root"], "label", "set", "@3", "stage=final", env=env)


def test_batches_stay_under_the_hosted_services_body_limit():
    from roar.remote.register import BATCH_BYTES, _batches

    items = [{"metadata": "x" * 30_000}] * 7 + [{"metadata": "y" * 200_000}] + [{"n": 1}] * 5
    batches = list(_batches(items, 3))
    assert [len(b) for b in batches] == [2, 2, 2, 1, 1, 3, 2]
    assert all(len(json.dumps(b)) <= BATCH_BYTES for b in batches if len(b) > 1)   # one big item goes alone
    assert [len(b) for b in _batches([{"n": 1}] * 10, 4)] == [4, 4, 2]
