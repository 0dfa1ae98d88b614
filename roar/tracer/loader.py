"""Load, attach and drain roar's BPF object; detach everything on close.

The object is attached only for the life of one job: while any syscall
tracepoint is attached every process on the machine takes the slow syscall
path, so roar attaches late and detaches as soon as the job is over.
"""

from __future__ import annotations

import ctypes as ct
import errno
import fcntl
import os
import select
import threading
from pathlib import Path
from typing import Callable

from roar.errors import KernelUnsupported, NoPrivilege, TracerError
from roar.tracer import libbpf
from roar.tracer.events import STAT_COUNT

BTF_PATH = Path("/sys/kernel/btf/vmlinux")
CAP_PERFMON, CAP_BPF, CAP_SYS_ADMIN = 38, 39, 21
INIT_PID_NS = 0xEFFFFFFC   # the host's PID namespace (PROC_PID_INIT_INO)
DEFAULT_RING_BYTES = 16 << 20
# libbpf maps the ring's data twice, so it costs twice its size in resident memory; the
# kernel's own limit is below 4G (max_entries is 32 bits)
MAX_RING_BYTES = 256 << 20
BPF_PERF_EVENT = 41              # enum bpf_attach_type: a program on a perf event (a uprobe)
PERF_EVENT_IOC_ENABLE = 0x2400   # _IO('$', 0)


def object_path() -> Path:
    """The BPF object built at install time and shipped inside the package: of its two, the
    one for this kernel (roar/tracer/objects.py)."""
    from roar.tracer.objects import pick

    return pick()


def object_id() -> str | None:
    """The BPF object's build id: the first 16 hex digits of its blake3 (clang puts no
    GNU build-id note in a BPF object). None when it is missing."""
    import blake3

    try:
        return blake3.blake3(object_path().read_bytes()).hexdigest()[:16]
    except OSError:
        return None


def _effective_caps() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def preflight() -> None:
    """Fail early, with what to do, on what would make loading fail."""
    caps = _effective_caps()
    has_bpf = caps & (1 << CAP_SYS_ADMIN) or (caps & (1 << CAP_BPF) and caps & (1 << CAP_PERFMON))
    if not has_bpf:
        raise NoPrivilege(
            "tracing needs root or CAP_BPF+CAP_PERFMON: run it as `sudo roar run ...`"
        )
    if not BTF_PATH.exists():
        raise KernelUnsupported(
            f"this kernel has no BTF ({BTF_PATH} is missing): roar needs a kernel built with "
            "CONFIG_DEBUG_INFO_BTF=y (most distribution kernels since 5.8)"
        )
    if os.readlink("/proc/self/ns/pid") != f"pid:[{INIT_PID_NS}]":
        raise KernelUnsupported(
            "roar runs in a PID namespace of its own, but the kernel reports host PIDs: run it on "
            "the host, or in a container started with --pid=host"
        )
    if not object_path().exists():
        raise TracerError(
            f"the BPF object {object_path()} is missing: reinstall roar with scripts/setup"
        )
    libbpf.lib()


class Loaded:
    """A loaded BPF object as descriptors: its programs (name, section, fd) and its maps
    (name -> fd). Either libbpf loaded it in this process (`obj`, which owns the
    descriptors until close()) or roar's spare did (roar.tracer.spare), and this process
    received the descriptors and owns them."""

    def __init__(self, programs: list[tuple[str, str, int]], maps: dict[str, int],
                 obj: int | None = None, ring_bytes: int = DEFAULT_RING_BYTES,
                 source: str = "loaded") -> None:
        self.programs = programs
        self.maps = maps
        self.obj = obj
        self.ring_bytes = ring_bytes
        self.source = source        # "loaded" here, or "spare"

    @classmethod
    def from_libbpf(cls, obj: int, ring_bytes: int) -> "Loaded":
        lb = libbpf.lib()
        programs, maps = [], {}
        prog = None
        while prog := lb.next_program(obj, prog):
            programs.append((lb.program_name(prog).decode(), lb.section_name(prog).decode(),
                             lb.program_fd(prog)))
        m = None
        while m := lb.next_map(obj, m):
            maps[lb.map_name(m).decode()] = lb.map_fd(m)
        return cls(programs, maps, obj, ring_bytes)

    def map_fd(self, name: str) -> int:
        fd = self.maps.get(name)
        if fd is None:
            raise TracerError(f"the BPF object has no map {name}: reinstall roar")
        return fd

    def close(self) -> None:
        obj, self.obj = self.obj, None
        if obj:
            libbpf.lib().close(obj)
        elif self.programs or self.maps:
            for fd in [fd for *_, fd in self.programs] + list(self.maps.values()):
                os.close(fd)
        self.programs, self.maps = [], {}


