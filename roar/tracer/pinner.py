"""Hash as read: every input's hash is of the bytes the job read (docs/tracer.md, "Input hashes").

The pinner is a process of roar's own, forked before the command is released. It seizes the
command with ptrace (PTRACE_SEIZE, following forks, vforks and clones), so every thread of the
job is its tracee from the start. At the first read or map of each user file in the job, the
kernel side (bpf/roar.bpf.c, hold_for_pin) records the thread's descriptor in `pin_reqs` and
sends the thread SIGURG from the read's syscall exit: the thread stops before it runs another
instruction of its own, in a signal-delivery-stop that only its tracer sees. The pinner takes the
same open file (pidfd_getfd: the inode the job read, even after a rename over its path or an
unlink), hashes it, suppresses the signal and lets the thread go on. Stops that are not ours
(another SIGURG, group stops, the stop of a new child) are passed on unchanged, and group stops
are kept as such (PTRACE_LISTEN), so a parent's waitpid(WUNTRACED) and a shell's job control see
what they would see without roar.

Results go to a memfd roar reads once the pinner has ended: one JSON line per file.

Privileges: forked as root, the pinner keeps only CAP_SYS_PTRACE (for pidfd_getfd on the job's
processes) and acts as the invoking user otherwise: it opens no path but the hash cache, which it
opens as the user. Its real uid stays root, so the user cannot signal or trace it.
"""

from __future__ import annotations

import ctypes as ct
import json
import os
import signal
import stat
from dataclasses import dataclass
from typing import Any

from roar.privilege import User

PTRACE_CONT = 7
PTRACE_SETOPTIONS = 0x4200
PTRACE_SEIZE = 0x4206
PTRACE_LISTEN = 0x4208
PTRACE_O_TRACEFORK, PTRACE_O_TRACEVFORK, PTRACE_O_TRACECLONE = 0x2, 0x4, 0x8
PTRACE_EVENT_STOP = 128
WALL = 0x40000000
SYS_PIDFD_GETFD = 438
SYS_CAPGET, SYS_CAPSET = 125, 126
CAP_SYS_PTRACE = 19
JOB_CONTROL = {signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU}
HOLD_SIGNAL = signal.SIGURG   # bpf/roar.bpf.c SIGURG: ignored by default, should a hold ever leak

_libc = ct.CDLL(None, use_errno=True)
_libc.ptrace.restype = ct.c_long
_libc.ptrace.argtypes = [ct.c_long, ct.c_long, ct.c_void_p, ct.c_void_p]
_libc.syscall.restype = ct.c_long


class PinReq(ct.Structure):
    """struct pin_req of bpf/roar.bpf.c."""

    _fields_ = [("tgid", ct.c_uint32), ("fd", ct.c_int32), ("dev", ct.c_uint64), ("ino", ct.c_uint64)]


@dataclass
class Pin:
    """One file as the job first read it."""

    dev: int
    ino: int
    size: int | None
    mtime_ns: int | None
    hashes: dict[str, str] | None    # None: the pinner could not take it (why says so)
    why: str | None = None


def _ptrace(request: int, pid: int, data: int = 0) -> int:
    return _libc.ptrace(request, pid, None, ct.c_void_p(data))


