"""Programs and libraries: lineage inputs inside the workspace or when a recorded job made
them, context otherwise; a toolchain wrapper collapses (docs/lineage-rules.md, "Programs")."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.trace.conftest import roar

pytestmark = pytest.mark.ebpf


def run(cmd: list[str], cwd: Path, step: int, env: dict[str, str] | None = None) -> dict:
    done = roar("run", "-q", "--", *cmd, cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr.decode()
    shown = roar("show", f"@{step}", "--json", cwd=cwd)
    return json.loads(shown.stdout)


def programs(record: dict) -> dict[str, dict]:
    return {p["path"]: p for p in record["context"]["programs"]}


def shim_tree(tmp_path: Path) -> tuple[Path, Path]:
    """A pyenv-like tool outside the workspace: shims/python3 asks a helper for the version
    (a file of the tool's own) and execs the real interpreter."""
    tool = tmp_path / "tool"
    (tool / "shims").mkdir(parents=True)
    (tool / "version").write_text("system\n")
    shim = tool / "shims" / "python3"
    shim.write_text(f'#!/bin/sh\nv=$(cat "{tool}/version")\nexec {sys.executable} "$@"\n')
    shim.chmod(0o755)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "d.txt").write_text("data\n")
    return tool, ws


def test_shim_chain_is_context_and_collapses(tmp_path: Path) -> None:
    tool, ws = shim_tree(tmp_path)
    env = dict(os.environ, PATH=f"{tool}/shims:{os.environ['PATH']}")
    record = run(["python3", "-c", "open('d.txt').read()"], ws, 1, env)
    assert [i["path"] for i in record["inputs"]] == [str(ws / "d.txt")]
    progs = programs(record)
    assert progs[str(tool / "shims" / "python3")]["role"] == "program"
    assert progs[str(tool / "shims" / "python3")]["hash"]
    assert progs[str(tool / "version")]["role"] == "wrapper"   # read by the shim's helper
    root = record["processes"][0]
    assert [c["exe"] for c in root["exec_chain"]] == ["/usr/bin/dash"]
    assert any(p.get("wrapper_helper") for p in record["processes"])
    text = roar("show", "@1", cwd=ws).stdout.decode()
    assert f"{root['pid']} python3 -c open('d.txt').read()  (exit 0)" in text
    assert "through 1 wrapper program, 1 helper process not shown" in text
    assert f"cat {tool}/version" not in text


def test_interpreter_and_its_pyvenv_cfg_are_context(tmp_path: Path) -> None:
    cfg = Path(sys.prefix) / "pyvenv.cfg"
    if not cfg.exists():
        pytest.skip("the test interpreter is not a venv's")
    record = run([sys.executable, "-c", "pass"], tmp_path, 1)
    assert record["inputs"] == []
    assert programs(record)[str(cfg)]["role"] == "startup"


def test_program_outside_the_workspace_is_context(tmp_path: Path) -> None:
    ws, bin_dir = tmp_path / "ws", tmp_path / "bin"
    ws.mkdir()
    bin_dir.mkdir()
    shutil.copy("/bin/true", bin_dir / "mytrue")
    record = run([str(bin_dir / "mytrue")], ws, 1)
    assert record["inputs"] == []
    assert programs(record)[str(bin_dir / "mytrue")]["role"] == "program"


def test_program_made_by_a_recorded_job_is_an_input(tmp_path: Path) -> None:
    ws, bin_dir = tmp_path / "ws", tmp_path / "bin"
    ws.mkdir()
    bin_dir.mkdir()
    run(["cp", "/bin/true", str(bin_dir / "built")], ws, 1)
    record = run([str(bin_dir / "built")], ws, 2)
    assert [i["path"] for i in record["inputs"]] == [str(bin_dir / "built")]
    assert str(bin_dir / "built") not in programs(record)


def test_script_in_the_workspace_is_an_input(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    record = run([str(script)], tmp_path, 1)
    assert [i["path"] for i in record["inputs"]] == [str(script)]


def test_library_outside_the_workspace_is_context(tmp_path: Path) -> None:
    ws, lib = tmp_path / "ws", tmp_path / "lib"
    ws.mkdir()
    lib.mkdir()
    libm = next(p for p in ("/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6")
                if os.path.exists(p))
    shutil.copy(libm, lib / "libm.so.6")
    env = dict(os.environ, LD_PRELOAD=str(lib / "libm.so.6"))
    record = run(["/bin/true"], ws, 1, env)
    assert record["inputs"] == []
    assert programs(record)[str(lib / "libm.so.6")]["role"] == "library"
