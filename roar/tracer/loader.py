"""Load, attach and drain roar's BPF object; detach everything on close.

The object is attached only for the life of one job: while any syscall
tracepoint is attached every process on the machine takes the slow syscall
path, so roar attaches late and detaches as soon as the job is over.
"""

from __future__ import annotations

import ctypes as ct
import errno
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


def load_object(ring_bytes: int = DEFAULT_RING_BYTES, verbose: bool = False) -> int:
    """Open roar's BPF object, size it, and load it into the kernel (verifier
    included): a bpf_object pointer, not yet attached."""
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
    return obj


def _find_map(obj: int, name: str) -> int:
    m = libbpf.lib().find_map(obj, name.encode())
    if not m:
        raise TracerError(f"the BPF object has no map {name}: reinstall roar")
    return m


class Tracer:
    """One loaded and attached BPF object, its ring buffer and its counters."""

    def __init__(self, on_event: Callable[[bytes], None], ring_bytes: int = DEFAULT_RING_BYTES,
                 verbose: bool = False, loaded: int | None = None) -> None:
        """`loaded`: an object load_object() already made with these settings.
        The caller has run preflight()."""
        self._lib = libbpf.lib()
        self._obj: int | None = None
        self._links: list[int] = []
        self._uprobe_links: list[int] = []   # slow to detach: each waits for a kernel grace period
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

    def _map(self, name: str) -> int:
        return _find_map(self._obj, name)

    def _attach(self) -> None:
        lb = self._lib
        prog = None
        uprobes = []
        while True:
            prog = lb.next_program(self._obj, prog)
            if not prog:
                break
            if lb.section_name(prog).startswith((b"uprobe", b"uretprobe")):
                uprobes.append(prog)    # attached to files, below
                continue
            link = lb.attach(prog)
            if not link:
                name = lb.program_name(prog).decode()
                err = ct.get_errno()
                cls = NoPrivilege if err in (errno.EPERM, errno.EACCES) else KernelUnsupported
                raise cls(f"failed to attach {name}: {os.strerror(err)}; roar needs tp_btf "
                          "tracepoints (Linux 5.5+)")
            self._links.append(link)
        self._attach_getenv(uprobes)

    def _attach_getenv(self, progs: list[int]) -> None:
        """The getenv uprobes, on every libc found. Optional: a kernel without uprobes,
        or no libc found, leaves the variables read unobserved (env_read_note says why)
        and the job traced as before."""
        from roar.tracer.envread import GETENV, libc_paths

        libcs = libc_paths()
        if not progs or not libcs:
            self.env_read_note = "no 64-bit libc found to attach getenv probes to"
            return
        failures = []
        for path in libcs:
            links = []
            for prog in progs:
                opts = libbpf.UprobeOpts(sz=ct.sizeof(libbpf.UprobeOpts), func_name=GETENV.encode(),
                                         retprobe=_is_return_probe(self._lib, prog))
                link = self._lib.attach_uprobe_opts(prog, -1, path.encode(), 0, ct.byref(opts))
                if not link:
                    failures.append(f"{path}: {os.strerror(ct.get_errno() or errno.EINVAL)}")
                    break
                links.append(link)
            else:
                self._uprobe_links += links
                self.env_read_libcs.append(path)
                continue
            for link in links:     # both probes or neither: an entry without its return is useless
                self._lib.link_destroy(link)
        if failures:
            self.env_read_note = "getenv probes could not be attached to " + "; ".join(failures)

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
        ring = self._lib.ring_new(self._lib.map_fd(self._map("events")), self._cb, None, None)
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
        return self._lib.map_fd(self._map(name))

    def set_pinner(self, pid: int) -> None:
        """Hold the threads pid traces at their first read of each user file (0: hold none)."""
        key, value = ct.c_uint32(0), ct.c_uint32(pid)
        if self._lib.map_update(self.map_fd("pinner"), ct.byref(key), ct.byref(value), 0):
            raise libbpf.fail("start holding first reads for the pinner")

    def track(self, pid: int) -> None:
        """Put pid in the tracked set; its descendants join on fork."""
        key, one = ct.c_uint32(pid), ct.c_uint8(1)
        fd = self._lib.map_fd(self._map("tracked"))
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
            poller.register(self._lib.map_fd(self._map("events")), select.POLLIN)
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
        fd = self._lib.map_fd(self._map("stats"))
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
            lb.link_destroy(link)
        self._links = []
        obj, self._obj = self._obj, None
        uprobes, self._uprobe_links = self._uprobe_links, []
        if uprobes and not wait and _close_in_background(lb, uprobes):
            uprobes = []
        self._closing = [threading.Thread(target=lb.link_destroy, args=(link,), name="roar-detach")
                         for link in uprobes]
        for thread in self._closing:
            thread.start()
        if obj:
            lb.close(obj)    # a link holds its program itself: the object may go first
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


def _close_in_background(lb, links: list[int]) -> bool:
    from roar.tracer.detach import close_in_background

    def close_own() -> None:
        for link in links:
            lb.link_destroy(link)    # roar's copies only: quick, the last ones are elsewhere

    return close_in_background([lb.link_fd(link) for link in links], close_own)


def _is_return_probe(lb, prog: int) -> bool:
    return lb.section_name(prog).startswith(b"uretprobe")


def _print_libbpf(level: int, text: str) -> None:
    import sys

    sys.stderr.write("libbpf: " + text)
