"""SSH-signature authentication with keys made here by ssh-keygen and registered with
`roar glaas key add`, signed exactly as roar-cli 0.4.7 signs (`ssh-keygen -Y sign -n glaas`
over "ts\\nMETHOD\\npath[\\nsha256(body)]"), on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.glaas.conftest import roar_cmd
from tests.glaas.test_server import lineage

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None,
                                reason="ssh-keygen is not installed (apt-get install openssh-client)")


def make_key(where: Path, name: str) -> Path:
    key = where / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key


def fingerprint(key: Path) -> str:
    blob = base64.b64decode(Path(f"{key}.pub").read_text().split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def signature(key: Path, method: str, path: str, body: bytes | None = None, ts: int | None = None,
              namespace: str = "glaas", keyid: str | None = None) -> str:
    ts = int(time.time()) if ts is None else ts
    payload = f"{ts}\n{method}\n{path}" + (f"\n{hashlib.sha256(body).hexdigest()}" if body else "")
    data = key.parent / f"payload-{time.monotonic_ns()}"
    data.write_bytes(payload.encode())
    subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-f", str(key), "-n", namespace, str(data)], check=True,
                   capture_output=True)
    armored = Path(f"{data}.sig").read_text().splitlines()
    sig = "".join(line for line in armored if not line.startswith("-----"))
    return f'Signature keyid="{keyid or fingerprint(key)}" ts="{ts}" sig="{sig}"'


def signed(server, key, method, path, body=None, **kw):
    raw = json.dumps(body).encode() if body is not None else None
    header = signature(key, method, "/api/v1" + path, raw, **kw)
    return server.call(method, path, raw=raw, headers={"Authorization": header})


@pytest.fixture
def keys(tmp_path, db_url):
    alice, other = make_key(tmp_path, "alice"), make_key(tmp_path, "mallory")
    done = roar_cmd("glaas", "key", "add", "--user", "alice", f"{alice}.pub", "--db", db_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout == fingerprint(alice) + "\n"
    return alice, other


def test_a_good_signature_is_the_user_and_registers_privately(server, keys):
    alice, _ = keys
    status, me = signed(server, alice, "GET", "/auth/me")
    assert status == 200 and me["user"]["username"] == "alice", me
    assert signed(server, alice, "GET", "/sessions?limit=1")[0] == 200   # roar-cli's probe, with a query
    # a whole registration, every write signed over its body
    jobs, edges, arts = lineage()
    status, rs = signed(server, alice, "POST", "/registration-sessions", {})
    assert status == 201 and rs["mode"] == "authenticated", rs
    rid = rs["registration_session_id"]
    assert signed(server, alice, "POST", f"/registration-sessions/{rid}/jobs/batch", {"jobs": jobs})[0] == 201
    for uid, (ins, outs) in edges.items():
        for kind, items in (("inputs", ins), ("outputs", outs)):
            body = {"artifacts": [{"hash": h, "path": p} for h, p in items]}
            status, _ = signed(server, alice, "POST", f"/registration-sessions/{rid}/jobs/{uid}/{kind}", body)
            assert status == 201
    status, receipt = signed(server, alice, "POST", f"/registration-sessions/{rid}/finalize",
                             {"git_commit": "cd" * 20, "scope_request": {"visibility": "private"}})
    assert status == 200, receipt
    assert server.call("GET", f"/sessions/{receipt['hash']}")[0] == 404    # private: not to anonymous
    status, dag = signed(server, alice, "GET", f"/sessions/{receipt['hash']}")
    assert status == 200 and dag["scope"]["owner_name"] == "alice"


def test_an_unregistered_key_a_wrong_key_or_namespace_is_refused(server, keys):
    alice, mallory = keys
    status, out = signed(server, mallory, "GET", "/auth/me")
    assert status == 401 and "not registered" in out["detail"]
    # mallory signs, claiming alice's key
    status, out = signed(server, mallory, "GET", "/auth/me", keyid=fingerprint(alice))
    assert status == 401 and out["detail"].startswith("bad signature")
    status, out = signed(server, alice, "GET", "/auth/me", namespace="git")
    assert status == 401 and out["detail"].startswith("bad signature")
    # a signature over another request (another path, another body) does not transfer
    header = signature(alice, "GET", "/api/v1/auth/me")
    status, out = server.call("GET", "/auth/access-context", headers={"Authorization": header})
    assert status == 401
    body = json.dumps({"mode": "authenticated"}).encode()
    header = signature(alice, "POST", "/api/v1/registration-sessions", body)
    status, out = server.call("POST", "/registration-sessions", raw=b'{"mode": "anonymous_public"}',
                              headers={"Authorization": header})
    assert status == 401 and "bad signature" in out["detail"]
    status, out = server.call("GET", "/auth/me", headers={"Authorization": 'Signature keyid="x"'})
    assert status == 401 and out["detail"].startswith("malformed Signature header")


def test_an_old_or_replayed_signature_is_refused(server, keys):
    alice, _ = keys
    status, out = signed(server, alice, "GET", "/auth/me", ts=int(time.time()) - 3600)
    assert status == 401 and "from the server's clock" in out["detail"]
    status, out = signed(server, alice, "GET", "/auth/me", ts=int(time.time()) + 3600)
    assert status == 401
    body = json.dumps({}).encode()
    header = signature(alice, "POST", "/api/v1/registration-sessions", body)
    first = server.call("POST", "/registration-sessions", raw=body, headers={"Authorization": header})
    again = server.call("POST", "/registration-sessions", raw=body, headers={"Authorization": header})
    assert first[0] == 201 and again[0] == 401 and "already received" in again[1]["detail"]
    # a GET may be read twice with one signature (an Ed25519 signature is deterministic)
    header = signature(alice, "GET", "/api/v1/auth/me")
    twice = [server.call("GET", "/auth/me", headers={"Authorization": header})[0] for _ in range(2)]
    assert twice == [200, 200]


def test_a_removed_key_no_longer_signs(server, keys, db_url):
    alice, _ = keys
    done = roar_cmd("glaas", "key", "remove", fingerprint(alice), "--db", db_url)
    assert (done.returncode, done.stdout) == (0, f"removed {fingerprint(alice)}\n")
    assert signed(server, alice, "GET", "/auth/me")[0] == 401
    done = roar_cmd("glaas", "key", "remove", fingerprint(alice), "--db", db_url)
    assert done.returncode == 3 and done.stderr.startswith("roar: no key ")


def test_key_add_refuses_what_is_not_a_public_key(tmp_path, db_url):
    alice = make_key(tmp_path, "alice")
    for name, text in (("private", alice.read_text()), ("junk", "ssh-ed25519 not-base64!\n"),
                       ("two", Path(f"{alice}.pub").read_text() * 2)):
        (tmp_path / name).write_text(text)
        done = roar_cmd("glaas", "key", "add", "--user", "alice", str(tmp_path / name), "--db", db_url)
        assert done.returncode == 2 and done.stderr.startswith("roar: ") and "Traceback" not in done.stderr
        assert len(done.stderr.splitlines()) == 1
    (tmp_path / "link.pub").symlink_to(f"{alice}.pub")
    done = roar_cmd("glaas", "key", "add", "--user", "alice", str(tmp_path / "link.pub"), "--db", db_url)
    assert done.returncode == 8 and "symbolic link" in done.stderr
    done = roar_cmd("glaas", "key", "add", "--user", "alice", str(tmp_path / "none.pub"), "--db", db_url)
    assert done.returncode == 3
    # the same key for a second user: refused, it names one user
    roar_cmd("glaas", "key", "add", "--user", "alice", f"{alice}.pub", "--db", db_url, check=True)
    done = roar_cmd("glaas", "key", "add", "--user", "bob", f"{alice}.pub", "--db", db_url)
    assert done.returncode == 2 and "another user" in done.stderr

