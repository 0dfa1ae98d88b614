"""privilege.in_this_thread: the calling thread acts as the user, the others stay root,
and the thread is root again after (the preload thread keeps loading meanwhile)."""

from __future__ import annotations

import os
import pwd
import threading
from pathlib import Path

import pytest

from roar import privilege

pytestmark = pytest.mark.root


def euid_of(tid: int) -> int:
    status = Path(f"/proc/self/task/{tid}/status").read_text()
    return int(status.split("Uid:")[1].split()[1])


def groups_of(tid: int) -> list[int]:
    status = Path(f"/proc/self/task/{tid}/status").read_text()
    return [int(g) for g in status.split("Groups:")[1].splitlines()[0].split()]


@pytest.mark.skipif(not privilege.in_this_thread.supported, reason="no per-thread calls for this machine")
def test_only_the_calling_thread_changes(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    pw = pwd.getpwnam("nobody")
    user = privilege.User(pw.pw_uid, pw.pw_gid, (pw.pw_gid,), "nobody", "/nonexistent")
    other_tid: list[int] = []
    go, done = threading.Event(), threading.Event()

    def other() -> None:
        other_tid.append(threading.get_native_id())
        go.set()
        done.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    go.wait(10)
    me = threading.get_native_id()
    secret = tmp_path / "root-only"
    secret.write_text("x")
    secret.chmod(0o600)
    try:
        with privilege.in_this_thread(user):
            assert os.geteuid() == pw.pw_uid and os.getuid() == 0
            assert euid_of(me) == pw.pw_uid and groups_of(me) == [pw.pw_gid]
            assert euid_of(other_tid[0]) == 0, "another thread lost root"
            with pytest.raises(PermissionError):
                secret.read_text()              # file access is the user's
        assert os.geteuid() == 0 and euid_of(me) == 0 and groups_of(me) == [0]
        assert secret.read_text() == "x"
    finally:
        done.set()
        thread.join()