def load_object(ring_bytes: int = DEFAULT_RING_BYTES, verbose: bool = False) -> Loaded:
    """Open roar's BPF object, size it, and load it into the kernel (verifier
    included); not yet attached."""
    lb = libbpf.lib()
    libbpf.route_log(_print_libbpf if verbose else None)
    obj = lb.open_file(str(object_path()).encode(), None)
    if not obj:
        raise libbpf.fail(f"open {object_path()}")
    try:
        rc = lb.map_set_max_entries(_find_map(obj, "events"), ring_bytes)
        if rc:
            raise libbpf.fail("size the ring buffer", rc)
        size = ct.c_size_t()
        addr = lb.map_initial_value(_find_map(obj, ".rodata"), ct.byref(size))
        if not addr or size.value < 8:
            raise TracerError("the BPF object has no wakeup_bytes knob: reinstall roar")
        # wake the reader at a quarter full at most, so a small buffer still drains in time
        ct.c_uint64.from_address(addr).value = min(256 * 1024, ring_bytes // 4)
        rc = lb.load(obj)
    except BaseException:
        lb.close(obj)
        raise
    if rc:
        lb.close(obj)
        code = abs(rc)
        if code in (errno.EPERM, errno.EACCES):
            raise NoPrivilege(
                "the kernel refused to load roar's BPF programs (permission denied): run as "
                "root, and check kernel.unprivileged_bpf_disabled and lockdown; "
                "`roar run -v` shows the kernel's log"
            )
        raise KernelUnsupported(
            f"the kernel refused to load roar's BPF programs ({os.strerror(code)}): "
            "`roar run -v` shows the verifier's log; roar needs Linux 5.17+ with BTF"
        )
    return Loaded.from_libbpf(obj, ring_bytes)


def _find_map(obj: int, name: str) -> int:
    m = libbpf.lib().find_map(obj, name.encode())
    if not m:
        raise TracerError(f"the BPF object has no map {name}: reinstall roar")
    return m


class Tracer:
    """One loaded and attached BPF object, its ring buffer and its counters."""

    def __init__(self, on_event: Callable[[bytes], None], ring_bytes: int = DEFAULT_RING_BYTES,
                 verbose: bool = False, loaded: Loaded | None = None) -> None:
        """`loaded`: an object load_object() (or the spare) already made with these settings;
        the Tracer owns it from here on. The caller has run preflight()."""
        self._lib = libbpf.lib()
        self._obj: Loaded | None = None
        self._links: list[int] = []          # link descriptors: closing the last one detaches
        # the getenv uprobes: (link, perf event) descriptor pairs, slow to detach (each waits
        # for a kernel grace period)
        self._uprobe_links: list[tuple[int, int]] = []
        self._closing: list[threading.Thread] = []
        self._ring: int | None = None
        self._callback_error: BaseException | None = None
        self._poller: select.poll | None = None
        # the libcs whose getenv is probed, and why some or all are not (no libc, uprobes refused)
        self.env_read_libcs: list[str] = []
        self.env_read_note: str | None = None
        try:
            self._obj = loaded or load_object(ring_bytes, verbose)
            self._attach()
            self._start_ring(on_event)
        except BaseException:
            self.close()
            raise

    def _attach(self) -> None:
        uprobes = []
        for name, section, fd in self._obj.programs:
            if section.startswith(("uprobe", "uretprobe")):
                uprobes.append((fd, section.startswith("uretprobe")))    # attached to files, below
                continue
            link = self._lib.raw_tracepoint_open(None, fd)   # tp_btf: the kernel knows where
            if link < 0:
                err = ct.get_errno() or abs(link)
                cls = NoPrivilege if err in (errno.EPERM, errno.EACCES) else KernelUnsupported
                raise cls(f"failed to attach {name}: {os.strerror(err)}; roar needs tp_btf "
                          "tracepoints (Linux 5.5+)")
            self._links.append(link)
        self._attach_getenv(uprobes)

    def _attach_getenv(self, progs: list[tuple[int, bool]]) -> None:
        """The getenv uprobes, on every libc found. Optional: a kernel without uprobes,
        or no libc found, leaves the variables read unobserved (env_read_note says why)
        and the job traced as before."""
        from roar.tracer import uprobes
        from roar.tracer.envread import getenv_targets

        libcs = getenv_targets()
        failures = []
        try:
            if not progs or not libcs:
                self.env_read_note = "no 64-bit libc found to attach getenv probes to"
                return
            for path, offset in libcs:
                links = []
                for prog_fd, retprobe in progs:
                    link = self._attach_uprobe(prog_fd, path, offset, retprobe)
                    if isinstance(link, str):
                        failures.append(f"{path}: {link}")
                        break
                    links.append(link)
                else:
                    self._uprobe_links += links
                    self.env_read_libcs.append(path)
                    continue
                for pair in links:    # both probes or neither: an entry without its return is useless
                    _close_pair(pair)
        finally:
            uprobes.close_unused()
        if failures:
            self.env_read_note = "getenv probes could not be attached to " + "; ".join(failures)

    def _attach_uprobe(self, prog_fd: int, path: str, offset: int | None,
                       retprobe: bool) -> tuple[int, int] | str:
        """The program on getenv in path, on the perf event opened ahead (roar.tracer.uprobes)
        or a new one: (link, perf event) descriptors, or why not."""
        from roar.tracer import uprobes

        if offset is None:
            return "no getenv in its dynamic symbol table"
        pfd = uprobes.take(path, retprobe)
        if pfd is None:
            try:
                pfd = uprobes.open_probe(path, offset, retprobe)
            except OSError as exc:
                return os.strerror(exc.errno or errno.EINVAL)
        link = self._lib.link_create(prog_fd, pfd, BPF_PERF_EVENT, None)
        if link < 0:
            err = ct.get_errno() or abs(link)
            os.close(pfd)
            return os.strerror(err)
        try:
            fcntl.ioctl(pfd, PERF_EVENT_IOC_ENABLE, 0)
        except OSError as exc:
            _close_pair((link, pfd))
            return os.strerror(exc.errno or errno.EINVAL)
        return link, pfd

    def _start_ring(self, on_event: Callable[[bytes], None]) -> None:
        def _cb(_ctx: int, data: int, size: int) -> int:
            try:
                on_event(ct.string_at(data, size))
            except BaseException as exc:  # never let an exception cross into C
                if self._callback_error is None:
                    self._callback_error = exc
                return -1
            return 0

        self._cb = libbpf.RING_CALLBACK(_cb)
        ring = self._lib.ring_new(self.map_fd("events"), self._cb, None, None)
        if not ring:
            raise libbpf.fail("create the ring buffer reader")
        self._ring = ring

    @property
    def attached(self) -> int:
        """How many programs are attached now (tracepoints and uprobes)."""
        return len(self._links) + len(self._uprobe_links)

    @property
    def lib(self):
        return self._lib

    def map_fd(self, name: str) -> int:
        return self._obj.map_fd(name)

    def set_pinner(self, pid: int) -> None:
        """Hold the threads pid traces at their first read of each user file (0: hold none)."""
        key, value = ct.c_uint32(0), ct.c_uint32(pid)
        if self._lib.map_update(self.map_fd("pinner"), ct.byref(key), ct.byref(value), 0):
            raise libbpf.fail("start holding first reads for the pinner")

    def track(self, pid: int) -> None:
        """Put pid in the tracked set; its descendants join on fork."""
        key, one = ct.c_uint32(pid), ct.c_uint8(1)
        fd = self.map_fd("tracked")
        if self._lib.map_update(fd, ct.byref(key), ct.byref(one), 0):
            raise libbpf.fail("track the command's process")

    def wait(self, fd: int, timeout_ms: int = 100) -> bool:
        """Wait up to timeout_ms for a ring buffer wake-up or for fd (the
        child's pidfd) to become readable, then drain whatever is pending.
        Events are submitted without wake-ups below a threshold, so a quiet
        wait must still consume. True when fd is readable."""
        poller = self._poller
        if poller is None:
            poller = self._poller = select.poll()
            poller.register(self.map_fd("events"), select.POLLIN)
        poller.register(fd, select.POLLIN)
        try:
            ready = {f for f, _ in poller.poll(timeout_ms)}
        except InterruptedError:
            ready = set()
        finally:
            poller.unregister(fd)
        self.drain()
        return fd in ready

    def drain(self) -> None:
        rc = self._lib.ring_consume(self._ring)
        if self._callback_error is not None:
            exc, self._callback_error = self._callback_error, None
            raise exc
        if rc < 0 and rc != -errno.EINTR:
            raise libbpf.fail("read the ring buffer", rc)

    def counters(self) -> list[int]:
        """Kernel counters (events.h roar_stat), summed over CPUs."""
        ncpu = self._lib.num_possible_cpus()
        fd = self.map_fd("stats")
        totals = []
        for i in range(STAT_COUNT):
            key, values = ct.c_uint32(i), (ct.c_uint64 * ncpu)()
            if self._lib.map_lookup(fd, ct.byref(key), values):
                raise libbpf.fail("read the tracer's counters")
            totals.append(sum(values))
        return totals

    def close(self, wait: bool = True) -> None:
        """Detach every program and free the object: nothing stays attached. Each uprobe takes
        a kernel grace period (~0.1 s here) to detach. With wait=False they are handed to a
        background process (roar.tracer.detach) and detach there, after roar has moved on;
        otherwise, or if no such process can be made, they detach in threads, at the same
        time, and join() waits for them."""
        lb = self._lib
        if self._ring:
            lb.ring_free(self._ring)
            self._ring = None
        for link in self._links:
            os.close(link)
        self._links = []
        obj, self._obj = self._obj, None
        uprobes, self._uprobe_links = self._uprobe_links, []
        if uprobes and not wait and _close_in_background(uprobes):
            uprobes = []
        self._closing = [threading.Thread(target=_close_pair, args=(pair,), name="roar-detach")
                         for pair in uprobes]
        for thread in self._closing:
            thread.start()
        if obj:
            obj.close()    # a link holds its program itself: the object may go first
        if wait:
            self.join()

    def join(self) -> None:
        """Wait until close() has detached everything."""
        for thread in self._closing:
            thread.join()
        self._closing = []

    def __enter__(self) -> "Tracer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _close_pair(pair: tuple[int, int]) -> None:
    """Close a uprobe's link and its perf event: the last of them detaches it."""
    for fd in pair:
        os.close(fd)


def _close_in_background(pairs: list[tuple[int, int]]) -> bool:
    from roar.tracer.detach import close_in_background

    def close_own() -> None:
        for pair in pairs:
            _close_pair(pair)    # roar's copies only: quick, the link holds the perf event

    return close_in_background([link for link, _ in pairs], close_own)


def _print_libbpf(level: int, text: str) -> None:
    import sys

    sys.stderr.write("libbpf: " + text)
