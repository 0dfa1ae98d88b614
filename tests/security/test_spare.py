"""The spare BPF object a job leaves for the next (roar.tracer.spare): the next job takes
it, nobody else can, and it holds nothing of roar's but the object."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from roar.tracer import spare
from tests.security.conftest import sudo_roar

pytestmark = [pytest.mark.root, pytest.mark.ebpf]

SOCKET = Path(spare.RUN_DIR) / spare.SOCKET_NAME


def spare_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"roar.tracer.spare" in (entry / "cmdline").read_bytes().split(b"\0"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def wait_for(predicate, timeout_s: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def bound() -> bool:
    """Whether a live socket is bound at SOCKET (a killed spare leaves the file behind)."""
    with open("/proc/net/unix") as f:
        return any(line.split()[-1] == str(SOCKET) for line in f if len(line.split()) >= 8)


def ready_spare() -> int:
    """The pid of the one spare, once its object is loaded and its socket bound."""
    wait_for(lambda: bound() and len(spare_pids()) == 1, what="a spare with its socket")
    return spare_pids()[0]


def no_spare() -> None:
    """None left, including one a job of the last test started that has not exec'd yet."""
    quiet_since = time.monotonic()
    deadline = quiet_since + 10
    while time.monotonic() - quiet_since < 0.5:
        assert time.monotonic() < deadline, "spares kept appearing"
        for pid in spare_pids():
            quiet_since = time.monotonic()
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        time.sleep(0.02)


@pytest.fixture
def clean(tmp_path: Path):
    no_spare()
    yield tmp_path
    if Path(spare.RUN_DIR).exists():
        os.chmod(spare.RUN_DIR, 0o700)


def test_a_job_leaves_a_spare_and_the_next_job_takes_it(clean: Path, mallory, user_dir: Path) -> None:
    first = sudo_roar(mallory, "run", "-q", "sh", "-c", "echo a > a.txt", cwd=user_dir)
    assert first.returncode == 0, first.stderr
    pid = ready_spare()
    second = sudo_roar(mallory, "run", "-q", "sh", "-c", "cat a.txt > b.txt", cwd=user_dir)
    assert second.returncode == 0, second.stderr
    # the spare exits as soon as it has handed its object over, and only then
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), 5, "the spare taken to exit")
    shown = sudo_roar(mallory, "show", "@2", "--json", cwd=user_dir)
    assert b'/a.txt"' in shown.stdout and b'/b.txt"' in shown.stdout, shown.stdout
    assert ready_spare() != pid, "the job did not leave a new spare"


def test_the_spare_is_root_without_power_or_anything_of_roars(clean: Path, mallory, user_dir: Path) -> None:
    assert sudo_roar(mallory, "run", "-q", "true", cwd=user_dir).returncode == 0
    pid = ready_spare()
    status = Path(f"/proc/{pid}/status").read_text()
    field = {line.split(":", 1)[0]: line.split(":", 1)[1].split() for line in status.splitlines()}
    assert field["Uid"] == ["0"] * 4 and field["Gid"] == ["0"] * 4, status
    assert int(field["CapEff"][0], 16) == 0 and int(field["CapPrm"][0], 16) == 0
    assert os.readlink(f"/proc/{pid}/cwd") == "/"
    assert os.getsid(pid) != os.getsid(0), "the spare is in roar's session"
    assert Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") == [b"PATH=/usr/sbin:/usr/bin:/sbin:/bin", b""]
    kinds = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
        kinds.add(target if target.startswith("/") else target.split(":")[0] + ":" + target.split(":")[1][:8])
    assert not {k for k in kinds if k.startswith("/")} - {"/dev/null", str(Path(spare.RUN_DIR) / spare.LOCK_NAME)}, kinds
    assert str(user_dir) not in "".join(kinds)
    mode = os.lstat(spare.RUN_DIR).st_mode
    assert stat.S_IMODE(mode) == 0o700 and os.lstat(spare.RUN_DIR).st_uid == 0
    assert stat.S_IMODE(os.lstat(SOCKET).st_mode) == 0o600


