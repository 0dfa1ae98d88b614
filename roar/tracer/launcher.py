"""Start the traced command so that the tracer sees it from its first syscall.

The child is forked blocked on a pipe; the parent puts its pid in the tracked
set and only then sends the go-ahead byte. The child execs on that byte alone:
anything else (EOF because roar died, a short read) makes it exit, so the
command never runs untraced. Under sudo the child becomes the invoking user
(uid, gid, groups, HOME, USER, LOGNAME) before it waits; it then asks for
SIGKILL at its parent's death (a uid change would clear that request, and it
stays across exec), so if roar dies the command dies with it.

The child gets its own process group, made the terminal's foreground group,
so Ctrl-C reaches the traced tree and not roar; signals sent to roar itself
are forwarded to every live process of the tree. When the command stops for
job control (Ctrl-Z, or reading the terminal from the background) roar gives
the terminal back and stops itself with the same signal, so the shell sees
the job stopped; when the shell resumes roar it resumes the command.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import stat
import threading
from typing import Callable

from roar.errors import CommandNotExecutable, CommandNotFound, UsageError
from roar.privilege import User

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
# stops a shell's job control makes; a SIGSTOP (roar pausing a process itself, `kill -STOP`) is not one
JOB_CONTROL_STOPS = (signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)
GO = b"\x06"            # the one byte that lets the child exec
PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


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
    """A forked, still-blocked child; release() lets it exec.

    Make it from the thread that waits for the job: the parent-death signal
    follows the thread that forked, not the process."""

    def __init__(self, program: str, argv: list[str], env: dict[str, str], user: User | None) -> None:
        parent = os.getpid()
        self._go_r, self._go_w = os.pipe()
        self._err_r, self._err_w = os.pipe2(os.O_CLOEXEC)
        self.pid = os.fork()
        if self.pid == 0:
            self._child(program, argv, env, user, parent)   # never returns
        os.close(self._go_r)
        os.close(self._err_w)
        try:
            os.setpgid(self.pid, self.pid)
        except OSError:
            pass
        self.pidfd = os.pidfd_open(self.pid)   # readable once the child exits
        self._tty = _foreground_tty()
        self._child_has_tty = False     # the command's group is the terminal's foreground
        self.interrupted = False
        self._old_handlers: dict[int, object] = {}

    def _child(self, program: str, argv: list[str], env: dict[str, str], user: User | None,
               parent: int) -> None:
        try:
            os.close(self._go_w)
            os.close(self._err_r)
            os.setpgid(0, 0)
            # roar's own dispositions must not reach the command (Python ignores SIGPIPE, SIGXFSZ)
            for sig in (*FORWARDED, signal.SIGTSTP, signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(sig, signal.SIG_DFL)
            if user:
                os.setgroups(list(user.groups))
                os.setgid(user.gid)
                os.setuid(user.uid)
            # after the uid change, which clears it; it stays across exec
            if _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl")
            if os.getppid() != parent:
                os._exit(127)               # roar died before the request took hold
            if os.read(self._go_r, 1) != GO:
                os._exit(127)               # EOF: roar died before it tracked us
            os.close(self._go_r)
            os.execve(program, argv, env)
        except OSError as exc:
            os.write(self._err_w, str(exc.errno or errno.ENOEXEC).encode())
        finally:
            os._exit(127)

    def release(self) -> None:
        """Let the child exec; raise if the exec itself failed."""
        if self._tty is not None:
            _set_foreground(self._tty, self.pid)
            self._child_has_tty = True
        try:
            os.write(self._go_w, GO)
        except BrokenPipeError:
            pass        # a forwarded signal killed it first: the wait reports how it ended
        os.close(self._go_w)
        data = os.read(self._err_r, 16)   # EOF at a successful exec (CLOEXEC) or a death
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

        def suspend(signum: int, _frame: object) -> None:
            # `kill -TSTP roar`: stop the command's group; its stop then suspends roar (poll_exit)
            _signal_group(self.pid, signum)

        for sig in FORWARDED:
            self._old_handlers[sig] = signal.signal(sig, handler)
        self._old_handlers[signal.SIGTSTP] = signal.signal(signal.SIGTSTP, suspend)

    def poll_exit(self) -> int | None:
        """The child's wait status once it has exited, else None. A job-control
        stop of the child suspends roar here until the shell resumes it."""
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG | os.WUNTRACED)
        except ChildProcessError:
            # reaped by someone else (SIGCHLD ignored where roar was started): 0 would be made up
            from roar.errors import RoarError

            raise RoarError("the command's exit status was taken by another process (is SIGCHLD "
                            "ignored where roar was started?): no record is written rather than one "
                            "with a made-up exit status; run roar with SIGCHLD at its default") from None
        if pid and os.WIFSTOPPED(status):
            if os.WSTOPSIG(status) in JOB_CONTROL_STOPS:
                self._suspend(os.WSTOPSIG(status))
            return None
        return status if pid else None

    def _suspend(self, sig: int) -> None:
        """Stop roar as the command stopped, so the shell sees its job stop and
        gets the terminal back; once resumed, resume the command."""
        ours = os.getpgrp()
        if self._tty is None:               # started in the background: the shell may fg us later
            self._tty = _open_tty()
        tty = self._tty
        if sig != signal.SIGTSTP and tty is not None and _foreground_of(tty) == ours:
            pass    # the command wants the terminal and roar holds it (brought to the foreground)
        else:
            if self._child_has_tty:
                _set_foreground(tty, ours)      # the shell takes it back from roar's group
                self._child_has_tty = False
            old = signal.signal(sig, signal.SIG_DFL)
            try:
                signal.pthread_kill(threading.get_ident(), sig)   # stopped here until SIGCONT
            finally:
                signal.signal(sig, old)
        if tty is not None and _foreground_of(tty) == ours:    # resumed with fg, not bg
            _set_foreground(tty, self.pid)
            self._child_has_tty = True
        _signal_group(self.pid, signal.SIGCONT)

    def close(self) -> None:
        os.close(self.pidfd)

    def restore_terminal(self) -> None:
        if self._tty is not None:
            if self._child_has_tty:     # not after a bg: the shell has it then
                _set_foreground(self._tty, os.getpgrp())
                self._child_has_tty = False
            os.close(self._tty)
            self._tty = None
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)  # type: ignore[arg-type]
        self._old_handlers = {}


def _signal_group(pid: int, sig: int) -> None:
    """Signal the process group pid leads, or pid alone if it left it."""
    try:
        os.killpg(pid, sig)
    except OSError:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def _open_tty() -> int | None:
    try:
        return os.open("/dev/tty", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None


def _foreground_of(fd: int | None) -> int | None:
    if fd is None:
        return None
    try:
        return os.tcgetpgrp(fd)
    except OSError:
        return None


def _foreground_tty() -> int | None:
    """An fd on our controlling terminal if roar is its foreground job."""
    fd = _open_tty()
    if fd is not None and _foreground_of(fd) == os.getpgrp():
        return fd
    if fd is not None:
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
