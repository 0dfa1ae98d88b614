"""`env_read`: the variables a traced tree read, with the values it got (docs/context.md,
"Variables read"), from libc's getenv (uprobes) and from Python's os.environ (start-up hook)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from roar.errors import CorruptStore
from tests.trace.conftest import roar

SCRIPT = """\
import os, sys
print(os.environ["ROAR_T_ITEM"], os.getenv("ROAR_T_GET"), "ROAR_T_ABSENT" in os.environ)
print(os.environ.get("PYTHONPATH"), [p for p in sys.path if "pyhook" in p])
"""


def _run(cmd: list[str], cwd: Path, step: int = 1, **env: str) -> tuple[subprocess.CompletedProcess, dict]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ROAR_T_")}
    proc = roar("run", "-q", "--", *cmd, cwd=cwd, env={**environ, **env})
    assert proc.returncode == 0, proc.stderr.decode()
    shown = roar("show", f"@{step}", "--json", cwd=cwd)
    assert shown.returncode == 0, shown.stderr.decode()
    return proc, json.loads(shown.stdout)


@pytest.mark.ebpf
def test_getenv_and_secure_getenv_are_recorded_once_with_their_values(tmp_path: Path, programs: Path) -> None:
    proc, record = _run([str(programs / "getenv")], tmp_path, ROAR_T_DIRECT="a", ROAR_T_SECURE="b",
                        ROAR_T_NOT_READ="c")
    assert proc.stdout == b"a b -\n"
    read = record["env_read"]
    assert (read["ROAR_T_DIRECT"], read["ROAR_T_SECURE"], read["ROAR_T_UNSET"]) == ("a", "b", None)
    assert "ROAR_T_NOT_READ" not in read      # set, never read
    assert "ROAR_T_NOT_READ" in record["context"]["environment"]["variables"]


@pytest.mark.ebpf
def test_reads_made_inside_libc_by_locale_and_time_zone_set_up(tmp_path: Path, programs: Path) -> None:
    _, record = _run([str(programs / "tzlocale")], tmp_path, TZ="Asia/Kolkata", LANG="C.UTF-8",
                     ROAR_T_NOT_READ="c")
    read = record["env_read"]
    assert read["TZ"] == "Asia/Kolkata"
    assert read["LANG"] == "C.UTF-8"
    assert "LC_ALL" in read and read["LC_ALL"] is None
    assert "ROAR_T_NOT_READ" not in read


@pytest.mark.ebpf
def test_a_child_reads_the_value_it_was_given_not_the_initial_one(tmp_path: Path, programs: Path) -> None:
    cmd = ["/bin/sh", "-c", f"ROAR_T_DIRECT=changed {programs / 'getenv'}"]
    _, record = _run(cmd, tmp_path, ROAR_T_DIRECT="initial")
    assert record["env_read"]["ROAR_T_DIRECT"] == "changed"
    assert record["context"]["environment"]["variables"]["ROAR_T_DIRECT"] == "initial"


@pytest.mark.ebpf
def test_secret_values_read_are_redacted(tmp_path: Path, programs: Path) -> None:
    secret = "s3cr3t-value-that-must-not-leak"
    cmd = [sys.executable, "-c", "import os; os.environ['MY_API_TOKEN']; os.environ['ROAR_T_URL']"]
    _, record = _run(cmd, tmp_path, MY_API_TOKEN=secret, ROAR_T_URL=f"https://u:{secret}@example.com/m")
    assert record["env_read"]["MY_API_TOKEN"] == "<redacted>"
    assert secret not in record["env_read"]["ROAR_T_URL"]
    for path in (tmp_path / ".roar" / "jobs").iterdir():
        assert secret.encode() not in path.read_bytes()


@pytest.mark.ebpf
def test_python_reads_of_os_environ_are_recorded(tmp_path: Path) -> None:
    (tmp_path / "read.py").write_text(SCRIPT)
    env = {"ROAR_T_ITEM": "1", "ROAR_T_GET": "2", "ROAR_T_NOT_READ": "3"}
    proc, record = _run([sys.executable, "read.py"], tmp_path, **env)
    read = record["env_read"]
    assert (read["ROAR_T_ITEM"], read["ROAR_T_GET"], read["ROAR_T_ABSENT"]) == ("1", "2", None)
    assert "ROAR_T_NOT_READ" not in read
    # the hook leaves nothing the program can see: same output as untraced
    plain = subprocess.run([sys.executable, "read.py"], cwd=tmp_path, capture_output=True,
                           env={**os.environ, **env})
    assert proc.stdout == plain.stdout
    assert "PYTHONPATH" not in read or read["PYTHONPATH"] == os.environ.get("PYTHONPATH")


@pytest.mark.ebpf
def test_python_hook_keeps_the_users_pythonpath(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "mine.py").write_text("")
    script = "import os, sys, mine; print(os.environ['PYTHONPATH'], sys.path[1], os.getenv('ROAR_T_GET'))"
    proc, record = _run([sys.executable, "-c", script], tmp_path, PYTHONPATH=str(tmp_path / "lib"),
                        ROAR_T_GET="2")
    assert proc.stdout.decode().split() == [str(tmp_path / "lib"), str(tmp_path / "lib"), "2"]
    assert record["env_read"]["ROAR_T_GET"] == "2"
    assert record["env_read"]["PYTHONPATH"] == str(tmp_path / "lib")   # as the program saw it


@pytest.mark.ebpf
def test_show_lists_the_variables_read(tmp_path: Path, programs: Path) -> None:
    _run([str(programs / "getenv")], tmp_path, ROAR_T_DIRECT="a\nb", ROAR_T_SECURE="b")
    text = roar("show", "@1", cwd=tmp_path).stdout.decode()
    assert "  environment read (2 set, 1 not set):" in text
    assert "    ROAR_T_DIRECT=a\\nb\n" in text
    assert "    not set: ROAR_T_UNSET\n" in text


def test_a_record_with_a_bad_env_read_is_refused() -> None:
    from roar.record import validate

    record = _minimal_record()
    validate.check(record)
    record["env_read"] = {"X": 3}
    with pytest.raises(CorruptStore, match=r"field `env_read.X` is an int, not a str"):
        validate.check(record)
    record["env_read"] = ["X"]
    with pytest.raises(CorruptStore, match=r"field `env_read` is a list, not a map"):
        validate.check(record)


def _minimal_record() -> dict:
    from roar.record.job import new_record

    record = new_record("run", ["true"], "/", 1.0, 2.0)
    record.update(session="0123456789abcdef", step=1, env_read={"A": "1", "B": None})
    from roar.record import composites

    composites.decide(record)    # as writing the record does
    return record