def test_another_user_cannot_reach_the_spare(clean: Path, mallory, user_dir: Path) -> None:
    assert sudo_roar(mallory, "run", "-q", "true", cwd=user_dir).returncode == 0
    pid = ready_spare()
    probe = ("import socket, sys\n"
             "s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)\n"
             f"try:\n    s.connect({str(SOCKET)!r})\nexcept OSError as e:\n    print(e.errno); sys.exit(0)\n"
             "print('connected')\n")
    out = mallory.run(sys.executable, "-I", "-c", probe)
    assert out.stdout.decode().strip() == "13", out      # EACCES: /run/roar is root's alone
    assert Path(f"/proc/{pid}").exists(), "the spare went away on another user's attempt"


def test_a_run_dir_others_may_enter_is_not_used(clean: Path, mallory, user_dir: Path) -> None:
    assert sudo_roar(mallory, "run", "-q", "true", cwd=user_dir).returncode == 0
    pid = ready_spare()
    os.chmod(spare.RUN_DIR, 0o755)
    proc = sudo_roar(mallory, "run", "-q", "true", cwd=user_dir)
    assert proc.returncode == 0, proc.stderr
    time.sleep(0.5)
    assert Path(f"/proc/{pid}").exists(), "roar took a spare from a directory others may enter"
    assert spare_pids() == [pid], "roar started a spare in a directory others may enter"


def test_a_refused_job_leaves_a_spare_too(clean: Path, mallory, user_dir: Path) -> None:
    """A job refused before it starts took the spare's object: it starts the next one."""
    assert sudo_roar(mallory, "run", "-q", "true", cwd=user_dir).returncode == 0
    first = ready_spare()
    proc = sudo_roar(mallory, "run", "-q", "no-such-command-here", cwd=user_dir)
    assert proc.returncode != 0 and b"no-such-command-here" in proc.stderr
    wait_for(lambda: not Path(f"/proc/{first}").exists(), 5, "the refused job to take the spare")
    assert ready_spare() != first


def test_an_object_of_another_build_is_not_taken(clean: Path, mallory, user_dir: Path) -> None:
    assert sudo_roar(mallory, "run", "-q", "true", cwd=user_dir).returncode == 0
    pid = ready_spare()
    assert spare.take("0" * 16) is None
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), 5, "the spare to exit")
    proc = sudo_roar(mallory, "run", "-q", "sh", "-c", "echo x > x", cwd=user_dir)
    assert proc.returncode == 0, proc.stderr


def test_no_spare_when_turned_off(clean: Path, mallory, user_dir: Path) -> None:
    proc = sudo_roar(mallory, "run", "-q", "true", cwd=user_dir, extra_env={"ROAR_NO_SPARE": "1"})
    assert proc.returncode == 0, proc.stderr
    time.sleep(1.0)
    assert spare_pids() == []
    assert sudo_roar(mallory, "run", "-q", "true", cwd=user_dir).returncode == 0
    ready_spare()     # the check above can fail: without the variable there is one


def test_no_spare_when_the_machine_turns_them_off(clean: Path, mallory, user_dir: Path) -> None:
    """/etc/roar/no-spare: the administrator's switch, for runs whose environment sudo resets."""
    marker = Path(spare.MACHINE_OFF)
    made_dir = not marker.parent.exists()
    marker.parent.mkdir(exist_ok=True)
    marker.write_text("")
    try:
        proc = sudo_roar(mallory, "run", "-q", "true", cwd=user_dir)
        assert proc.returncode == 0, proc.stderr
        time.sleep(1.0)
        assert spare_pids() == []
    finally:
        marker.unlink()
        if made_dir:
            marker.parent.rmdir()
    assert sudo_roar(mallory, "run", "-q", "true", cwd=user_dir).returncode == 0
    ready_spare()     # the check above can fail: without the file there is one


def test_an_idle_spare_exits_and_one_at_a_time(clean: Path) -> None:
    cmd = [sys.executable, "-I", "-m", "roar.tracer.spare", "1.5"]
    first = subprocess.Popen(cmd, cwd="/", env={"PATH": "/usr/bin:/bin"})
    ready_spare()
    second = subprocess.run(cmd, cwd="/", env={"PATH": "/usr/bin:/bin"}, timeout=30)
    assert second.returncode == 0 and spare_pids() == [first.pid]    # the lock is taken: it left
    assert first.wait(timeout=30) == 0
    assert not SOCKET.exists() and not bound(), "an idle spare left its socket behind"


