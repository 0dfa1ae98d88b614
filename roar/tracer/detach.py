"""Detach the getenv uprobes in a process of their own, after roar is gone if need be.

A uprobe's detach waits for a kernel grace period (110-130 ms each here), and the kernel does
not overlap them. Nothing of the job needs that wait: the job has ended and the probe filters
on the tracked set, which is empty once the job is over. So roar hands its last descriptors of
those links to a short-lived process of its own, closes its copies (which frees nothing yet)
and goes on; the kernel detaches the probes when that process closes the last descriptor.

The process is a grandchild of roar (no zombie for roar to reap), in a session of its own (a
Ctrl-Z or Ctrl-C at the terminal cannot stop it with the links held), and it keeps no other
descriptor of roar's: a pipe roar's stdout is on sees its end when roar exits. Its real and
saved uids are roar's (root), so the invoking user can neither signal nor trace it; it has
no capability left and its cwd is /. It still shares roar's memory, copy on write, until it
exits a grace period or two later.
"""

from __future__ import annotations

import os
from typing import Callable

from roar.privilege import keep_only_capabilities


def close_in_background(fds: list[int], close_own: Callable[[], None]) -> bool:
    """Give the last descriptors of fds to a background process that closes them. close_own
    closes the caller's copies; the process waits for that, so that its close is the last
    one. False when no process could be made: nothing was closed, and the caller closes fds."""
    try:
        read_end, write_end = os.pipe()
    except OSError:
        return False
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return False
    if pid == 0:
        _child(fds, read_end)    # never returns
    os.close(read_end)
    try:
        made = _exit_code(pid) == 0
        if made:
            close_own()
    finally:
        os.close(write_end)      # the process's signal to close: roar holds no copy any more
    return made


def _exit_code(pid: int) -> int:
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:      # reaped by someone else: whether it made the process is unknown
        return 1
    return os.waitstatus_to_exitcode(status)


def _child(fds: list[int], go: int) -> None:
    """The intermediate child: a new session, the grandchild, and out at once, since roar
    waits for it. The grandchild sheds the rest before it waits for roar's signal."""
    try:
        os.setsid()
        if os.fork() == 0:
            _grandchild(sorted(set(fds) | {go}), go)
        os._exit(0)
    except BaseException:
        os._exit(1)


def _grandchild(keep: list[int], go: int) -> None:
    try:
        os.chdir("/")                 # not the user's directory
        keep_only_capabilities(0)     # root's uids, none of its power: it only closes
        _close_all_but(keep)
        while os.read(go, 1):         # until roar closed its end (EOF), with its copies before it
            pass
        for fd in keep:
            os.close(fd)              # the last descriptors: this is where the kernel waits
    finally:
        os._exit(0)


def _close_all_but(keep: list[int]) -> None:
    low = 0
    for fd in keep:
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, _fd_limit())


def _fd_limit() -> int:
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (OSError, ValueError):
        return 1 << 20
