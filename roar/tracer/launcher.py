"""Start the traced command so that the tracer sees it from its first syscall.

The child is forked blocked on a pipe; the parent puts its pid in the tracked
set and only then lets it go. Under sudo the child becomes the invoking user
(uid, gid, groups, HOME, USER, LOGNAME) before it execs. The child gets its
own process group, made the terminal's foreground group, so Ctrl-C reaches
the traced tree and not roar; signals sent to roar itself are forwarded to
every live process of the tree.
"""

from __future__ import annotations

import errno
import os
import signal
import stat
from typing import Callable

from roar.errors import CommandNotExecutable, CommandNotFound, UsageError
from roar.privilege import User

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def child_environment(user: User | None) -> dict[str, str]:
    env = dict(os.environ)
    if user:
        env.update(HOME=user.home, USER=user.name, LOGNAME=user.name)
    return env


def resolve_program(name: str, env: dict[str, str]) -> str:
    """The file exec will run, found as the shell would: CommandNotFound or
    CommandNotExecutable otherwise."""
    if not name:
        raise UsageError("empty command name: give the command to run after `roar run`")
    if "/" in name:
        candidates = [name]
    else:
        candidates = [os.path.join(d or ".", name) for d in env.get("PATH", os.defpath).split(":")]
    found_not_exec = None
    for path in candidates:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return path
        found_not_exec = path
    if found_not_exec:
        raise CommandNotExecutable(
            f"{found_not_exec} is not an executable file: check its permissions (chmod +x) or the command"
        )
    raise CommandNotFound(f"command not found: {name}; check the spelling or your PATH")


class Launch:
    """A forked, still-blocked child; release() lets it exec."""

    def __init__(self, program: str, argv: list[str], env: dict[str, str], user: User | None) -> None:
        self._go_r, self._go_w = os.pipe()
        self._err_r, self._err_w = os.pipe2(os.O_CLOEXEC)
        self.pid = os.fork()
        if self.pid == 0:
            self._child(program, argv, env, user)   # never returns
        os.close(self._go_r)
        os.close(self._err_w)
        try:
            os.setpgid(self.pid, self.pid)
        except OSError:
            pass
        self.pidfd = os.pidfd_open(self.pid)   # readable once the child exits
        self._tty = _foreground_tty()
        self.interrupted = False
        self._old_handlers: dict[int, object] = {}

    def _child(self, program: str, argv: list[str], env: dict[str, str], user: User | None) -> None:
        try:
            os.close(self._go_w)
            os.close(self._err_r)
            os.setpgid(0, 0)
            for sig in FORWARDED:
                signal.signal(sig, signal.SIG_DFL)
            os.read(self._go_r, 1)      # tracked from here on
            os.close(self._go_r)
            if user:
                os.setgroups(list(user.groups))
                os.setgid(user.gid)
                os.setuid(user.uid)
            os.execve(program, argv, env)
        except OSError as exc:
            os.write(self._err_w, str(exc.errno or errno.ENOEXEC).encode())
        finally:
            os._exit(127)

    def release(self) -> None:
        """Let the child exec; raise if the exec itself failed."""
        if self._tty is not None:
            _set_foreground(self._tty, self.pid)
        os.write(self._go_w, b"x")
        os.close(self._go_w)
        data = os.read(self._err_r, 16)   # EOF at a successful exec (CLOEXEC)
        os.close(self._err_r)
        if data:
            code = int(data)
            os.waitpid(self.pid, 0)
            self.restore_terminal()
            msg = f"cannot run the command: {os.strerror(code)}"
            if code in (errno.ENOENT, errno.ENOTDIR):
                raise CommandNotFound(msg)
            raise CommandNotExecutable(msg + "; check the file's permissions and format")

    def forward_signals(self, live_pids: Callable[[], list[int]]) -> None:
        def handler(signum: int, _frame: object) -> None:
            self.interrupted = True
            for pid in {self.pid, *live_pids()}:
                try:
                    os.kill(pid, signum)
                except OSError:
                    pass

        for sig in FORWARDED:
            self._old_handlers[sig] = signal.signal(sig, handler)

    def poll_exit(self) -> int | None:
        """The child's wait status once it has exited, else None."""
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return 0
        return status if pid else None

    def close(self) -> None:
        os.close(self.pidfd)

    def restore_terminal(self) -> None:
        if self._tty is not None:
            _set_foreground(self._tty, os.getpgrp())
            os.close(self._tty)
            self._tty = None
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)  # type: ignore[arg-type]
        self._old_handlers = {}


def _foreground_tty() -> int | None:
    """An fd on our controlling terminal if roar is its foreground job."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if os.tcgetpgrp(fd) == os.getpgrp():
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def _set_foreground(fd: int, pgid: int) -> None:
    old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)   # a background tcsetpgrp would stop us
    try:
        os.tcsetpgrp(fd, pgid)
    except OSError:
        pass
    finally:
        signal.signal(signal.SIGTTOU, old)
