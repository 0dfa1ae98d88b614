"""`roar run` as a user meets it: exit codes, bad input, sudo, signals, lost
events, and nothing left attached afterwards. Real tracer, as root."""

from __future__ import annotations

import json
import os
import pty
import pwd
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.trace.conftest import bpftool, held_links, linked, roar, roar_run

pytestmark = pytest.mark.ebpf

TEST_USER = "roar-test-user"


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    err = proc.stderr.decode()
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("roar: ")
    return lines[0]


def no_record(cwd: Path) -> bool:
    jobs = cwd / ".roar" / "jobs"
    return not jobs.exists() or not any(jobs.glob("*.msgpack"))


@pytest.mark.parametrize("code", [0, 3, 42])
def test_exit_status_passes_through(tmp_path: Path, code: int) -> None:
    proc = roar("run", "-q", "--", "sh", "-c", f"exit {code}", cwd=tmp_path)
    assert proc.returncode == code


def test_summary_line(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("a")
    proc = roar("run", "--", "cp", "a", "b", cwd=tmp_path)
    assert proc.returncode == 0
    line = proc.stderr.decode().strip()
    assert line.startswith("roar: @1 ") and line.endswith("1 inputs, 1 outputs, exit 0"), line


def test_extra_hash_algorithms_on_inputs_and_outputs(tmp_path: Path) -> None:
    """--hash adds hashlib's algorithms, imported only then: each must match hashlib's digest,
    for the input hashed as read (the pinner) and the output hashed at the end."""
    import hashlib

    (tmp_path / "a").write_bytes(b"content of a\n" * 1000)
    proc = roar("run", "-q", "--hash", "sha256", "--hash", "md5", "--", "cp", "a", "b", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    record = json.loads(roar("show", "@1", "--json", cwd=tmp_path, check=True).stdout)
    want = {name: hashlib.new(name, (tmp_path / "a").read_bytes()).hexdigest() for name in ("sha256", "md5")}
    for entry in ([i for i in record["inputs"] if i["path"].endswith("/a")]
                  + [o for o in record["outputs"] if o["path"].endswith("/b")]):
        assert {k: entry["hashes"].get(k) for k in want} == want, entry
    assert len(record["inputs"]) == 1 and len(record["outputs"]) == 1


def test_empty_command(tmp_path: Path) -> None:
    proc = roar("run", cwd=tmp_path)
    assert proc.returncode == 2
    assert "no command given" in one_line_error(proc)
    assert no_record(tmp_path)


def test_command_not_found(tmp_path: Path) -> None:
    proc = roar("run", "--", "no-such-command-roar", cwd=tmp_path)
    assert proc.returncode == 127
    assert one_line_error(proc) == ("roar: command not found: no-such-command-roar; "
                                    "check the spelling or your PATH")
    assert no_record(tmp_path)


def test_command_not_executable(tmp_path: Path) -> None:
    (tmp_path / "script.sh").write_text("echo hi\n")
    proc = roar("run", "--", "./script.sh", cwd=tmp_path)
    assert proc.returncode == 126
    assert "is not an executable file" in one_line_error(proc)
    assert no_record(tmp_path)


def test_bad_ring_buffer_size(tmp_path: Path) -> None:
    proc = roar("run", "--ring-buffer", "3K", "--", "true", cwd=tmp_path)
    assert proc.returncode == 2
    assert "power of two" in one_line_error(proc)


def test_workspace_not_writable(tmp_path: Path) -> None:
    (tmp_path / ".roar").write_text("not a directory")   # even root cannot write under a file
    proc = roar("run", "--", "true", cwd=tmp_path)
    assert proc.returncode == 120
    assert "cannot create" in one_line_error(proc) or "cannot write" in one_line_error(proc)


@pytest.fixture(scope="module")
def test_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", TEST_USER], check=True)
        return pwd.getpwnam(TEST_USER)


def reachable_by_others(path: str) -> bool:
    p = Path(path).resolve()
    return all(os.stat(d).st_mode & 0o001 for d in p.parents) and os.stat(p).st_mode & 0o001 != 0


@pytest.fixture
def user_dir(test_user: pwd.struct_passwd):
    """A directory the test user owns and can reach (pytest's tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="roar-user-", dir="/tmp"))
    os.chown(path, test_user.pw_uid, test_user.pw_gid)
    yield path
    shutil.rmtree(path)


def test_not_root_is_refused(user_dir: Path, test_user: pwd.struct_passwd) -> None:
    if not reachable_by_others(sys.executable):
        pytest.skip(f"{sys.executable} cannot be run by other users (scripts/test uses /opt/roar/venv)")
    tmp_path = user_dir
    proc = subprocess.run(
        ["setpriv", f"--reuid={test_user.pw_uid}", f"--regid={test_user.pw_gid}", "--clear-groups",
         sys.executable, "-m", "roar", "run", "--", "true"],
        cwd=tmp_path, capture_output=True, env={**os.environ, "HOME": test_user.pw_dir})
    assert proc.returncode == 121
    assert "sudo roar run" in one_line_error(proc)
    assert no_record(tmp_path)


def test_under_sudo_runs_as_the_user(user_dir: Path, test_user: pwd.struct_passwd) -> None:
    """With sudo's variables set, the command runs as the invoking user and
    every file roar writes belongs to that user."""
    tmp_path = user_dir
    env = {**os.environ, "SUDO_UID": str(test_user.pw_uid), "SUDO_GID": str(test_user.pw_gid),
           "SUDO_USER": TEST_USER, "HOME": "/root"}
    proc = subprocess.run([sys.executable, "-m", "roar", "run", "-q", "--", "sh", "-c",
                           'id -u > uid.txt; echo "$HOME" > home.txt'],
                          cwd=tmp_path, capture_output=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "uid.txt").read_text().strip() == str(test_user.pw_uid)
    assert (tmp_path / "home.txt").read_text().strip() == test_user.pw_dir
    for path in [tmp_path / ".roar", *(tmp_path / ".roar").rglob("*")]:
        assert path.stat().st_uid == test_user.pw_uid, path


def test_sigterm_goes_to_the_tree_and_job_is_recorded(tmp_path: Path) -> None:
    script = ('trap "echo term > got.txt; exit 5" TERM; echo started > started.txt; '
              'while :; do sleep 0.05; done')
    proc = subprocess.Popen([sys.executable, "-m", "roar", "run", "-q", "--", "sh", "-c", script],
                            cwd=tmp_path, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not (tmp_path / "started.txt").exists():
        assert time.monotonic() < deadline, "traced command never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 5
    assert (tmp_path / "got.txt").read_text() == "term\n"
    record = json.loads(roar("show", "@1", "--json", cwd=tmp_path).stdout)
    assert record["exit"]["status"] == "interrupted"
    assert record["exit_code"] == 5
    assert {Path(o["path"]).name for o in record["outputs"]} == {"got.txt", "started.txt"}


def test_ctrl_c_reaches_the_command_not_roar(tmp_path: Path) -> None:
    """On a terminal, Ctrl-C interrupts the traced command; roar records it."""
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(tmp_path)
        os.execv(sys.executable, [sys.executable, "-m", "roar", "run", "-q", "--", "sh", "-c",
                                  "echo ready; sleep 30"])
    output = b""
    deadline = time.monotonic() + 20
    while b"ready" not in output:
        assert time.monotonic() < deadline, output
        if select.select([fd], [], [], 0.5)[0]:
            output += os.read(fd, 1024)
    os.write(fd, b"\x03")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 128 + signal.SIGINT
    record = json.loads(roar("show", "@1", "--json", cwd=tmp_path).stdout)
    assert record["exit"]["signal"] == signal.SIGINT
    assert record["exit"]["status"] == "interrupted"


def test_lost_events_are_counted_and_warned(tmp_path: Path) -> None:
    """The command stops roar (its parent) and makes 500 files: a 4 KiB ring
    buffer cannot hold their events until roar reads again. The loss is
    recorded and shown, never silent."""
    script = "kill -STOP $PPID; for i in $(seq 1 500); do : > f$i; done; kill -CONT $PPID"
    proc = roar("run", "--ring-buffer", "4K", "--", "bash", "-c", script, cwd=tmp_path)
    assert proc.returncode == 0
    record = json.loads(roar("show", "@1", "--json", cwd=tmp_path).stdout)
    assert record["tracer"]["dropped"] > 0
    assert any("were lost" in w for w in record["warnings"])
    assert "were lost" in proc.stderr.decode()


def test_default_buffer_loses_nothing_in_the_same_burst(tmp_path: Path) -> None:
    script = "kill -STOP $PPID; for i in $(seq 1 500); do : > f$i; done; kill -CONT $PPID"
    traced = roar_run(["bash", "-c", script], tmp_path)
    assert traced.record["tracer"]["dropped"] == 0
    assert len(traced.outputs(tmp_path.resolve())) == 500


def process_state(pid: int) -> str:
    """R, S, T, Z...: Z (or X) once it exited, before its parent reaped it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "X"


@pytest.mark.skipif(shutil.which("bpftool") is None, reason="bpftool is not installed")
def test_nothing_stays_attached_after_the_job(tmp_path: Path) -> None:
    """Checked while roar still lives: after the job it still hashes outputs and
    captures context, and a link it kept would be freed only at its exit. Once
    roar holds no link, it is stopped and the machine's links are searched for
    its programs (held by anyone, a forked child included). The tracepoints must be
    gone at once; the getenv uprobes detach in roar's background process
    (roar.tracer.detach), which must hold nothing else of roar's and end soon."""
    proc = subprocess.Popen([sys.executable, "-m", "roar", "run", "-q", "--", "sh", "-c",
                             "sleep 1; head -c 64M /dev/zero > big"], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        ours: set[int] = set()
        while len(ours) < 4:
            assert time.monotonic() < deadline, "roar's four programs never showed up while a job ran"
            assert process_state(proc.pid) not in "ZX", "roar ended before its programs showed up"
            ours = set(held_links(proc.pid).values())
            time.sleep(0.01)
        uprobes = {p["id"] for p in bpftool("prog", "show") if p["id"] in ours and p["type"] == "kprobe"}
        while True:   # until roar lets go of its links, or ends still holding them
            held = set(held_links(proc.pid).values())
            state = process_state(proc.pid)    # read after the links: they were let go while alive
            assert state not in "ZX", f"roar exited still holding links to its programs {sorted(held)}"
            if not held & ours:
                break
            assert time.monotonic() < deadline, "roar kept its links long after the job"
        os.kill(proc.pid, signal.SIGSTOP)
        checked: list[int] = []
        try:
            assert linked(ours - uprobes) == set(), "roar's tracepoints are still linked after it detached"
            for pid in holders(uprobes):
                assert pid != proc.pid
                try:
                    sid = os.getsid(pid)
                    uids = Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[:3]
                    kinds = {os.readlink(f"/proc/{pid}/fd/{fd}").split(":")[0]
                             for fd in os.listdir(f"/proc/{pid}/fd")}
                    cwd = os.readlink(f"/proc/{pid}/cwd")
                    caps = Path(f"/proc/{pid}/status").read_text().split("CapPrm:")[1].split()[0]
                except (ProcessLookupError, FileNotFoundError):
                    continue     # done detaching meanwhile
                assert (cwd, int(caps, 16)) == ("/", 0), "the detaching process keeps a cwd or capabilities"
                assert sid != os.getsid(proc.pid), "the detaching process is in roar's session"
                assert uids == ["0"] * 3, f"the detaching process has uids {uids}"
                assert kinds <= {"anon_inode", "pipe"}, f"the detaching process holds {kinds}"
                checked.append(pid)
            while linked(uprobes):
                assert time.monotonic() < deadline, "roar's getenv probes stayed linked"
                time.sleep(0.05)
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def holders(prog_ids: set[int]) -> list[int]:
    """The processes that hold a link to any of prog_ids (gone ones left out)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if set(held_links(entry.name).values()) & prog_ids:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


