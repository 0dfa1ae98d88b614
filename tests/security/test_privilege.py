"""The privilege boundary: under sudo or as root, roar never lets a file, a link,
a repository or a variable someone else wrote act with root's power.

Each test plays a real second user (useradd) against roar run as root, the way
`sudo roar ...` runs it (SUDO_UID/SUDO_GID/SUDO_USER, sudo's environment)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.security.conftest import one_line_error, roar, sudo_roar

pytestmark = [pytest.mark.root, pytest.mark.ebpf]

REFUSED = 8   # docs/exit-codes.md: refused for safety


def tree_snapshot(d: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under d with (uid, mode, size): what an attack would change."""
    out = {}
    for p in [d, *d.rglob("*")]:
        st = os.lstat(p)
        out[str(p)] = (st.st_uid, st.st_mode, st.st_size)
    return out


@pytest.fixture
def root_dir():
    """A directory only root may write (0755), like /etc or /var/lib."""
    d = Path(tempfile.mkdtemp(prefix="roar-rootonly-"))
    d.chmod(0o755)
    (d / "precious").write_text("root's file\n")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def plant_fsmonitor_repo(owner, where: Path, marker: Path) -> None:
    """A git repository owned by `owner` whose config runs a program (core.fsmonitor)
    that records who ran it."""
    hook = where / "monitor.sh"
    owner.run("git", "init", "-q", str(where), check=True)
    hook.write_text(f"#!/bin/sh\nid -u >> {marker}\nchmod 666 {marker}\n")
    hook.chmod(0o755)
    os.chown(hook, owner.uid, owner.gid)
    owner.run("git", "config", "--file", str(where / ".git" / "config"), "core.fsmonitor", str(hook),
              check=True)


# 1. git config never runs as root


