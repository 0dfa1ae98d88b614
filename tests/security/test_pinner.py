"""The pinner (roar/tracer/pinner.py) holds the job's first reads: it traces every process of
the job, so it must give the user behind sudo nothing. It acts as that user with only
CAP_SYS_PTRACE, keeps root as its real and saved uid (the user can neither signal nor trace
it), and passes on every signal that is not its own hold."""

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


def _record(work: Path, step: int) -> dict:
    return json.loads(roar("show", f"@{step}", "--json", cwd=work).stdout)


def _input(record: dict, path: Path) -> dict:
    [entry] = [i for i in record["inputs"] if i["path"] == str(path)]
    return entry


def _b3(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def test_a_reused_inode_is_another_file(tmp_path: Path) -> None:
    """ext4 gives a new file the inode number of one just deleted: a job that read the first
    and then reads the second records each with its own bytes."""
    x, y = tmp_path / "X", tmp_path / "Y"
    x.write_bytes(b"AAAA")
    script = "import time; open('X','rb').read(); time.sleep(1.5); open('Y','rb').read()"
    job = subprocess.Popen([sys.executable, "-m", "roar", "run", "-q", "--", sys.executable, "-c", script],
                           cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.8)
    ino = x.stat().st_ino
    x.unlink()
    y.write_bytes(b"BBBBBBBB")
    assert job.wait(timeout=60) == 0, job.stderr.read().decode(errors="replace")
    record = _record(tmp_path, 1)
    assert _input(record, x)["hash"] == _b3(b"AAAA")
    assert _input(record, y)["hash"] in (_b3(b"BBBBBBBB"), None), (ino, y.stat().st_ino)


def test_an_mtime_put_back_does_not_fool_the_hash_cache(tmp_path: Path) -> None:
    """The owner of an input rewrites it with the same size and puts its mtime back: the next
    job records the new bytes, not the cached digest of the old ones (ctime is in the key)."""
    data = tmp_path / "data"
    data.write_bytes(b"good")
    st = data.stat()
    assert roar("run", "-q", "--", "cat", "data", cwd=tmp_path).returncode == 0
    with open(data, "r+b") as f:
        f.write(b"EVIL")
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert roar("run", "-q", "--", "cat", "data", cwd=tmp_path).returncode == 0
    assert _input(_record(tmp_path, 1), data)["hash"] == _b3(b"good")
    assert _input(_record(tmp_path, 2), data)["hash"] == _b3(b"EVIL")


BLOCKS_SIGURG = r"""
import os, signal
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGURG})
st = os.stat("f")
open("f", "rb").read()                        # cannot be held: SIGURG is blocked
with open("f", "r+b") as out:
    out.write(b"EVIL")                        # same size, mtime put back
os.utime("f", ns=(st.st_atime_ns, st.st_mtime_ns))
"""


def test_a_thread_that_blocks_sigurg_never_gets_a_wrong_hash(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"good")
    assert roar("run", "-q", "--", sys.executable, "-c", BLOCKS_SIGURG, cwd=tmp_path).returncode == 0
    entry = _input(_record(tmp_path, 1), f)
    assert f.read_bytes() == b"EVIL"
    assert entry["hash"] in (_b3(b"good"), None), "the hash of bytes the job did not read"


BIG_READ = r"""
import time
t = time.monotonic()
open("sparse", "rb").read(1)
open("held.txt", "w").write(str(time.monotonic() - t))
"""


def test_a_big_input_does_not_hold_the_job_for_its_hash(tmp_path: Path) -> None:
    """A file over the pinner's hold budget is hashed beside the job, from the descriptor it
    took: the reader goes on at once, and the hash is still of the bytes read."""
    from roar.tracer.pinner import HOLD_HASH_MAX

    size = 16 * HOLD_HASH_MAX    # sparse: 1 GiB of zeros, seconds of hashing
    with open(tmp_path / "sparse", "wb") as f:
        f.truncate(size)
    assert roar("run", "-q", "--", sys.executable, "-c", BIG_READ, cwd=tmp_path).returncode == 0
    held = float((tmp_path / "held.txt").read_text())
    assert held < 0.5, f"the reader was held {held:.2f} s"
    zeros = blake3.blake3(max_threads=blake3.blake3.AUTO)
    chunk = bytes(8 << 20)
    for _ in range(size // len(chunk)):
        zeros.update(chunk)
    assert _input(_record(tmp_path, 1), tmp_path / "sparse")["hash"] == zeros.hexdigest()


PINNER_FDS = r"""
import os
open("in.txt").read()
tracer = [l for l in open("/proc/self/status") if l.startswith("TracerPid:")][0].split()[1]
links = [os.readlink(f"/proc/{tracer}/fd/{n}") for n in os.listdir(f"/proc/{tracer}/fd")]
open("fds.txt", "w").write("\n".join(links))
"""


def test_the_pinner_keeps_none_of_roars_programs_open(tmp_path: Path) -> None:
    """The BPF programs and links are roar's alone: if roar dies they go, whatever the pinner
    is still doing."""
    (tmp_path / "in.txt").write_text("input\n")
    assert roar("run", "-q", "--", sys.executable, "-c", PINNER_FDS, cwd=tmp_path).returncode == 0
    links = (tmp_path / "fds.txt").read_text().splitlines()
    assert not [x for x in links if "bpf-prog" in x or "bpf_link" in x or "bpf-link" in x], links
    assert not [x for x in links if ".roar" in x], links
    assert len(links) <= 8, links


OWN_BLOCKED_SIGURG = r"""
import os, signal
got = []
signal.signal(signal.SIGURG, lambda *a: got.append(1))
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGURG})
import threading
signal.pthread_kill(threading.get_ident(), signal.SIGURG)
open("in.txt").read()
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGURG})
open("out.txt", "w").write(str(len(got)))
"""


def test_a_pending_sigurg_of_the_jobs_own_is_not_swallowed(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("input\n")
    assert roar("run", "-q", "--", sys.executable, "-c", OWN_BLOCKED_SIGURG, cwd=tmp_path).returncode == 0
    assert (tmp_path / "out.txt").read_text() == "1"


OWN_LEASE = r"""
import fcntl, os
fd = os.open("big", os.O_RDONLY)
fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
os.read(fd, 4 << 20)
lease, owner = fcntl.fcntl(fd, fcntl.F_GETLEASE), fcntl.fcntl(fd, fcntl.F_GETOWN)
open("lease.txt", "w").write(f"{lease} {owner} {os.getpid()}")
"""


def test_the_pinner_leaves_the_jobs_open_file_alone(tmp_path: Path) -> None:
    """The descriptor the pinner hashes is the job's own open file: its lease and owner stay."""
    (tmp_path / "big").write_bytes(os.urandom(4 << 20))
    assert roar("run", "-q", "--", sys.executable, "-c", OWN_LEASE, cwd=tmp_path).returncode == 0
    lease, owner, pid = (tmp_path / "lease.txt").read_text().split()
    assert int(lease) == 0, "the job's read lease is gone"   # F_RDLCK
    assert owner == pid


def test_a_fifo_in_place_of_the_index_does_not_hang_the_job(tmp_path: Path) -> None:
    """The pinner opens no path: the hash cache is asked through roar."""
    (tmp_path / "in.txt").write_text("input\n")
    assert roar("run", "-q", "--", "true", cwd=tmp_path).returncode == 0
    script = "mv .roar/roar.db .roar/roar.db.bak; mkfifo .roar/roar.db; cat in.txt > /dev/null"
    proc = roar("run", "-q", "--", "sh", "-c", script, cwd=tmp_path, timeout=60)
    assert b"Traceback" not in proc.stderr
