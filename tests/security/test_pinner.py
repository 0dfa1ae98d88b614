"""The pinner (roar/tracer/pinner.py) holds the job's first reads: it traces every process of
the job, so it must give the user behind sudo nothing. It acts as that user with only
CAP_SYS_PTRACE, keeps root as its real and saved uid (the user can neither signal nor trace
it), and passes on every signal that is not its own hold."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import blake3
import pytest

from tests.security.conftest import roar, sudo_roar

pytestmark = [pytest.mark.root, pytest.mark.ebpf]

CAP_SYS_PTRACE = 19

# Run by the job, as the user: reads a file (so a hold happened), then looks at its tracer and
# tries to signal and trace it.
PROBE = r"""
import ctypes, json, os, signal, sys
open("in.txt").read()
tracer = int([l for l in open("/proc/self/status") if l.startswith("TracerPid:")][0].split()[1])
status = {k: v.split() for k, v in (l.split(":", 1) for l in open(f"/proc/{tracer}/status"))}
name = open(f"/proc/{tracer}/comm").read().strip()
try:
    os.kill(tracer, signal.SIGSTOP)
    kill = "sent"
except PermissionError:
    kill = "refused"
libc = ctypes.CDLL(None, use_errno=True)
attach = "attached" if libc.ptrace(16, tracer, None, None) == 0 else os.strerror(ctypes.get_errno())
json.dump({"tracer": tracer, "name": name, "uid": status["Uid"], "capeff": status["CapEff"][0],
           "kill": kill, "attach": attach}, open("probe.json", "w"))
"""


def test_the_pinner_gives_the_user_behind_sudo_nothing(mallory, user_dir: Path) -> None:
    (user_dir / "in.txt").write_text("input\n")
    (user_dir / "probe.py").write_text(PROBE)
    for p in (user_dir / "in.txt", user_dir / "probe.py"):
        os.chown(p, mallory.uid, mallory.gid)
    proc = sudo_roar(mallory, "run", "-q", "--", sys.executable, "probe.py", cwd=user_dir)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    probe = json.loads((user_dir / "probe.json").read_text())
    assert probe["tracer"] != 0 and probe["name"] == "roar-pinner", probe
    real, effective, saved, fs = map(int, probe["uid"])
    assert (real, saved) == (0, 0) and (effective, fs) == (mallory.uid, mallory.uid), probe
    assert int(probe["capeff"], 16) == 1 << CAP_SYS_PTRACE, probe
    assert probe["kill"] == "refused", probe
    assert probe["attach"] != "attached", probe


def test_the_inputs_of_a_sudo_job_are_hashed_as_read(mallory, user_dir: Path) -> None:
    f = user_dir / "f"
    f.write_bytes(b"aaaa\n" * 100)
    os.chown(f, mallory.uid, mallory.gid)
    good = blake3.blake3(f.read_bytes()).hexdigest()
    proc = sudo_roar(mallory, "run", "-q", "--", "sed", "-i", "s/a/b/", "f", cwd=user_dir)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    shown = sudo_roar(mallory, "show", "@1", "--json", cwd=user_dir)
    record = json.loads(shown.stdout)
    [entry] = [i for i in record["inputs"] if i["path"] == str(f)]
    assert entry["hash"] == good and f.read_bytes() == b"baaa\n" * 100
    assert not [w for w in record["warnings"] if "after the fact" in w], record["warnings"]


OWN_SIGURG = r"""
import os, signal
got = []
signal.signal(signal.SIGURG, lambda *a: got.append(1))
open("in.txt").read()                 # held once, by the pinner: that SIGURG is not the job's
os.kill(os.getpid(), signal.SIGURG)   # the job's own: it must arrive
open("out.txt", "w").write(str(len(got)))
"""


def test_a_sigurg_of_the_jobs_own_still_arrives(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("input\n")
    proc = roar("run", "-q", "--", sys.executable, "-c", OWN_SIGURG, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert (tmp_path / "out.txt").read_text() == "1"


KILLED_BY = r"""
import os, signal, sys
open("in.txt").read()
os.kill(os.getpid(), signal.SIGTERM)
"""


def test_a_signal_that_kills_the_job_still_kills_it(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("input\n")
    proc = roar("run", "-q", "--", sys.executable, "-c", KILLED_BY, cwd=tmp_path)
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr.decode(errors="replace")


def test_no_hold_lets_a_debugger_attach_inside_the_job(tmp_path: Path) -> None:
    """The pinner traces the job, so strace inside it cannot trace its own child; --no-hold
    gives that up (inputs by path afterwards, said in a warning)."""
    cmd = ["strace", "-f", "-o", "trace.txt", "cat", "in.txt"]
    (tmp_path / "in.txt").write_text("input\n")
    held = roar("run", "-q", "--", *cmd, cwd=tmp_path)
    assert held.returncode != 0
    free = roar("run", "--no-hold", "--", *cmd, cwd=tmp_path)
    assert free.returncode == 0, free.stderr.decode(errors="replace")
    assert "read(" in (tmp_path / "trace.txt").read_text()
    assert b"taken by path after the fact: asked for with --no-hold" in free.stderr
