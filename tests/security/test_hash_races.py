"""Inputs that shrink while roar hashes them, traced for real.

A memory-mapped file that is truncated under the map raises SIGBUS, which kills
roar: the job's record is lost and its processes run on, orphaned. `sort -o f f`
truncates its input right after reading it, which is about when roar hashes it;
`cat f; : > f` does the same from the shell. Each is run many times (the race is
lost only now and then) and every run must end with roar alive, the record
written, and no input hash that is not of the bytes the job read.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import blake3
import pytest

pytestmark = pytest.mark.ebpf

RUNS = 30
TIME_LIMIT = 120.0     # seconds for all runs of one scenario: stop early rather than time out
SIZE = 300 * 1024


def content(size: int) -> bytes:
    """Lines that `sort` reorders, so the sorted file differs from the original."""
    lines, n = [], 0
    while n < size:
        line = f"{(n * 7919) % 1000003:07d} line {n}\n".encode()
        lines.append(line)
        n += len(line)
    return b"".join(lines)[:size - 1] + b"\n"


def roar(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "roar", *args], cwd=cwd, capture_output=True,
                          timeout=timeout)


def died_of_sigbus(code: int) -> bool:
    return code in (-signal.SIGBUS, 128 + signal.SIGBUS)


def check_run(work: Path, step: int, cmd: str, original: bytes) -> None:
    f = work / "f"
    f.write_bytes(original)
    proc = roar("run", "-q", "--", "sh", "-c", cmd, cwd=work)
    err = proc.stderr.decode(errors="replace")
    assert not died_of_sigbus(proc.returncode), f"run {step}: roar died of SIGBUS\n{err}"
    assert proc.returncode == 0, f"run {step}: exit {proc.returncode}\n{err}"
    shown = roar("show", f"@{step}", "--json", cwd=work)
    assert shown.returncode == 0, f"run {step}: no record\n{err}{shown.stderr.decode()}"
    record = json.loads(shown.stdout)
    [entry] = [i for i in record["inputs"] if i["path"] == str(f)]
    good = blake3.blake3(original).hexdigest()
    warnings = " ".join(record["warnings"])
    # the hash of the bytes the job read, or none with the reason: never a hash of other bytes
    if entry["hash"] is None:
        assert (f"input {f} changed while it was hashed" in warnings
                or f"input {f} changed before roar could hash it" in warnings), (step, record["warnings"])
    else:
        assert entry["hash"] == good, (step, entry, record["warnings"])


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """tmp_path as its own workspace: a .roar some test left in /tmp must not be found above it."""
    from roar.store.workspace import Workspace

    Workspace.create(tmp_path)
    return tmp_path


def scenario(tmp_path: Path, cmd: str) -> None:
    original = content(SIZE)
    deadline = time.monotonic() + TIME_LIMIT
    for step in range(1, RUNS + 1):
        check_run(tmp_path, step, cmd, original)
        if time.monotonic() > deadline:
            break
    assert step >= 5, f"only {step} runs in {TIME_LIMIT} s"


def test_sort_in_place(work: Path) -> None:
    scenario(work, "sort -o f f")


def test_read_then_truncate(work: Path) -> None:
    scenario(work, "cat f > /dev/null; : > f")


def test_big_input_truncated_while_hashed(work: Path) -> None:
    """A sparse input far bigger than anything hashed in the tracer's thread: it is hashed
    in the background, under a lease, while the job truncates it."""
    f = work / "big"
    with open(f, "wb") as out:
        out.truncate(2 << 30)
    proc = roar("run", "-q", "--", "sh", "-c", "head -c 1 big > /dev/null; sleep 0.2; : > big",
                cwd=work, timeout=120)
    assert not died_of_sigbus(proc.returncode), proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    record = json.loads(roar("show", "@1", "--json", cwd=work).stdout)
    [entry] = [i for i in record["inputs"] if i["path"] == str(f)]
    if entry["hash"] is None:   # the pinner hashes it beside the job, from the descriptor it took
        assert any(f"input {f} could not be hashed as read: it was written to while it was hashed" in w
                   for w in record["warnings"]), record["warnings"]
    else:       # all 2 GiB hashed before the truncation: then it is the hash of 2 GiB of zeros
        zeros, chunk = blake3.blake3(max_threads=blake3.blake3.AUTO), bytes(64 << 20)
        for _ in range(32):
            zeros.update(chunk)
        assert entry["hash"] == zeros.hexdigest()
    assert os.path.getsize(f) == 0
