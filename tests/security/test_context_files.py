"""Context capture reads files and runs programs that others may have put in the
job's way: a `.git` planted above, a repository's HEAD, a package's metadata, a
traced `python3`. None of them may run as root, hang roar, or put a root-only
file's content in a record. Real tracer, a real second user."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.security.conftest import roar, sudo_roar

pytestmark = [pytest.mark.root, pytest.mark.ebpf]

TIMEOUT_S = 60   # roar must finish well within this, whatever is planted


def show(cwd: Path, user=None) -> dict:
    proc = sudo_roar(user, "show", "@1", "--json", cwd=cwd) if user else roar("show", "@1", "--json", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


FAKE_PYTHON = r"""
#include <stdio.h>
#include <unistd.h>
int main(void) {
    FILE *f = fopen("%s", "a");
    if (f) { fprintf(f, "%%d\n", (int)geteuid()); fclose(f); }
    puts("3.11.2");
    return 0;
}
"""


def test_plain_root_never_runs_another_users_python_to_ask_its_version(mallory, tmp_path):
    """The traced tree runs mallory's own `python3` (after su): roar asks an interpreter's
    version by running it, which as root would run mallory's code as root."""
    marker = Path("/tmp") / f"roar-fakepy-{os.getpid()}"
    marker.unlink(missing_ok=True)
    src = tmp_path / "fakepy.c"
    src.write_text(FAKE_PYTHON % marker)
    bindir = mallory.home / "bin"
    bindir.mkdir(exist_ok=True)
    os.chown(bindir, mallory.uid, mallory.gid)
    exe = bindir / "python3"
    subprocess.run(["gcc", "-o", str(exe), str(src)], check=True)
    os.chown(exe, mallory.uid, mallory.gid)
    try:
        proc = roar("run", "-q", "--", "su", "-s", "/bin/sh", mallory.name, "-c", f"{exe} -c pass",
                    cwd=tmp_path, timeout=TIMEOUT_S)
        assert proc.returncode == 0, proc.stderr
        runs = marker.read_text().split()
        assert runs and "0" not in runs, f"mallory's python3 ran as root: {runs}"
        pythons = show(tmp_path)["context"]["packages"].get("python") or []
        noted = [p for p in pythons if p.get("exe") == str(exe)]
        assert noted and "not root's own" in (noted[0].get("note") or ""), pythons
    finally:
        marker.unlink(missing_ok=True)


def plant_gitdir(owner, shared: Path, head: str) -> Path:
    """`shared/.git` as a file pointing at a git directory `owner` controls."""
    gitdir = shared / "evil-git"
    owner.run("mkdir", "-p", str(gitdir / "refs" / "heads"), check=True)
    owner.run("sh", "-c", f"printf '%s\\n' '{head}' > {gitdir}/HEAD; "
              f"echo 0123456789abcdef0123456789abcdef01234567 > {gitdir}/refs/heads/main; "
              f"printf '[remote \"origin\"]\\n\\turl = https://example.org/trusted.git\\n' > {gitdir}/config",
              check=True)
    owner.run("sh", "-c", f"printf 'gitdir: {gitdir}\\n' > {shared}/.git", check=True)
    return gitdir


def test_a_planted_gitdir_file_above_gives_no_git_context(mallory, alice, shared_dir):
    plant_gitdir(mallory, shared_dir, "ref: refs/heads/main")
    work = shared_dir / "alice-work"
    alice.run("mkdir", str(work), check=True)
    proc = sudo_roar(alice, "run", "-q", "--", "true", cwd=work, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    assert show(work, alice)["context"]["git"] is None


def test_a_fifo_in_a_repository_never_hangs_roar(tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    head = repo / ".git" / "HEAD"
    head.unlink()
    os.mkfifo(head)
    proc = roar("run", "-q", "--", "true", cwd=repo, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    assert len(list((repo / ".roar" / "jobs").glob("*.msgpack"))) == 1


def test_head_is_never_a_path_to_read(tmp_path):
    """HEAD naming `../../etc/shadow` must not put that file's content in the record."""
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    secret = tmp_path / "secret"
    secret.write_text("root:$y$SECRETHASH:20228:0:99999:7:::\n")
    (repo / ".git" / "HEAD").write_text(f"ref: ../../{secret.name}\n")
    proc = roar("run", "-q", "--", "true", cwd=repo, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    git = show(repo)["context"]["git"]
    assert "SECRETHASH" not in json.dumps(git)
    assert git["branch"] is None and git["commit"] is None


def test_a_fifo_in_package_metadata_never_hangs_roar(mallory, alice, shared_dir):
    site = shared_dir / "site"
    meta = site / "evil-1.0.dist-info"
    mallory.run("mkdir", "-p", str(meta), check=True)
    mallory.run("sh", "-c", f"echo 'x = 1' > {site}/evilmod.py; printf 'Name: evil\\nVersion: 1.0\\n\\n' "
                f"> {meta}/METADATA; mkfifo {meta}/RECORD", check=True)
    work = shared_dir / "alice-work"
    alice.run("mkdir", str(work), check=True)
    code = f"import sys; sys.path.insert(0, {str(site)!r}); import evilmod"
    proc = sudo_roar(alice, "run", "-q", "--", sys.executable, "-c", code, cwd=work, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    assert len(list((work / ".roar" / "jobs").glob("*.msgpack"))) == 1


def test_giving_up_root_never_passes_through_root_again(mallory):
    """From the state `roar run` is in while the command runs (effective ids the user's),
    dropping for good must not make the process root again, even for a moment: glibc
    changes every thread's ids, and a hashing thread opening a path in that moment
    would open it as root."""
    code = f"""
import os, pwd
from roar import privilege
pw = pwd.getpwuid({mallory.uid})
user = privilege.User(pw.pw_uid, pw.pw_gid, tuple(os.getgrouplist(pw.pw_name, pw.pw_gid)), pw.pw_name,
                      pw.pw_dir)
privilege.as_user(user)
euids = []
real_setresuid = os.setresuid
def watched(r, e, s):
    real_setresuid(r, e, s)
    euids.append(os.geteuid())
os.setresuid = watched
privilege.drop(user)
print(euids, os.getresuid(), os.getresgid())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == (f"[{mallory.uid}] ({mallory.uid}, {mallory.uid}, {mallory.uid}) "
                           f"({mallory.gid}, {mallory.gid}, {mallory.gid})"), out
