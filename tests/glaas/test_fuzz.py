"""Bad input, generated: schemathesis fuzzes every operation of /api/v1/openapi.json of a real
`roar glaas serve` on loopback, with a fixed seed and a fixed small number of examples per
operation, valid and invalid data alike (SQLite: the database plays no part in parsing).
The phase is schemathesis's "coverage": for each schema constraint, the values at and just
past its bounds, wrong types included; it is deterministic and takes about a minute here.

The checks: never a 5xx, and a request that breaks the schema is refused (4xx) with a
one-line message, not accepted. To reach past the 404s, the run is given ids that exist: a
registration session with a staged job, a finalized DAG and its artifacts, and a token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.glaas.conftest import Server, roar_cmd
from tests.glaas.test_server import finalize, lineage, stage

EXAMPLES = 8      # per operation, in the phases that draw examples
SEED = 20261203
REFUSED = [400, 401, 403, 404, 405, 409, 413, 415, 422]


def _known_ids(server: Server, token: str) -> dict[str, str]:
    jobs, edges, arts = lineage()
    rid, _, auth = stage(server, jobs, edges, arts, token=token)
    h = finalize(server, rid, auth, scope_request={"visibility": "public"})[1]["hash"]
    status, rs = server.call("POST", "/registration-sessions", token=token)
    job = dict(jobs[0], job_uid="f" * 32)
    assert server.call("POST", f"/registration-sessions/{rs['registration_session_id']}/jobs/batch",
                       {"jobs": [job]}, token=token)[0] == 201
    return {"rs_id": rs["registration_session_id"], "job_uid": job["job_uid"], "session_hash": h,
            "prefix": arts[2]}


def _config(path: Path, ids: dict[str, str]) -> None:
    lines = ["[parameters]"] + [f'"path.{k}" = "{v}"' for k, v in ids.items()]
    lines += ["", "[checks.negative_data_rejection]", f"expected-statuses = {json.dumps(REFUSED)}"]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.slow
def test_fuzzing_the_openapi_finds_no_5xx_and_no_accepted_bad_payload(tmp_path):
    st = Path(sys.executable).with_name("st")
    if not st.exists():
        pytest.skip("schemathesis is not installed in this venv")
    db = f"sqlite:///{tmp_path / 'glaas.db'}"
    token = json.loads(roar_cmd("glaas", "token", "create", "--user", "fuzz", "--db", db, "--json",
                                check=True).stdout)["token"]
    server = Server(db)
    try:
        _config(tmp_path / "schemathesis.toml", _known_ids(server, token))
        report = tmp_path / "report.json"
        done = subprocess.run(
            [str(st), "--config-file", str(tmp_path / "schemathesis.toml"), "run",
             f"{server.url}/api/v1/openapi.json", "--checks", "not_a_server_error,negative_data_rejection",
             "--phases", "coverage", "--mode", "all", "--max-examples", str(EXAMPLES),
             "--seed", str(SEED), "--workers", "4", "--no-shrink", "--request-timeout", "30",
             "-H", f"Authorization: Bearer {token}", "--report", "json", "--report-json-path", str(report),
             "--warnings", "off"],
            capture_output=True, text=True, timeout=240, cwd=tmp_path,
            env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
        summary = done.stdout[-8000:] + "\nserver log:\n" + "".join(server.log)[-6000:]
        assert report.exists(), summary + done.stderr
        run = json.loads(report.read_text())
        assert run["complete"] and run["failures"] == [], summary
        # schemathesis's own generator sometimes fails in a worker thread ("Runtime Error"):
        # that is the tool's, not the server's; anything else (a network error: a reset
        # connection, a timeout) is the server's
        assert {e["title"] for e in run["errors"]} <= {"Runtime Error"}, summary
        assert run["operations"]["tested"] >= run["operations"]["total"] - 4, summary
        assert run["test_cases"]["generated"] > 1000, summary
    finally:
        server.stop()


def test_a_wrong_type_is_refused_not_coerced(server):
    """What the fuzzing found: JSON `false` was taken for a size of 0 and a long string of digits
    for a project id. Types are strict now."""
    jobs, _, _ = lineage()
    status, rs = server.call("POST", "/registration-sessions", {"mode": "anonymous_public"})
    rid, rst = rs["registration_session_id"], rs["registration_session_token"]
    status, out = server.call("POST", f"/registration-sessions/{rid}/jobs/batch",
                              {"jobs": [dict(jobs[0], exit_code=False)]}, rs=rst)
    assert status == 422 and out["detail"].startswith("invalid request: jobs.0.exit_code: ")
    assert "\n" not in out["detail"]
    body = {"artifacts": [{"hashes": [{"algorithm": "blake3", "digest": "ab" * 32}], "size": True}]}
    status, out = server.call("POST", f"/registration-sessions/{rid}/artifacts/batch", body, rs=rst)
    assert status == 422 and "size" in out["detail"]
    scope = {"project_id": "1" * 200}
    status, out = server.call("POST", "/sessions", {"hash": "cd" * 32, "scope_request": scope})
    assert status == 422 and "project_id" in out["detail"]
    status, out = server.call("POST", f"/registration-sessions/{rid}/jobs/batch", {"jobs": [jobs[0]] * 5001},
                              rs=rst)
    assert status == 422 and "jobs" in out["detail"]
