"""A spare BPF object, loaded before the job that needs it.

Loading roar's object (libbpf reading the kernel's BTF, then the verifier) is ~60 ms of
every job's start. So at the end of each job roar starts a spare: a process of its own
that loads a fresh object with the default settings and waits for the next `roar run`,
which receives the object's descriptors over a Unix socket (SCM_RIGHTS) instead of
loading one. The spare then exits: an object serves one job, so nothing of one job's maps
is seen by the next. Loaded and not attached, it costs no process on the machine any
time; it holds its maps' kernel memory (~25 MiB, most of it the 16 MiB ring buffer) until
a job takes it or IDLE_S pass. ROAR_NO_SPARE=1 in roar's environment turns spares off for
that run; a file at MACHINE_OFF (any content) turns them off for every run on the machine.

Trust (docs/security.md): the socket and the lock are in /run/roar, a directory that root
owns and only root may enter, used only if it is exactly that (lstat: no link). The spare
answers only a peer whose uid is 0 (SO_PEERCRED), and roar takes descriptors only from a
spare whose uid is 0 and only for the very object it would load itself (its blake3 id).
The spare is started fresh (`python -I -m roar.tracer.spare`: an empty environment, cwd /,
a session of its own, the root cgroup of each hierarchy, descriptors 0-2 on /dev/null),
holds the lock while it lives so that there is one at a time, and keeps no capability once
the object is loaded. The descriptors arrive close-on-exec (the job's command never holds
them), and a spare that does not answer within 0.1 s is killed.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import stat
import struct
import sys

RUN_DIR = "/run/roar"
SOCKET_NAME = "spare.sock"
LOCK_NAME = "spare.lock"
IDLE_S = 600.0
MAX_FDS = 64
OFF = "ROAR_NO_SPARE"
MACHINE_OFF = "/etc/roar/no-spare"   # an administrator's switch: sudoers may not pass OFF through
_CRED = struct.Struct("3i")   # struct ucred: pid, uid, gid


def enabled() -> bool:
    if os.environ.get(OFF, "") not in ("", "0"):
        return False
    # Only /etc's owner can make the file, and all it can do is turn spares off.
    return not os.path.lexists(MACHINE_OFF)


def run_dir(create: bool = False) -> str | None:
    """/run/roar if it is a directory of root's that nobody else may enter (made so if asked
    and missing), else None: then there are no spares."""
    if create:
        try:
            os.mkdir(RUN_DIR, 0o700)
        except FileExistsError:
            pass
        except OSError:
            return None
    try:
        st = os.lstat(RUN_DIR)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o077:
        return None
    return RUN_DIR


def _peer(sock: socket.socket) -> tuple[int, int]:
    """The (pid, uid) of the process at the other end."""
    pid, uid, _gid = _CRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size))
    return pid, uid


# -- the job's side ---------------------------------------------------------------------------

def take(object_id: str | None, timeout_s: float = 0.1):
    """The spare's object (a loader.Loaded, now the caller's) when a spare of root's waits
    with the object whose id is object_id; None otherwise (no spare, another object, any
    failure), and then the caller loads its own."""
    from roar.tracer.loader import Loaded

    directory = run_dir()
    if not enabled() or directory is None or object_id is None:
        return None
    fds: list[int] = []
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(timeout_s)
            sock.connect(os.path.join(directory, SOCKET_NAME))
            peer, uid = _peer(sock)
            if uid != 0:
                return None
            try:
                msg, fds = _recv_fds(sock)
            except TimeoutError:
                _kill_stuck(peer)
                raise
        meta = json.loads(msg)
        programs, maps = meta["programs"], meta["maps"]
        if meta.get("object_id") != object_id or len(fds) != len(programs) + len(maps):
            raise ValueError("not the object this roar loads")
        progs = [(name, section, fd) for (name, section), fd in zip(programs, fds[:len(programs)],
                                                                     strict=True)]
        loaded = Loaded(progs, dict(zip(maps, fds[len(programs):], strict=True)),
                        ring_bytes=int(meta["ring_bytes"]), source="spare")
        fds = []
        return loaded
    except (OSError, ValueError, KeyError, TypeError):
        return None
    finally:
        for fd in fds:
            os.close(fd)


def _recv_fds(sock: socket.socket) -> tuple[bytes, list[int]]:
    """One message and the descriptors it carries, each close-on-exec from the start (else the
    job's command, started meanwhile by another thread or later, would inherit the maps).
    socket.recv_fds cannot do it: it drops its flags argument (CPython gh-107898)."""
    size = socket.CMSG_LEN(MAX_FDS * 4)
    msg, ancdata, flags, _addr = sock.recvmsg(1 << 16, size, socket.MSG_CMSG_CLOEXEC)
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds += struct.unpack(f"{len(data) // 4}i", data[:len(data) - len(data) % 4])
    if flags & (socket.MSG_CTRUNC | socket.MSG_TRUNC):
        for fd in fds:
            os.close(fd)
        raise ValueError("the spare's message was cut short")
    return msg, fds


def _kill_stuck(pid: int) -> None:
    """A spare that does not answer (stopped, frozen) would hold the lock and slow every job by
    the timeout: it goes, and the next job starts a new one. Its uid was checked to be 0."""
    try:
        os.kill(pid, 9)
    except OSError:
        pass


def start() -> None:
    """Start a spare for the next job, unless spares are off or one is already there or
    loading. Returns at once: the spare is a grandchild, in its own session. roar may act
    as the user here (privilege.as_user, saved uid 0): the forked child, one thread, takes
    root back for itself alone before it looks at /run/roar."""
    if not enabled() or _traced():
        return
    try:
        pid = os.fork()
    except OSError:
        return
    if pid == 0:
        _spawn()           # never returns
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _traced() -> bool:
    """Whether a debugger traces roar (`strace -f roar run ...`): it would follow the spare
    too, and wait for it, up to IDLE_S, before it ends."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1]) != 0
    except (OSError, ValueError):
        pass
    return False


def _lock_held(directory: str) -> bool:
    try:
        fd = os.open(os.path.join(directory, LOCK_NAME), os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return False
    except OSError:
        return True        # not a file roar can use: no spare
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)       # releases the test lock too
    return False


def _spawn() -> None:
    """In the forked child: root again, a new session, and in it the spare, exec'd afresh."""
    try:
        os.setresuid(0, 0, 0)
        os.setresgid(0, 0, 0)
        os.setgroups([0])
        directory = run_dir(create=True)
        if directory is None or _lock_held(directory):
            return
        os.setsid()
        if os.fork() == 0:
            _leave_cgroups()       # here, not above: a cgroup move waits ~20 ms, and roar waits above
            os.chdir("/")
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.closerange(3, _fd_limit())
            os.execve(sys.executable, [sys.executable, "-I", "-m", "roar.tracer.spare"],
                      {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    except BaseException:
        pass
    finally:
        os._exit(0)


def _leave_cgroups() -> None:
    """Into the root cgroup of every hierarchy: out of the invoking user's, which the user
    may own (systemd delegates it) and freeze, or limit, with the spare in it."""
    try:
        with open("/proc/self/mounts") as f:
            mounts = [line.split()[1] for line in f if line.split()[2:3] in (["cgroup"], ["cgroup2"])]
    except OSError:
        return
    for mount in mounts:
        try:
            with open(os.path.join(mount, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        except OSError:
            pass


def _fd_limit() -> int:
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (OSError, ValueError):
        return 1 << 20


# -- the spare's side -------------------------------------------------------------------------

def serve(idle_s: float = IDLE_S) -> int:
    """Load an object and hand it to the first root peer that asks; exit after idle_s with
    none. The exit status says what happened (0: served or nothing to do)."""
    from roar.privilege import keep_only_capabilities
    from roar.tracer.loader import load_object, object_id, preflight

    directory = run_dir(create=True)
    if directory is None:
        return 0
    lock = os.open(os.path.join(directory, LOCK_NAME),
                   os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0                                  # another spare is there
    try:
        os.nice(10)                               # after the jobs on the machine, not before
    except OSError:
        pass
    preflight()
    oid = object_id()
    loaded = load_object()
    keep_only_capabilities(0)   # the object is loaded: nothing else needs power (the dir is root's)
    path = os.path.join(directory, SOCKET_NAME)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        os.unlink(path)                           # a socket a spare that died left behind
    except FileNotFoundError:
        pass
    sock.bind(path)
    os.chmod(path, 0o600)
    sock.listen(8)
    meta = json.dumps({"object_id": oid, "ring_bytes": loaded.ring_bytes,
                       "programs": [[name, section] for name, section, _ in loaded.programs],
                       "maps": list(loaded.maps)}).encode()
    fds = [fd for *_, fd in loaded.programs] + list(loaded.maps.values())
    sock.settimeout(idle_s)
    try:
        while True:
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                return 0
            with conn:
                if _peer(conn)[1] != 0:
                    continue
                try:
                    socket.send_fds(conn, [meta], fds)
                except OSError:
                    continue
                return 0
    finally:
        os.unlink(path)                           # before the lock goes: the next spare binds anew
        sock.close()


if __name__ == "__main__":
    idle = float(sys.argv[1]) if len(sys.argv) > 1 else IDLE_S
    try:
        sys.exit(serve(idle))
    except Exception:   # a spare that cannot load is no job's failure: the job loads its own
        sys.exit(1)