class Pinner:
    """The pinner process, seen from roar: start() before the command is released,
    finish() after it ended, then pins() has what it hashed."""

    def __init__(self, tracer, algorithms: tuple[str, ...], user: User | None, cache_db: str | None) -> None:
        self.tracer = tracer
        self.algorithms = algorithms
        self.user = user
        self.cache_db = cache_db
        self.pid: int | None = None
        self.off_reason: str | None = None   # why nothing was held, when nothing could be
        self._out = os.memfd_create("roar-pins", os.MFD_CLOEXEC)

    def start(self, root_pid: int) -> bool:
        """Fork the pinner and have it seize root_pid (still held by the launcher)."""
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(ready_r)
            _child_main(root_pid, ready_w, self)     # never returns
        os.close(ready_w)
        self.pid = pid
        answer = os.read(ready_r, 64)
        os.close(ready_r)
        if answer != b"ok":
            self.off_reason = answer.decode(errors="replace") or "the pinner ended at start"
            self._reap()
            return False
        self.tracer.set_pinner(pid)
        return True

    def finish(self) -> None:
        """Stop the pinner (processes the job left behind are let go) and wait for it."""
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGUSR1)
        except ProcessLookupError:
            pass
        self._reap()

    def _reap(self) -> None:
        if self.pid is not None:
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.pid = None

    def pins(self) -> dict[tuple[int, int], Pin]:
        """{(dev, ino): Pin} of the files held for, keyed like os.stat's st_dev, st_ino."""
        os.lseek(self._out, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(self._out, 1 << 20):
            chunks.append(chunk)
        os.close(self._out)
        found = {}
        for line in b"".join(chunks).splitlines():
            pin = Pin(**json.loads(line))
            found.setdefault((pin.dev, pin.ino), pin)
        return found


def _child_main(root_pid: int, ready_w: int, parent: Pinner) -> None:
    """The pinner process: seize, report, serve the job's holds until told to stop."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # roar passes the user's signals on itself
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGTSTP, signal.SIG_IGN)
        signal.signal(signal.SIGUSR1, _stop)
        PR_SET_PDEATHSIG, PR_SET_NAME = 1, 15
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)   # roar gone: the job is let go
        _libc.prctl(PR_SET_NAME, b"roar-pinner", 0, 0, 0)        # what ps shows beside the command
        options = PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE
        if _ptrace(PTRACE_SEIZE, root_pid, options) != 0:
            err = ct.get_errno()
            os.write(ready_w, f"the command could not be traced with ptrace ({os.strerror(err)})".encode())
            os._exit(0)
        if parent.user is not None:
            _keep_only_ptrace(parent.user)
        os.write(ready_w, b"ok")
        os.close(ready_w)
        _Serve(parent).loop()
    except BaseException:   # the job must go on whatever happens here: its tracees are let go
        code = 1
    finally:
        os._exit(code)


class _Stop(Exception):
    pass


def _stop(_signum: int, _frame: object) -> None:
    raise _Stop()


class _Serve:
    def __init__(self, parent: Pinner) -> None:
        self.algorithms = parent.algorithms
        self.out = parent._out
        self.reqs_fd = parent.tracer.map_fd("pin_reqs")
        self.lib = parent.tracer.lib
        self.cache_db = parent.cache_db
        self.cache: Any = None
        self.pidfds: dict[int, int] = {}

    def loop(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, WALL)
            except ChildProcessError:   # no tracee left, and none can appear any more
                return
            except _Stop:
                return
            if os.WIFSTOPPED(status):
                self._stopped(pid, status)
            else:   # exited: its pidfd, if any, is of no further use
                fd = self.pidfds.pop(pid, None)
                if fd is not None:
                    os.close(fd)

    def _stopped(self, pid: int, status: int) -> None:
        sig, event = os.WSTOPSIG(status), status >> 16
        if event == PTRACE_EVENT_STOP:
            # a group stop stays one (the parent's waitpid sees it); any other: a new tracee's
            # first stop, or the end of a group stop
            _ptrace(PTRACE_LISTEN if sig in JOB_CONTROL else PTRACE_CONT, pid)
        elif event:     # fork, vfork, clone: the child is a tracee now
            _ptrace(PTRACE_CONT, pid)
        elif sig == HOLD_SIGNAL and self._pin(pid):
            _ptrace(PTRACE_CONT, pid)     # ours: suppressed
        else:
            _ptrace(PTRACE_CONT, pid, sig)

    def _pin(self, tid: int) -> bool:
        key, req = ct.c_uint32(tid), PinReq()
        if self.lib.map_lookup(self.reqs_fd, ct.byref(key), ct.byref(req)) != 0:
            return False    # a SIGURG of the job's own
        self.lib.map_delete(self.reqs_fd, ct.byref(key))
        from roar.tracer.collector import user_dev

        dev = user_dev(req.dev)
        pin = self._hash(req, dev)
        os.write(self.out, json.dumps(pin.__dict__).encode() + b"\n")
        return True

    def _hash(self, req: PinReq, dev: int) -> Pin:
        from roar.artifacts.hashing import FileChanged, hash_fd

        try:
            fd = _take_fd(req.tgid, req.fd)
        except OSError as exc:
            return Pin(dev, req.ino, None, None, None, f"its descriptor could not be taken ({exc.strerror})")
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (dev, req.ino):
                # another thread put another file at that descriptor number meanwhile
                return Pin(dev, req.ino, None, None, None, "its descriptor changed before it was hashed")
            known = self._cached(st)
            try:
                hashes = known or hash_fd(fd, self.algorithms, before=st)
            except FileChanged as exc:
                return Pin(dev, req.ino, st.st_size, st.st_mtime_ns, None, f"another process {exc.why}")
            return Pin(dev, req.ino, st.st_size, st.st_mtime_ns, hashes)
        except OSError as exc:
            return Pin(dev, req.ino, None, None, None, f"it could not be read ({exc.strerror or exc})")
        finally:
            os.close(fd)

    def _cached(self, st: os.stat_result) -> dict[str, str] | None:
        """Digests the hash cache has for this exact file state (never hashed twice)."""
        if self.cache_db is None:
            return None
        try:
            if self.cache is None:
                from roar.artifacts.cache import HashCache

                self.cache = HashCache(self.cache_db, readonly=True)
            known = self.cache.lookup(st, self.algorithms)
        except Exception:   # no cache, or a busy one: hash
            self.cache_db = None
            return None
        return known if all(a in known for a in self.algorithms) else None


def _take_fd(tgid: int, fd: int) -> int:
    pidfd = os.pidfd_open(tgid)
    try:
        got = _libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
        if got < 0:
            err = ct.get_errno()
            raise OSError(err, os.strerror(err))
        return got
    finally:
        os.close(pidfd)


class _CapHeader(ct.Structure):
    _fields_ = [("version", ct.c_uint32), ("pid", ct.c_int)]


class _CapData(ct.Structure):
    _fields_ = [("effective", ct.c_uint32), ("permitted", ct.c_uint32), ("inheritable", ct.c_uint32)]


def _keep_only_ptrace(user: User) -> None:
    """Act as the user, with CAP_SYS_PTRACE as the one effective capability; the real and
    saved uids stay root, so the user can neither signal nor trace this process."""
    os.setgroups(list(user.groups))
    os.setresgid(-1, user.gid, 0)
    os.setresuid(-1, user.uid, 0)
    header = _CapHeader(0x20080522, 0)   # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    if _libc.syscall(SYS_CAPGET, ct.byref(header), data) != 0:
        raise OSError(ct.get_errno(), "capget")
    data[0].effective = 1 << CAP_SYS_PTRACE
    data[0].permitted = 1 << CAP_SYS_PTRACE
    data[0].inheritable = 0
    data[1].effective = data[1].permitted = data[1].inheritable = 0
    if _libc.syscall(SYS_CAPSET, ct.byref(header), data) != 0:
        raise OSError(ct.get_errno(), "capset")