def test_a_non_root_peer_is_refused(clean: Path, mallory) -> None:
    """With the directory opened up by hand, a connection from another user still gets
    nothing, and the spare stays for root."""
    first = subprocess.Popen([sys.executable, "-I", "-m", "roar.tracer.spare", "20"], cwd="/",
                             env={"PATH": "/usr/bin:/bin"})
    try:
        ready_spare()
        os.chmod(spare.RUN_DIR, 0o711)
        os.chmod(SOCKET, 0o666)
        probe = ("import socket\n"
                 "s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)\n"
                 f"s.connect({str(SOCKET)!r}); s.settimeout(5)\n"
                 "msg, fds, _, _ = socket.recv_fds(s, 65536, 64)\n"
                 "print(len(msg), len(fds))\n")
        out = mallory.run(sys.executable, "-I", "-c", probe)
        assert out.stdout.decode().strip() == "0 0", out
        assert first.poll() is None, "the spare left after a non-root peer"
        os.chmod(spare.RUN_DIR, 0o700)
        os.chmod(SOCKET, 0o600)
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:   # root still can
            s.connect(str(SOCKET))
            msg, fds, _, _ = socket.recv_fds(s, 65536, 64)
        assert fds and b"on_sys_exit" in msg
        for fd in fds:
            os.close(fd)
        assert first.wait(timeout=10) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


def user_cgroup() -> tuple[Path, str] | None:
    """A fresh child cgroup in a hierarchy that allows one: (its directory, the line prefix
    /proc/PID/cgroup gives that hierarchy)."""
    with open("/proc/self/mounts") as f:
        mounts = [line.split() for line in f if line.split()[2] in ("cgroup", "cgroup2")]
    for _dev, mount, fstype, opts, *_ in mounts:
        child = Path(mount) / f"roar-test-{os.getpid()}"
        try:
            child.mkdir()
        except OSError:
            continue
        if fstype == "cgroup2":
            return child, "0::"
        controllers = [o for o in opts.split(",") if o not in ("rw", "ro", "relatime", "nosuid", "nodev", "noexec")]
        return child, ":" + ",".join(controllers) + ":"
    return None


def test_the_spare_leaves_the_users_cgroup_and_a_stuck_one_is_killed(clean: Path, mallory,
                                                                      user_dir: Path) -> None:
    found = user_cgroup()
    if found is None:
        pytest.fail("no cgroup hierarchy here lets a child cgroup be made")
    group, prefix = found
    try:
        os.chown(group / "cgroup.procs", mallory.uid, mallory.gid)   # as systemd delegates one
        cmd = (f"echo $$ > {group}/cgroup.procs && exec {sys.executable} -m roar run -q true")
        job = subprocess.run(["sh", "-c", cmd], cwd=user_dir, env=mallory.sudo_env(), capture_output=True)
        assert job.returncode == 0, job.stderr
        pid = ready_spare()
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        mine = [line for line in lines if line.split(":", 2)[1] == prefix.strip(":").split(":")[-1]
                or line.startswith(prefix)]
        assert mine and all(line.endswith(":/") for line in mine), lines
        os.kill(pid, 19)     # SIGSTOP: a spare that cannot answer
        started = time.monotonic()
        job = sudo_roar(mallory, "run", "-q", "true", cwd=user_dir)
        assert job.returncode == 0, job.stderr
        wait_for(lambda: not Path(f"/proc/{pid}/status").exists()
                 or "zombie" in Path(f"/proc/{pid}/status").read_text(), 5, "the stuck spare to be killed")
        assert time.monotonic() - started < 5
        assert ready_spare() != pid, "no new spare after the stuck one"
    finally:
        for p in (group / "cgroup.procs").read_text().split():
            try:
                os.kill(int(p), 9)
            except OSError:
                pass
        time.sleep(0.1)
        group.rmdir()


def test_a_traced_roar_starts_no_spare(clean: Path, mallory, user_dir: Path) -> None:
    """Under `strace -f` the spare would be followed too, and strace would wait for it (up to
    its 10 idle minutes) before it ends: a roar that is traced starts none."""
    strace = shutil.which("strace")
    assert strace, "strace is not installed"
    started = time.monotonic()
    proc = subprocess.run([strace, "-f", "-qq", "-o", "/dev/null", sys.executable, "-m", "roar", "run",
                           "-q", "--no-hold", "--", "true"], cwd=user_dir, env=mallory.sudo_env(),
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started < 60
    time.sleep(0.5)
    assert spare_pids() == [], "a traced roar started a spare"
    assert sudo_roar(mallory, "run", "-q", "true", cwd=user_dir).returncode == 0
    ready_spare()     # the check above can fail: untraced, a job starts one
