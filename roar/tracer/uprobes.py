"""The getenv uprobes' perf events, opened ahead of the BPF object.

The first uprobe perf event on a file takes the kernel ~18 ms to open here (it registers
the probe with every process that maps libc), and none of that needs the BPF program.
`roar run` opens them, disabled, while the preload thread is still loading the object
(roar.runner), and the tracer attaches its programs to them (loader.Tracer). A probe
opened and never attached runs no program and reports nothing; each is closed with the
link that takes it, or by close_unused().
"""

from __future__ import annotations

import ctypes as ct
import os

PMU_DIR = "/sys/bus/event_source/devices/uprobe"
SYS_PERF_EVENT_OPEN = 298   # x86_64
PERF_FLAG_FD_CLOEXEC = 1 << 3
ATTR_DISABLED = 1 << 0


class _PerfEventAttr(ct.Structure):
    """struct perf_event_attr up to PERF_ATTR_SIZE_VER5, the fields a uprobe uses."""

    _fields_ = [("type", ct.c_uint32), ("size", ct.c_uint32), ("config", ct.c_uint64),
                ("sample_period", ct.c_uint64), ("sample_type", ct.c_uint64),
                ("read_format", ct.c_uint64), ("flags", ct.c_uint64),
                ("wakeup_events", ct.c_uint32), ("bp_type", ct.c_uint32),
                ("config1", ct.c_uint64),    # uprobe_path: a pointer to the file's path
                ("config2", ct.c_uint64),    # probe_offset: the function's offset in the file
                ("branch_sample_type", ct.c_uint64), ("sample_regs_user", ct.c_uint64),
                ("sample_stack_user", ct.c_uint32), ("clockid", ct.c_int32),
                ("sample_regs_intr", ct.c_uint64), ("aux_watermark", ct.c_uint32),
                ("sample_max_stack", ct.c_uint16), ("reserved_2", ct.c_uint16)]


# (libc path, return probe?) -> perf event fd; filled by the preload thread, which the
# tracer joins (preload.take) before it takes from here
_opened: dict[tuple[str, bool], int] = {}


def _pmu_value(name: str) -> int:
    """The uprobe PMU's type number, or the bit of `config` that makes a return probe."""
    with open(f"{PMU_DIR}/{name}") as f:
        text = f.read().strip()
    return int(text.split(":", 1)[1]) if ":" in text else int(text)   # "config:0" or "8"


def open_probe(path: str, offset: int, retprobe: bool) -> int:
    """A disabled uprobe (or uretprobe) perf event at offset in path, on every process: its fd
    (close-on-exec). OSError when the kernel refuses."""
    attr = _PerfEventAttr(type=_pmu_value("type"), size=ct.sizeof(_PerfEventAttr), flags=ATTR_DISABLED)
    if retprobe:
        attr.config = 1 << _pmu_value("format/retprobe")
    name = ct.create_string_buffer(path.encode())
    attr.config1 = ct.addressof(name)
    attr.config2 = offset
    libc = ct.CDLL(None, use_errno=True)
    libc.syscall.restype = ct.c_long
    fd = libc.syscall(ct.c_long(SYS_PERF_EVENT_OPEN), ct.byref(attr), ct.c_int(-1), ct.c_int(0),
                      ct.c_int(-1), ct.c_ulong(PERF_FLAG_FD_CLOEXEC))
    if fd < 0:
        err = ct.get_errno()
        raise OSError(err, f"perf_event_open of a uprobe on {path}: {os.strerror(err)}")
    return fd


def open_ahead() -> None:
    """Open both getenv probes on each libc found, for take(). As root; a probe that cannot be
    opened is left for the tracer, which reports why."""
    from roar.tracer.envread import getenv_targets

    for path, offset in getenv_targets():   # only x86_64 libcs: none elsewhere
        if offset is None:
            continue
        for retprobe in (False, True):
            try:
                fd = open_probe(path, offset, retprobe)
            except OSError:
                continue
            old = _opened.pop((path, retprobe), None)
            _opened[(path, retprobe)] = fd
            if old is not None:
                os.close(old)


def take(path: str, retprobe: bool) -> int | None:
    """The probe open_ahead() opened for path, now the caller's to close; None if none was."""
    return _opened.pop((path, retprobe), None)


def close_unused() -> None:
    while _opened:
        os.close(_opened.popitem()[1])
