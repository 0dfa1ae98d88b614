"""Hash as read: every input's hash is of the bytes the job read (docs/tracer.md, "Input hashes").

The pinner is a process of roar's own, forked before the command is released. It seizes the
command with ptrace (PTRACE_SEIZE, following forks, vforks and clones), so every thread of the
job is its tracee from the start. At the first read or map of each user file in the job, the
kernel side (bpf/roar.bpf.c, hold_for_pin) records the thread's descriptor in `pin_reqs` and
sends the thread SIGURG from the read's syscall exit: the thread stops before it runs another
instruction of its own, in a signal-delivery-stop that only its tracer sees. The pinner takes the
same open file (pidfd_getfd: the inode the job read, even after a rename over its path or an
unlink), hashes it, suppresses the signal and lets the thread go on. A file bigger than
HOLD_HASH_MAX is kept open and hashed beside the job instead, so no file holds the job for long;
its digest counts only if the file shows no change (size, mtime, ctime) once hashed.

Stops that are not ours (another SIGURG, group stops, the stop of a new child) are passed on
unchanged, and group stops are kept as such (PTRACE_LISTEN), so a parent's waitpid(WUNTRACED)
and a shell's job control see what they would see without roar.

The pinner opens no path. Digests roar already knows come from roar's hash cache over a socket
(CacheServer); results go to a memfd roar reads once the pinner has ended, one JSON line per file.

Privileges: forked as root, the pinner keeps only CAP_SYS_PTRACE (for pidfd_getfd) and acts as
the invoking user otherwise; its real and saved uid stay root, so the user can neither signal nor
trace it. It takes descriptors only from processes of that user, and keeps no other descriptor of
roar's (the BPF programs and links stay roar's alone: they go when roar goes).
"""

from __future__ import annotations

import ctypes as ct
import json
import os
import signal
import socket
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from roar.privilege import User, keep_only_capabilities

PTRACE_CONT = 7
PTRACE_GETSIGINFO = 0x4202
PTRACE_SEIZE = 0x4206
PTRACE_LISTEN = 0x4208
PTRACE_O_TRACEFORK, PTRACE_O_TRACEVFORK, PTRACE_O_TRACECLONE = 0x2, 0x4, 0x8
PTRACE_EVENT_STOP = 128
SI_KERNEL = 0x80            # si_code of a signal the kernel sent (bpf_send_signal_thread's)
WALL = 0x40000000
SYS_PIDFD_GETFD = 438
CAP_SYS_PTRACE = 19
PR_SET_PDEATHSIG, PR_SET_NAME = 1, 15
JOB_CONTROL = {signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU}
HOLD_SIGNAL = signal.SIGURG   # bpf/roar.bpf.c SIGURG: ignored by default, should a hold ever leak
HOLD_HASH_MAX = 64 << 20      # bigger files are hashed beside the job (~50 ms of blake3 here)
CACHE_MIN = 1 << 20           # smaller files are hashed sooner than roar's cache is asked
CACHE_WAIT_S = 2.0

_libc = ct.CDLL(None, use_errno=True)
_libc.ptrace.restype = ct.c_long
_libc.ptrace.argtypes = [ct.c_long, ct.c_long, ct.c_void_p, ct.c_void_p]
_libc.syscall.restype = ct.c_long


class PinReq(ct.Structure):
    """struct pin_req of bpf/roar.bpf.c."""

    _fields_ = [("tgid", ct.c_uint32), ("fd", ct.c_int32), ("dev", ct.c_uint64), ("ino", ct.c_uint64),
                ("generation", ct.c_uint32), ("_pad", ct.c_uint32)]


@dataclass
class Pin:
    """One file as the job first read it: its state when the reader was held, and its digests."""

    dev: int
    ino: int
    generation: int
    size: int | None = None
    mtime_ns: int | None = None
    ctime_ns: int | None = None
    hashes: dict[str, str] | None = None    # None: no digest of the bytes read (why says so)
    why: str | None = None

    @property
    def inode(self) -> tuple[int, int, int]:
        return self.dev, self.ino, self.generation


def _ptrace(request: int, pid: int, data: int = 0) -> int:
    return _libc.ptrace(request, pid, None, ct.c_void_p(data))


