"""Who roar acts as: the user behind sudo, and dropping to that user.

roar is started as root (`sudo roar run ...`) in directories that other users
control. Root is needed for exactly two things, loading the BPF object and
starting the traced command; everything else (the workspace, git, get/put,
hashing by path, context capture) runs as the invoking user (docs/security.md).

- `invoking_user()` reads SUDO_UID/SUDO_GID once and checks them against the
  passwd database: a SUDO_UID that names no user is refused, never run as root.
- `drop(user)` gives up root for good (real, effective and saved ids).
- `as_user(user)` is the temporary form `roar run` needs around the command:
  the effective ids (which decide file access and ownership) are the user's,
  the real and saved uid stay root so the tracer can still be attached
  (`regain()`).

glibc applies each of these to every thread of the process, so a caller makes
sure no thread is in the middle of a privileged step (the BPF preload) first.
`in_this_thread(user)` is the same temporary form for the calling thread alone
(Linux keeps credentials per thread): `roar run` prepares the job as the user
while the preload thread goes on loading as root.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass

from roar.errors import Untrusted


@dataclass(frozen=True)
class User:
    uid: int
    gid: int
    groups: tuple[int, ...]
    name: str
    home: str


def invoking_user() -> User | None:
    """The user behind sudo when roar runs as root under sudo; None when roar is
    not root, not under sudo, or sudo was run by root itself. Untrusted when
    SUDO_UID/SUDO_GID are malformed or name no user."""
    if os.geteuid() != 0 or "SUDO_UID" not in os.environ:
        return None
    uid, gid = os.environ.get("SUDO_UID", ""), os.environ.get("SUDO_GID", "")
    if not uid.isdigit() or not gid.isdigit() or len(uid) > 10 or len(gid) > 10:
        raise Untrusted(f"SUDO_UID={uid!r} SUDO_GID={gid!r} are not numeric ids: run roar through "
                        "sudo, or unset SUDO_UID and SUDO_GID to act as root")
    if int(uid) == 0:
        return None
    try:
        pw = pwd.getpwuid(int(uid))
    except (KeyError, OverflowError):
        raise Untrusted(f"SUDO_UID={uid} names no user in the passwd database: run roar through "
                        "sudo as a real user, or unset SUDO_UID to act as root") from None
    groups = tuple(os.getgrouplist(pw.pw_name, pw.pw_gid))
    if int(gid) not in groups:   # sudo gives the user's own group; another (0, say) is not theirs
        raise Untrusted(f"SUDO_GID={gid} is not a group of {pw.pw_name} (SUDO_UID={uid}): run roar "
                        "through sudo, or unset SUDO_UID and SUDO_GID to act as root")
    return User(int(uid), int(gid), groups, pw.pw_name, pw.pw_dir)


def as_user(user: User) -> None:
    """Act as `user` (effective ids, groups) while keeping the saved uid 0."""
    os.setgroups(list(user.groups))
    os.setresgid(-1, user.gid, 0)
    os.setresuid(-1, user.uid, 0)   # the real uid stays root: the user cannot signal roar


def regain() -> None:
    """Back to root after as_user()."""
    os.setresuid(0, 0, 0)
    os.setresgid(0, 0, 0)
    os.setgroups([0])


# the raw system calls change the calling thread only
_THREAD_CRED_SYSCALLS = {"x86_64": {"setresuid": 117, "setresgid": 119, "setgroups": 116}}


class in_this_thread:
    """`with privilege.in_this_thread(user):` the calling thread acts as user as as_user() does,
    and is root again at the end; the process's other threads stay as they are. `supported`
    is False where roar does not know the system call numbers (then use as_user())."""

    supported = os.uname().machine in _THREAD_CRED_SYSCALLS

    def __init__(self, user: User) -> None:
        self.user = user

    def __enter__(self) -> "in_this_thread":
        groups = list(self.user.groups)
        with _signals_held():     # a Ctrl-C between two calls would leave the ids half changed
            _thread_call("setgroups", len(groups), groups)
            _thread_call("setresgid", -1, self.user.gid, 0)
            _thread_call("setresuid", -1, self.user.uid, 0)
        return self

    def __exit__(self, *exc: object) -> None:
        with _signals_held():
            _thread_call("setresuid", 0, 0, 0)
            _thread_call("setresgid", 0, 0, 0)
            _thread_call("setgroups", 1, [0])


class _signals_held:
    """Signals to this thread wait (and Python's handlers with them) until the block ends."""

    def __enter__(self) -> None:
        import signal

        self.old = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())

    def __exit__(self, *exc: object) -> None:
        import signal

        signal.pthread_sigmask(signal.SIG_SETMASK, self.old)


def _thread_call(name: str, *args) -> None:
    import ctypes as ct

    number = _THREAD_CRED_SYSCALLS[os.uname().machine][name]
    libc = ct.CDLL(None, use_errno=True)
    libc.syscall.restype = ct.c_long
    if name == "setgroups":
        count, groups = args
        cargs = (ct.c_size_t(count), (ct.c_uint32 * max(count, 1))(*groups))
    else:
        cargs = tuple(ct.c_uint32(a & 0xFFFFFFFF) for a in args)   # -1: leave it as it is
    if libc.syscall(ct.c_long(number), *cargs) != 0:
        err = ct.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")


def drop(user: User) -> None:
    """Become `user` for good: no way back to root for this process. HOME, USER and
    LOGNAME become theirs too, for what runs next (git, boto3 credentials)."""
    # From as_user() the groups are already the user's, and setting every id to the
    # effective one needs no privilege: never regain root on the way out (another
    # thread, hashing a path, would open it as root in that moment).
    if os.geteuid() == 0:
        os.setgroups(list(user.groups))
    os.setresgid(user.gid, user.gid, user.gid)
    os.setresuid(user.uid, user.uid, user.uid)
    os.environ.update(HOME=user.home, USER=user.name, LOGNAME=user.name)


def keep_only_capabilities(mask: int) -> None:
    """Keep the capabilities in mask (bits by number, e.g. 1 << 19 for CAP_SYS_PTRACE) as
    effective and permitted, and none inheritable; the uids are left as they are. For roar's
    own helper processes, which need root's uids (so the user cannot signal them) but little
    or nothing of its power."""
    import ctypes as ct

    class Header(ct.Structure):
        _fields_ = [("version", ct.c_uint32), ("pid", ct.c_int)]

    class Data(ct.Structure):
        _fields_ = [("effective", ct.c_uint32), ("permitted", ct.c_uint32), ("inheritable", ct.c_uint32)]

    libc = ct.CDLL(None, use_errno=True)
    libc.syscall.restype = ct.c_long
    header = Header(0x20080522, 0)   # _LINUX_CAPABILITY_VERSION_3: two 32-bit words
    data = (Data * 2)()
    for word in (0, 1):
        data[word].effective = data[word].permitted = (mask >> (32 * word)) & 0xFFFFFFFF
    if libc.syscall(SYS_CAPSET, ct.byref(header), data) != 0:
        err = ct.get_errno()
        raise OSError(err, f"capset: {os.strerror(err)}")


SYS_CAPSET = 126   # x86_64


def child_ids() -> dict[str, int]:
    """subprocess.run arguments that give a child exactly the ids roar acts as. Inside
    as_user() the real uid is still root, and a program started then (git, whose config
    can run hooks) could take root back with setuid(0): it gets the user's ids for real
    and effective alike. Empty when roar is one user throughout."""
    if os.getuid() == os.geteuid() and os.getgid() == os.getegid():
        return {}
    return {"user": os.geteuid(), "group": os.getegid()}   # groups: already the user's
