"""A thread that counts, every 10 ms, the roar jobs attached on the machine, so
that a round another roar job ran during is known (and run again)."""

from __future__ import annotations

import ctypes
import os
import platform
import threading

from .bpfwatch import bpf_fd_holders


class AttachMonitor(threading.Thread):
    """Counts, every 10 ms, the roar jobs attached on the machine (links to a
    program named on_sys_exit), with the bpf(2) syscall through ctypes (a few
    microseconds a sample, unlike bpftool). window() tells whether more were
    attached during a measurement than the measurement itself attached."""

    NR_BPF = {"x86_64": 321, "aarch64": 280}.get(platform.machine())
    PROG_GET_FD_BY_ID, OBJ_GET_INFO_BY_FD, LINK_GET_FD_BY_ID, LINK_GET_NEXT_ID = 13, 15, 30, 31

    class _IdAttr(ctypes.Structure):
        _fields_ = [("id", ctypes.c_uint32), ("next_id", ctypes.c_uint32), ("open_flags", ctypes.c_uint32)]

    class _InfoAttr(ctypes.Structure):
        _fields_ = [("bpf_fd", ctypes.c_uint32), ("info_len", ctypes.c_uint32), ("info", ctypes.c_uint64)]

    def __init__(self) -> None:
        super().__init__(daemon=True, name="roar-attach-monitor")
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._libc.syscall.restype = ctypes.c_long
        self._names: dict[int, str] = {}
        self._lock = threading.Lock()
        self._max = self._expected = 0
        self._who: list[str] = []
        self.ignore = ""   # a command line holding this is ours
        self._stop = threading.Event()
        self.samples = 0
        self.ok = self.NR_BPF is not None and self._count() is not None

    def _bpf(self, cmd: int, attr: ctypes.Structure) -> int:
        return self._libc.syscall(ctypes.c_long(self.NR_BPF), ctypes.c_long(cmd), ctypes.byref(attr),
                                  ctypes.c_long(ctypes.sizeof(attr)))

    def _info(self, get_fd_cmd: int, obj_id: int, size: int) -> bytes | None:
        fd = self._bpf(get_fd_cmd, self._IdAttr(obj_id, 0, 0))
        if fd < 0:
            return None
        try:
            buf = (ctypes.c_ubyte * size)()
            attr = self._InfoAttr(fd, size, ctypes.addressof(buf))
            return bytes(buf) if self._bpf(self.OBJ_GET_INFO_BY_FD, attr) == 0 else None
        finally:
            os.close(fd)

    def _linked(self) -> list[int] | None:
        """Ids of the programs named on_sys_exit that have a link: one per
        roar job attached. None when the bpf syscall is refused."""
        ids, cur, seen = [], 0, 0
        while True:
            attr = self._IdAttr(cur, 0, 0)
            if self._bpf(self.LINK_GET_NEXT_ID, attr) < 0:
                if ctypes.get_errno() != 2 and seen == 0:   # ENOENT ends the walk
                    return None
                return ids
            cur = attr.next_id
            seen += 1
            info = self._info(self.LINK_GET_FD_BY_ID, cur, 16)   # type, id, prog_id
            if info is None:
                continue
            prog_id = int.from_bytes(info[8:12], "little")
            name = self._names.get(prog_id)
            if name is None:
                pinfo = self._info(self.PROG_GET_FD_BY_ID, prog_id, 80)   # name at offset 64
                name = pinfo[64:80].split(b"\0")[0].decode(errors="replace") if pinfo else ""
                self._names[prog_id] = name
            if name == "on_sys_exit":
                ids.append(prog_id)

    def _count(self) -> int | None:
        ids = self._linked()
        return None if ids is None else len(ids)

    def _sample(self) -> None:
        ids = self._linked() or []
        with self._lock:
            self._max = max(self._max, len(ids))
            snap = len(ids) > self._expected and not self._who
        if snap:   # who else is tracing (once per window: a /proc walk)
            who = []
            for pids in bpf_fd_holders(set(ids)).values():
                for entry in pids:
                    pid = entry.split()[0]
                    try:
                        with open(f"/proc/{pid}/cmdline", "rb") as f:
                            cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                    except OSError:
                        cmd = entry
                    if not (self.ignore and self.ignore in cmd):   # our own job
                        who.append(f"{pid}: {cmd[:160]}")
            with self._lock:
                self._who = sorted(set(who)) or ["(a program nobody holds any more)"]

    def run(self) -> None:
        while not self._stop.wait(0.01):
            self._sample()
            self.samples += 1

    def start_window(self, expected: int = 0) -> None:
        with self._lock:
            self._max, self._expected, self._who = 0, expected, []
        self._sample()

    def end_window(self) -> tuple[int, list[str]]:
        self._sample()
        with self._lock:
            return self._max, self._who

    def stop(self) -> None:
        self._stop.set()


class NoMonitor:
    """Stands in for AttachMonitor when it is off: nothing is ever disturbed."""

    ok = False
    samples = 0
    ignore = ""

    def start_window(self, expected: int = 0) -> None:
        pass

    def end_window(self) -> tuple[int, list[str]]:
        return 0, []

    def stop(self) -> None:
        pass