class Pinner:
    """The pinner process, seen from roar: start() before the command is released,
    finish() after it ended, then pins() has what it hashed."""

    def __init__(self, tracer, algorithms: tuple[str, ...], user: User | None, cache) -> None:
        self.tracer = tracer
        self.algorithms = algorithms
        self.user = user
        self.cache = cache
        self.pid: int | None = None
        self.off_reason: str | None = None   # why nothing was held, when nothing could be
        self._out = os.memfd_create("roar-pins", os.MFD_CLOEXEC)
        self._server: CacheServer | None = None

    def start(self, root_pid: int) -> bool:
        """Fork the pinner and have it seize root_pid (still held by the launcher)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ready_r, ready_w = os.pipe()
        roar_pid = os.getpid()
        pid = os.fork()
        if pid == 0:
            ours.close()
            os.close(ready_r)
            _child_main(root_pid, ready_w, theirs, self, roar_pid)     # never returns
        theirs.close()
        os.close(ready_w)
        self.pid = pid
        answer = os.read(ready_r, 256)
        os.close(ready_r)
        if answer != b"ok":
            ours.close()
            self.off_reason = answer.decode(errors="replace") or "the pinner ended at start"
            self._reap()
            return False
        self._server = CacheServer(ours, self.cache, self.algorithms)
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
        if self._server is not None:
            self._server.close()

    def _reap(self) -> None:
        if self.pid is not None:
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.pid = None

    def pins(self) -> dict[tuple[int, int, int], Pin]:
        """{(dev, ino, generation): Pin} of the files held for; dev as os.stat's st_dev."""
        os.lseek(self._out, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(self._out, 1 << 20):
            chunks.append(chunk)
        os.close(self._out)
        found: dict[tuple[int, int, int], Pin] = {}
        for line in b"".join(chunks).splitlines():
            pin = Pin(**json.loads(line))
            found.setdefault(pin.inode, pin)
        return found


class CacheServer:
    """Answers the pinner's hash cache lookups from roar's own HashCache, on a thread of roar's:
    the pinner itself opens no database (no path at all)."""

    def __init__(self, sock: socket.socket, cache, algorithms: tuple[str, ...]) -> None:
        self.sock, self.cache, self.algorithms = sock, cache, algorithms
        self.thread = threading.Thread(target=self._serve, name="roar-cache-server", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        from types import SimpleNamespace

        reader = self.sock.makefile("rb")
        try:
            for line in reader:
                try:
                    st = SimpleNamespace(**json.loads(line))
                    known = self.cache.lookup(st, self.algorithms) if self.cache is not None else {}
                except Exception:   # a busy or unreadable cache: the pinner hashes
                    known = {}
                self.sock.sendall(json.dumps(known).encode() + b"\n")
        except OSError:
            pass
        finally:
            reader.close()

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(timeout=5)
        self.sock.close()


def _child_main(root_pid: int, ready_w: int, sock: socket.socket, parent: Pinner, roar_pid: int) -> None:
    """The pinner process: seize, report, serve the job's holds until told to stop."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # roar passes the user's signals on itself
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGTSTP, signal.SIG_IGN)
        signal.signal(signal.SIGUSR1, _stop)
        _libc.prctl(PR_SET_NAME, b"roar-pinner", 0, 0, 0)        # what ps shows beside the command
        reqs_fd = parent.tracer.map_fd("pin_reqs")
        _keep_only_fds({parent._out, reqs_fd, sock.fileno(), ready_w})
        options = PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE
        if _ptrace(PTRACE_SEIZE, root_pid, options) != 0:
            err = ct.get_errno()
            os.write(ready_w, f"the command could not be traced with ptrace ({os.strerror(err)})".encode())
            os._exit(0)
        if parent.user is not None:
            _keep_only_ptrace(parent.user)
        # after the credential change, which clears it: roar gone, the pinner goes, and the job
        # is let go
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != roar_pid:     # roar died before the request took hold
            os._exit(0)
        os.write(ready_w, b"ok")
        os.close(ready_w)
        _Serve(parent, reqs_fd, sock).loop()
    except BaseException:   # the job must go on whatever happens here: its tracees are let go
        code = 1
    finally:
        os._exit(code)


def _keep_only_fds(keep: set[int]) -> None:
    """Close every descriptor but `keep`; 0-2 become /dev/null (nothing of roar's is held)."""
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    keep = keep | {0, 1, 2}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


class _Stop(Exception):
    pass


def _stop(_signum: int, _frame: object) -> None:
    raise _Stop()


class _Serve:
    def __init__(self, parent: Pinner, reqs_fd: int, sock: socket.socket) -> None:
        self.algorithms = parent.algorithms
        self.uid = parent.user.uid if parent.user is not None else None
        self.out = parent._out
        self.reqs_fd = reqs_fd
        self.lib = parent.tracer.lib
        self.sock = sock
        self.sock.settimeout(CACHE_WAIT_S)
        self.replies = sock.makefile("rb")
        self.lock = threading.Lock()
        self.later: ThreadPoolExecutor | None = None   # the big files, hashed beside the job

    def loop(self) -> None:
        try:
            while True:
                try:
                    pid, status = os.waitpid(-1, WALL)
                except ChildProcessError:   # no tracee left, and none can appear any more
                    return
                if os.WIFSTOPPED(status):
                    self._stopped(pid, status)
        except _Stop:
            return
        finally:
            signal.signal(signal.SIGUSR1, signal.SIG_IGN)   # the big files' hashes still land
            if self.later is not None:
                self.later.shutdown(wait=True)

    def _stopped(self, pid: int, status: int) -> None:
        sig, event = os.WSTOPSIG(status), status >> 16
        if event == PTRACE_EVENT_STOP:
            # a group stop stays one (the parent's waitpid sees it); any other: a new tracee's
            # first stop, or the end of a group stop
            _ptrace(PTRACE_LISTEN if sig in JOB_CONTROL else PTRACE_CONT, pid)
        elif event:     # fork, vfork, clone: the child is a tracee now
            _ptrace(PTRACE_CONT, pid)
        elif sig == HOLD_SIGNAL and self._pin(pid):
            # the hold: suppressed, unless the SIGURG delivered is the job's own (it sent one
            # while ours was pending), which it still gets
            _ptrace(PTRACE_CONT, pid, 0 if _si_code(pid) == SI_KERNEL else sig)
        else:
            _ptrace(PTRACE_CONT, pid, sig)

    def _pin(self, tid: int) -> bool:
        key, req = ct.c_uint32(tid), PinReq()
        if self.lib.map_lookup(self.reqs_fd, ct.byref(key), ct.byref(req)) != 0:
            return False    # a SIGURG of the job's own
        self.lib.map_delete(self.reqs_fd, ct.byref(key))
        from roar.tracer.collector import user_dev

        pin = Pin(user_dev(req.dev), req.ino, req.generation)
        fd = self._take(req, pin)
        if fd is None:
            self._write(pin)
            return True
        try:
            st = os.fstat(fd)
            pin.size, pin.mtime_ns, pin.ctime_ns = st.st_size, st.st_mtime_ns, st.st_ctime_ns
            pin.hashes = self._cached(st) if st.st_size >= CACHE_MIN else None
        except OSError as exc:
            pin.why = f"it could not be read ({exc.strerror or exc})"
            os.close(fd)
            self._write(pin)
            return True
        if pin.hashes is not None or st.st_size <= HOLD_HASH_MAX:
            if pin.hashes is None:
                self._hash(fd, st, pin)
            os.close(fd)
            self._write(pin)
        else:   # kept open: its inode stays what was read, whatever the job does to the path
            if self.later is None:
                self.later = ThreadPoolExecutor(max_workers=1, thread_name_prefix="roar-pin-hash")
            self.later.submit(self._hash_later, fd, st, pin)
        return True

    def _take(self, req: PinReq, pin: Pin) -> int | None:
        """The reader's descriptor as ours, or None (pin.why says why)."""
        try:
            if self.uid is not None and os.stat(f"/proc/{req.tgid}").st_uid != self.uid:
                pin.why = "its reader no longer runs as the user (a set-user-ID program)"
                return None
            fd = _take_fd(req.tgid, req.fd)
        except OSError as exc:
            pin.why = f"its descriptor could not be taken ({exc.strerror})"
            return None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (pin.dev, pin.ino):
            os.close(fd)    # another thread put another file at that descriptor number meanwhile
            pin.why = "its descriptor changed before it was hashed"
            return None
        return fd

    def _hash(self, fd: int, st: os.stat_result, pin: Pin) -> None:
        from roar.artifacts.hashing import FileChanged, hash_fd

        try:
            pin.hashes = hash_fd(fd, self.algorithms, before=st)
        except FileChanged as exc:
            pin.why = f"it was written to while it was hashed ({exc.why})"
        except OSError as exc:
            pin.why = f"it could not be read ({exc.strerror or exc})"

    def _hash_later(self, fd: int, st: os.stat_result, pin: Pin) -> None:
        try:
            self._hash(fd, st, pin)
        finally:
            os.close(fd)
        self._write(pin)

    def _cached(self, st: os.stat_result) -> dict[str, str] | None:
        """The digests roar's hash cache has for this exact file state, if all are known."""
        if self.sock is None:
            return None
        ask = {"st_dev": st.st_dev, "st_ino": st.st_ino, "st_size": st.st_size,
               "st_mtime_ns": st.st_mtime_ns, "st_ctime_ns": st.st_ctime_ns}
        try:
            self.sock.sendall(json.dumps(ask).encode() + b"\n")
            known = json.loads(self.replies.readline() or b"{}")
        except (OSError, ValueError):   # roar's side is gone or slow: no more lookups, hash
            self.sock = None
            return None
        return known if all(a in known for a in self.algorithms) else None

    def _write(self, pin: Pin) -> None:
        with self.lock:
            os.write(self.out, json.dumps(asdict(pin)).encode() + b"\n")


class _SigInfo(ct.Structure):
    _fields_ = [("si_signo", ct.c_int), ("si_errno", ct.c_int), ("si_code", ct.c_int),
                ("_rest", ct.c_char * 116)]


def _si_code(pid: int) -> int | None:
    info = _SigInfo()
    if _libc.ptrace(PTRACE_GETSIGINFO, pid, None, ct.byref(info)) != 0:
        return None
    return info.si_code


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


def _keep_only_ptrace(user: User) -> None:
    """Act as the user, with CAP_SYS_PTRACE as the one capability left; the real and saved uids
    stay root, so the user can neither signal nor trace this process."""
    os.setgroups(list(user.groups))
    os.setresgid(-1, user.gid, 0)
    os.setresuid(-1, user.uid, 0)
    keep_only_capabilities(1 << CAP_SYS_PTRACE)