def test_git_config_of_a_planted_repository_never_runs_as_root_under_sudo(mallory, alice, shared_dir):
    marker = shared_dir / "fsmonitor-ran"
    plant_fsmonitor_repo(mallory, shared_dir, marker)
    work = shared_dir / "alice-work"
    alice.run("mkdir", str(work), check=True)
    (work / "in.txt").write_text("x")
    proc = sudo_roar(alice, "run", "-q", "--", "cp", "in.txt", "out.txt", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists() or "0" not in marker.read_text().split(), "fsmonitor ran as root"
    # a .git someone else planted above does not decide where the workspace goes
    assert (work / ".roar").is_dir() and not (shared_dir / ".roar").exists()


def test_git_under_sudo_cannot_take_root_back(mallory, user_dir):
    """git runs before the command starts, while roar acts as the user but is still root
    underneath: what git starts (the user's own fsmonitor) must have the user's ids for
    real, or it could setuid(0)."""
    marker = user_dir / "ids"
    hook = user_dir / "monitor.sh"
    mallory.run("git", "init", "-q", str(user_dir), check=True)
    mallory.run("sh", "-c", f"printf '#!/bin/sh\\nid -ru >> {marker}\\nid -u >> {marker}\\n' > {hook}; "
                f"chmod +x {hook}", check=True)
    mallory.run("git", "-C", str(user_dir), "config", "core.fsmonitor", str(hook), check=True)
    proc = sudo_roar(mallory, "run", "-q", "--", "true", cwd=user_dir)
    assert proc.returncode == 0, proc.stderr
    ids = marker.read_text().split()
    assert ids and set(ids) == {str(mallory.uid)}, ids


def test_as_plain_root_a_repository_of_another_user_gives_no_git_context(mallory, shared_dir):
    marker = shared_dir / "fsmonitor-ran"
    plant_fsmonitor_repo(mallory, shared_dir, marker)
    work = shared_dir / "root-work"
    work.mkdir()
    proc = roar("run", "-q", "--", "true", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists(), f"fsmonitor ran: {marker.read_text()}"
    record = json.loads(roar("show", "@1", "--json", cwd=work).stdout)
    assert record["context"]["git"] is None
    notes = " ".join(record["context"]["notes"])
    assert "belongs to" in notes and mallory.name in notes and "safe.directory" in notes
    # and the same for put
    (work / "f").write_text("data")
    dest = work / "dest"
    dest.mkdir()
    proc = roar("put", "f", str(dest), cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()


# 2. links inside .roar/ never make root write or chown outside it

LINKED_PARTS = [".roar", ".roar/jobs", ".roar/sessions", ".roar/cache", ".roar/roar.db"]


@pytest.mark.parametrize("part", LINKED_PARTS)
def test_a_linked_workspace_part_is_refused_under_sudo(mallory, user_dir, root_dir, part):
    if part != ".roar":
        mallory.run("mkdir", str(user_dir / ".roar"), check=True)
    target = root_dir / "precious" if part.endswith(".db") else root_dir
    mallory.run("ln", "-s", str(target), str(user_dir / part), check=True)
    before = tree_snapshot(root_dir)
    proc = sudo_roar(mallory, "run", "-q", "--", "sh", "-c", "echo hi > out.txt", cwd=user_dir)
    assert proc.returncode == REFUSED, proc.stderr
    line = one_line_error(proc)
    assert "link" in line and part.split("/")[-1] in line
    assert tree_snapshot(root_dir) == before, "root wrote or chowned outside the workspace"
    assert not (user_dir / "out.txt").exists(), "the command ran although roar refused"


@pytest.mark.parametrize("part", [".roar/jobs", ".roar/roar.db"])
def test_a_linked_workspace_part_is_refused_as_plain_root(root_dir, part, tmp_path):
    (tmp_path / ".roar").mkdir()
    target = root_dir / "precious" if part.endswith(".db") else root_dir
    (tmp_path / part).symlink_to(target)
    before = tree_snapshot(root_dir)
    proc = roar("run", "-q", "--", "true", cwd=tmp_path)
    assert proc.returncode == REFUSED, proc.stderr
    assert "link" in one_line_error(proc)
    assert tree_snapshot(root_dir) == before
    # read commands refuse it too, and write nothing
    proc = roar("status", cwd=tmp_path)
    assert proc.returncode == REFUSED, proc.stderr
    assert tree_snapshot(root_dir) == before


# 3. a workspace someone else owns is not used


def test_a_workspace_planted_in_a_shared_directory_is_never_used(mallory, alice, shared_dir):
    """In a sticky world-writable directory (/tmp) a `.roar/` of another user's above the
    current directory is passed over: the job gets a workspace of its own."""
    mallory.run("mkdir", "-m", "777", str(shared_dir / ".roar"), check=True)
    work = shared_dir / "alice-work"
    alice.run("mkdir", str(work), check=True)
    root_work = shared_dir / "root-work"
    root_work.mkdir()
    for proc, where in ((sudo_roar(alice, "run", "-q", "--", "true", cwd=work), work),
                        (roar("run", "-q", "--", "true", cwd=root_work), root_work)):
        assert proc.returncode == 0, proc.stderr
        assert (where / ".roar" / "jobs").is_dir()
    assert list((shared_dir / ".roar").iterdir()) == [], "roar wrote in the planted workspace"


def test_another_users_workspace_is_refused_for_writing(mallory, alice, user_dir):
    """Where it is not planted in a shared directory, someone else's workspace is refused
    with a line that names its owner: as root, and under sudo as another user."""
    proc = sudo_roar(mallory, "run", "-q", "--", "true", cwd=user_dir)
    assert proc.returncode == 0, proc.stderr
    sub = user_dir / "sub"
    mallory.run("mkdir", "-m", "777", str(sub), check=True)
    for proc in (sudo_roar(alice, "run", "-q", "--", "sh", "-c", "echo ran > ran.txt", cwd=sub),
                 roar("run", "-q", "--", "true", cwd=sub)):
        assert proc.returncode == REFUSED, proc.stderr
        line = one_line_error(proc)
        assert mallory.name in line and str(user_dir / ".roar") in line
    assert not (sub / "ran.txt").exists()


def test_plain_root_refuses_a_workspace_in_another_users_directory(mallory, user_dir):
    proc = roar("run", "-q", "--", "sh", "-c", "echo ran > ran.txt", cwd=user_dir)
    assert proc.returncode == REFUSED, proc.stderr
    line = one_line_error(proc)
    assert mallory.name in line and "sudo" in line
    assert not (user_dir / ".roar").exists() and not (user_dir / "ran.txt").exists()


# 4. get and put act as the invoking user


def test_get_cannot_read_what_the_user_cannot(mallory, user_dir, root_dir):
    secret = root_dir / "secret"
    secret.write_text("root only\n")
    secret.chmod(0o600)
    proc = sudo_roar(mallory, "get", f"file://{secret}", "copy", cwd=user_dir)
    assert proc.returncode == 7, proc.stderr
    assert "Traceback" not in proc.stderr.decode()
    assert not (user_dir / "copy").exists()


def test_put_cannot_write_where_the_user_cannot(mallory, user_dir, root_dir):
    mallory.run("sh", "-c", "echo mine > x", cwd=user_dir, check=True)
    (root_dir / "x").write_text("root's x\n")
    before = tree_snapshot(root_dir)
    proc = sudo_roar(mallory, "put", "--force", "x", f"{root_dir}/", cwd=user_dir)
    assert proc.returncode == 7, proc.stderr
    one_line_error(proc)
    assert tree_snapshot(root_dir) == before
    assert (root_dir / "x").read_text() == "root's x\n"


def test_get_and_put_under_sudo_leave_the_users_files(mallory, user_dir):
    mallory.run("sh", "-c", "mkdir out && echo data > f", cwd=user_dir, check=True)
    assert sudo_roar(mallory, "get", f"file://{user_dir}/f", "g", cwd=user_dir).returncode == 0
    assert sudo_roar(mallory, "put", "g", "out", cwd=user_dir).returncode == 0
    for p in [user_dir / "g", user_dir / "out" / "g", *(user_dir / ".roar").rglob("*")]:
        assert os.lstat(p).st_uid == mallory.uid, p


# 5. the installed entry point ignores PYTHON* variables

ENTRY = Path("/usr/local/bin/roar")


def test_installed_entry_point_is_isolated(tmp_path):
    if not ENTRY.exists():
        pytest.fail(f"{ENTRY} is missing: run scripts/setup")
    evil = tmp_path / "evil"
    evil.mkdir()
    marker = tmp_path / "PWNED"
    for name in ("sitecustomize.py", "usercustomize.py", "roar.py"):
        (evil / name).write_text(f"open({str(marker)!r}, 'a').write({name!r})\n")
    startup = evil / "startup.py"
    startup.write_text(f"open({str(marker)!r}, 'a').write('startup')\n")
    prefix = tmp_path / "pycache"
    env = {"PATH": "/usr/bin:/bin", "HOME": "/root", "PYTHONPATH": str(evil), "PYTHONSTARTUP": str(startup),
           "PYTHONINSPECT": "1", "PYTHONPYCACHEPREFIX": str(prefix), "PYTHONUSERBASE": str(evil),
           "PYTHONHOME": "/nonexistent-python-home"}
    for args in (["--version"], ["status"]):
        proc = subprocess.run([str(ENTRY), *args], cwd=evil, env=env, capture_output=True,
                              stdin=subprocess.DEVNULL)
        assert "Traceback" not in proc.stderr.decode(), proc.stderr
    assert not marker.exists(), f"user code ran as root: {marker.read_text()}"
    assert not prefix.exists(), "PYTHONPYCACHEPREFIX was honoured"


# 6. a SUDO_UID that names no user


def test_sudo_uid_without_a_passwd_entry_is_refused(tmp_path):
    uid = 61234
    while True:
        try:
            import pwd

            pwd.getpwuid(uid)
            uid += 1
        except KeyError:
            break
    env = {**os.environ, "SUDO_UID": str(uid), "SUDO_GID": str(uid), "SUDO_USER": "ghost"}
    for args in (["run", "-q", "--", "sh", "-c", "echo ran > ran.txt"], ["status"]):
        proc = roar(*args, cwd=tmp_path, env=env)
        assert proc.returncode == REFUSED, proc.stderr
        assert str(uid) in one_line_error(proc)
    assert not (tmp_path / "ran.txt").exists()
    assert not (tmp_path / ".roar").exists()


def test_sudo_gid_that_is_not_the_users_group_is_refused(mallory, user_dir):
    env = mallory.sudo_env(SUDO_GID="0")
    proc = roar("run", "-q", "--", "sh", "-c", "id -g > gid.txt", cwd=user_dir, env=env)
    assert proc.returncode == REFUSED, proc.stderr
    assert "SUDO_GID=0" in one_line_error(proc)
    assert not (user_dir / "gid.txt").exists()


# 9. nothing under .roar/ is readable by other users


def test_workspace_files_are_private(mallory, alice, user_dir):
    proc = sudo_roar(mallory, "run", "-q", "--", "sh", "-c", "echo hi > out.txt", cwd=user_dir,
                     extra_env={"API_TOKEN": "tok-123"})
    assert proc.returncode == 0, proc.stderr
    assert sudo_roar(mallory, "label", "set", "@1", "k=v", cwd=user_dir).returncode == 0
    paths = [user_dir / ".roar", *(user_dir / ".roar").rglob("*")]
    assert any(p.name == "roar.db" for p in paths)
    for p in paths:
        st = os.lstat(p)
        assert st.st_uid == mallory.uid, p
        assert st.st_mode & 0o077 == 0, f"{p} is {stat.filemode(st.st_mode)}"
    probe = alice.run("sh", "-c", f"cat {user_dir}/.roar/roar.db {user_dir}/.roar/jobs/* >/dev/null")
    assert probe.returncode != 0


# 15. a busy index never loses a finished job


def test_busy_index_keeps_the_job_and_its_exit_status(tmp_path):
    assert roar("run", "-q", "--", "true", cwd=tmp_path).returncode == 0
    holder = subprocess.Popen(
        ["python3", "-c", "import sqlite3, sys, time\n"
         "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
         "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(12)",
         str(tmp_path / ".roar" / "roar.db")], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"locked"
        proc = roar("run", "-q", "--", "sh", "-c", "echo done > out.txt; exit 7", cwd=tmp_path)
        assert proc.returncode == 7, proc.stderr
        assert "busy" in proc.stderr.decode()
        assert len(list((tmp_path / ".roar" / "jobs").glob("*.msgpack"))) == 2
    finally:
        holder.kill()
        holder.wait()
    shown = roar("show", "@2", "--json", cwd=tmp_path)     # the next command indexes it
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert record["exit_code"] == 7
    assert [Path(o["path"]).name for o in record["outputs"]] == ["out.txt"]


# 16. a full disk is called a full disk, and db rebuild never leaves an empty index


@pytest.fixture
def small_disk():
    d = Path(tempfile.mkdtemp(prefix="roar-small-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m,mode=0755", "tmpfs", str(d)], check=True)
    yield d
    subprocess.run(["umount", "-l", str(d)], check=False)
    shutil.rmtree(d, ignore_errors=True)


def fill(disk: Path) -> None:
    with open(disk / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()
        except OSError:
            pass
    try:
        with open(disk / "filler2", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:
        pass


def test_disk_full_is_reported_and_rebuild_keeps_the_index(small_disk):
    work = small_disk / "w"
    work.mkdir()
    for i in range(3):
        assert roar("run", "-q", "--", "sh", "-c", f"echo {i} > f{i}", cwd=work).returncode == 0
    db = work / ".roar" / "roar.db"
    fill(small_disk)
    proc = roar("run", "-q", "--", "true", cwd=work)
    assert proc.returncode == 120, proc.stderr
    assert "disk is full" in one_line_error(proc)
    proc = roar("db", "rebuild", cwd=work)
    assert proc.returncode == 120, proc.stderr
    assert "disk is full" in one_line_error(proc)
    assert db.stat().st_size > 0
    (small_disk / "filler").unlink()
    log = roar("log", "--json", cwd=work)
    assert log.returncode == 0, log.stderr
    assert len(json.loads(log.stdout)) == 3
    assert not [n for n in os.listdir(work / ".roar") if "rebuild" in n]


# 17. read commands work read-only


def test_read_commands_work_in_another_users_readable_workspace(mallory, alice, user_dir):
    proc = sudo_roar(mallory, "run", "-q", "--", "sh", "-c", "echo hi > out.txt", cwd=user_dir)
    assert proc.returncode == 0, proc.stderr
    mallory.run("chmod", "-R", "a+rX", str(user_dir / ".roar"), check=True)
    before = tree_snapshot(user_dir / ".roar")
    for args in (["status"], ["show", "@1"], ["log"], ["dag"], ["show", "out.txt"]):
        proc = alice.run("roar", *args, cwd=user_dir)
        assert proc.returncode == 0, (args, proc.stderr)
    # alice may read, but not write there, and roar says so rather than half-writing
    proc = alice.run("roar", "label", "set", "@1", "k=v", cwd=user_dir)
    assert proc.returncode in (REFUSED, 120), proc.stderr
    one_line_error(proc)
    assert tree_snapshot(user_dir / ".roar") == before


def test_read_commands_work_on_a_read_only_filesystem(tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    assert roar("run", "-q", "--", "sh", "-c", "echo hi > out.txt", cwd=work).returncode == 0
    ro = tmp_path / "ro"
    ro.mkdir()
    subprocess.run(["mount", "--bind", str(work), str(ro)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)], check=True)
        for args in (["status"], ["show", "@1"], ["log"], ["dag"]):
            proc = roar(*args, cwd=ro)
            assert proc.returncode == 0, (args, proc.stderr)
        proc = roar("run", "-q", "--", "true", cwd=ro)
        assert proc.returncode == 120, proc.stderr
        one_line_error(proc)
    finally:
        subprocess.run(["umount", str(ro)], check=False)


# a set-user-ID program in the traced tree is not traced past its exec

PEEK = r"""
#include <fcntl.h>
#include <unistd.h>
int main(void) { int fd = open(SECRET, O_RDONLY); if (fd >= 0) close(fd); return 0; }
"""


def test_a_setuid_program_in_the_tree_is_not_traced(mallory, user_dir, root_dir):
    """What a set-user-ID program opens is not the invoking user's to see: the names of
    root-only files it opens must not reach the user's record."""
    secret = root_dir / "private-name-4f2a"
    secret.write_text("x")
    secret.chmod(0o600)
    tools = Path(tempfile.mkdtemp(prefix="roar-suid-"))
    tools.chmod(0o755)
    try:
        (tools / "peek.c").write_text(PEEK)
        subprocess.run(["gcc", f'-DSECRET="{secret}"', "-o", str(tools / "peek"), str(tools / "peek.c")],
                       check=True)
        (tools / "peek").chmod(0o4755)
        proc = sudo_roar(mallory, "run", "-q", "--", "sh", "-c", f"{tools}/peek; echo hi > out.txt",
                         cwd=user_dir)
        assert proc.returncode == 0, proc.stderr
        assert "gains privileges" in proc.stderr.decode()
        shown = sudo_roar(mallory, "show", "@1", "--json", cwd=user_dir)
        assert shown.returncode == 0, shown.stderr
        assert secret.name not in shown.stdout.decode()
        record = json.loads(shown.stdout)
        assert [p for p in record["processes"] if p.get("privileged")]
        assert [Path(o["path"]).name for o in record["outputs"]] == ["out.txt"]
    finally:
        shutil.rmtree(tools, ignore_errors=True)
