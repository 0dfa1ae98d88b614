"""Facts roar cannot establish are said so, never dropped or replaced by a
default: an output that cannot be hashed, a lost exit status, a cut argv."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from roar import runner
from roar.errors import RoarError
from roar.record.filesets import FileSets
from roar.tracer import events as ev
from roar.tracer.collector import Collector
from roar.tracer.launcher import Launch
from tests.trace.conftest import roar_run


def _record(tmp_path: Path, *outputs: str) -> dict:
    files = FileSets(str(tmp_path / ".roar"))
    for name in outputs:
        files.change(str(tmp_path / name), 100)
    collector = Collector(files, root_pid=100, cwd=str(tmp_path))
    now = time.time()
    observed = runner._Observed(0, False, now, now, collector, files, [0] * ev.STAT_COUNT)
    hasher = runner._InputHasher(("blake3",), None)
    return runner._build_record(["true"], runner.RunOptions(), str(tmp_path), observed, hasher, None)


def test_output_that_cannot_be_hashed_is_kept_with_a_warning(tmp_path: Path, monkeypatch) -> None:
    from roar.artifacts import hashing

    (tmp_path / "out.bin").write_bytes(b"made")
    (tmp_path / "fine.bin").write_bytes(b"fine")
    real = hashing.hash_file

    def refuse(path, *args, **kw):
        if path.endswith("out.bin"):
            raise PermissionError(13, "Permission denied", path)
        return real(path, *args, **kw)
    monkeypatch.setattr(hashing, "hash_file", refuse)
    record = _record(tmp_path, "out.bin", "fine.bin")
    out = next(o for o in record["outputs"] if o["path"] == str(tmp_path / "out.bin"))
    assert out["hash"] is None and out["hashes"] == {} and out["size"] == 4
    assert [o["path"] for o in record["outputs"]] == [str(tmp_path / "out.bin"), str(tmp_path / "fine.bin")]
    assert record["warnings"] == [f"output {tmp_path / 'out.bin'} could not be hashed (Permission denied): "
                                  "its hash is unknown"]


def test_output_that_vanished_before_hashing_is_said(tmp_path: Path, monkeypatch) -> None:
    from roar.artifacts import hashing

    (tmp_path / "out.bin").write_bytes(b"made")

    def vanish(path, *args, **kw):
        os.unlink(path)
        raise FileNotFoundError(2, "No such file or directory", path)
    monkeypatch.setattr(hashing, "hash_file", vanish)
    record = _record(tmp_path, "out.bin")
    assert record["outputs"] == []
    assert record["warnings"] == [f"output {tmp_path / 'out.bin'} vanished before it could be hashed"]


def test_lost_exit_status_is_an_error_not_success() -> None:
    launch = Launch.__new__(Launch)
    launch.pid = os.getpid()    # not our child: waitpid fails with ECHILD, as after a foreign reap
    with pytest.raises(RoarError, match="exit status was taken by another process"):
        launch.poll_exit()


@pytest.mark.ebpf
def test_roar_started_with_sigchld_ignored_does_not_record_exit_0(tmp_path: Path) -> None:
    """An ignored SIGCHLD (inherited across exec) makes the kernel reap the command at once."""
    code = ("import runpy, signal, sys; signal.signal(signal.SIGCHLD, signal.SIG_IGN); "
            "sys.argv = ['roar', 'run', '-q', '--', 'sh', '-c', 'exit 3']; "
            "runpy.run_module('roar', run_name='__main__', alter_sys=True)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("roar: the command's exit status was taken"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def _exec(pid: int, argv: list[bytes], truncated: bool) -> ev.Exec:
    return ev.Exec(ts=1, tgid=pid, ret=0, filename=b"/bin/true", cwd=b"/", exe=b"/usr/bin/true",
                   argv=argv, argv_truncated=truncated)


def test_cut_argv_is_recorded_and_inherited_by_forks(tmp_path: Path) -> None:
    collector = Collector(FileSets(str(tmp_path / ".roar")), root_pid=10, cwd="/")
    collector.handle(_exec(10, [b"long", b"a" * 100], True))
    collector.handle(ev.Fork(ts=2, tgid=10, child=11))
    collector.handle(_exec(12, [b"short"], False))
    entries = {p.pid: p.as_record() for p in collector.processes.values()}
    assert entries[10]["argv_truncated"] is True
    assert entries[11]["argv_truncated"] is True     # a fork's argv is its parent's
    assert "argv_truncated" not in entries[12]


@pytest.mark.ebpf
def test_argv_over_4k_is_marked_truncated(tmp_path: Path) -> None:
    long_arg = "a" * 6000
    traced = roar_run(["sh", "-c", f"/bin/true {long_arg}; /bin/true short"], tmp_path)
    assert traced.returncode == 0, traced.stderr
    trues = {p["argv"][1][:5]: p for p in traced.record["processes"] if p["exe"] == "/usr/bin/true"}
    assert trues["aaaaa"].get("argv_truncated") is True
    assert "argv_truncated" not in trues["short"]
