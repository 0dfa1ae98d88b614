"""ctypes binding to the system libbpf.so.1 (>= 1.0): just the calls roar makes.

Every failing call raises TracerError naming the step and the errno text, so
callers never have to look at a NULL pointer or a negative return.
"""

from __future__ import annotations

import ctypes as ct
import os
from typing import Callable

from roar.errors import LibbpfMissing, TracerError

_vp, _cp, _int, _size = ct.c_void_p, ct.c_char_p, ct.c_int, ct.c_size_t

RING_CALLBACK = ct.CFUNCTYPE(_int, _vp, _vp, _size)
_PRINT_CALLBACK = ct.CFUNCTYPE(_int, _int, _cp, _vp)

MIN_VERSION = (1, 0)


class _Lib:
    """The loaded library with typed functions, bound once per process."""

    _instance: "_Lib | None" = None

    def __init__(self) -> None:
        try:
            lib = ct.CDLL("libbpf.so.1", use_errno=True)
        except OSError:
            # find_library runs `ldconfig -p`: tens of ms, so only when the soname is not found
            import ctypes.util  # 8 ms of imports: only then too

            name = ctypes.util.find_library("bpf")
            try:
                lib = ct.CDLL(name, use_errno=True) if name else None
            except OSError:
                lib = None
            if lib is None:
                raise LibbpfMissing(
                    "libbpf.so.1 not found: install it (Debian/Ubuntu: apt-get install libbpf1)"
                ) from None
        self.lib = lib
        try:
            version = (lib.libbpf_major_version(), lib.libbpf_minor_version())
        except AttributeError:
            version = (0, 0)
        if version < MIN_VERSION:
            raise LibbpfMissing(
                f"libbpf {version[0]}.{version[1]} is too old: roar needs 1.0 or newer "
                "(Debian 12 / Ubuntu 22.10 or later ship it)"
            )
        self.version = version
        f = self._fn
        self.open_file = f("bpf_object__open_file", _vp, _cp, _vp)
        self.load = f("bpf_object__load", _int, _vp)
        self.close = f("bpf_object__close", None, _vp)
        self.next_program = f("bpf_object__next_program", _vp, _vp, _vp)
        self.find_map = f("bpf_object__find_map_by_name", _vp, _vp, _cp)
        self.program_name = f("bpf_program__name", _cp, _vp)
        self.attach = f("bpf_program__attach", _vp, _vp)
        self.section_name = f("bpf_program__section_name", _cp, _vp)
        self.program_fd = f("bpf_program__fd", _int, _vp)
        self.next_map = f("bpf_object__next_map", _vp, _vp, _vp)
        self.map_name = f("bpf_map__name", _cp, _vp)
        # on descriptors, for an object loaded here or received from the spare
        self.raw_tracepoint_open = f("bpf_raw_tracepoint_open", _int, _cp, _int)
        self.link_create = f("bpf_link_create", _int, _int, _int, _int, _vp)
        self.link_destroy = f("bpf_link__destroy", _int, _vp)
        self.map_fd = f("bpf_map__fd", _int, _vp)
        self.map_set_max_entries = f("bpf_map__set_max_entries", _int, _vp, ct.c_uint32)
        self.map_initial_value = f("bpf_map__initial_value", _vp, _vp, ct.POINTER(_size))
        self.map_update = f("bpf_map_update_elem", _int, _int, _vp, _vp, ct.c_uint64)
        self.map_lookup = f("bpf_map_lookup_elem", _int, _int, _vp, _vp)
        self.map_delete = f("bpf_map_delete_elem", _int, _int, _vp)
        self.ring_new = f("ring_buffer__new", _vp, _int, RING_CALLBACK, _vp, _vp)
        self.ring_consume = f("ring_buffer__consume", _int, _vp)
        self.ring_free = f("ring_buffer__free", None, _vp)
        self.set_print = f("libbpf_set_print", _vp, _PRINT_CALLBACK)
        self.num_possible_cpus = f("libbpf_num_possible_cpus", _int)

    def _fn(self, name: str, restype, *argtypes):
        fn = getattr(self.lib, name)
        fn.restype = restype
        fn.argtypes = list(argtypes)
        return fn

    @classmethod
    def get(cls) -> "_Lib":
        if cls._instance is None:
            cls._instance = _Lib()
        return cls._instance


def lib() -> _Lib:
    return _Lib.get()


def fail(step: str, err: int | None = None) -> TracerError:
    """A TracerError for a failed libbpf step; libbpf returns -errno or sets errno."""
    code = abs(err) if err else ct.get_errno()
    return TracerError(f"failed to {step}: {os.strerror(code) if code else 'unknown error'}", errno=code)


_keep_printer = None


def route_log(printer: Callable[[int, str], None] | None) -> None:
    """Send libbpf's own log to printer(level, text), or silence it (None)."""
    global _keep_printer
    libc = ct.CDLL(None)
    vsnprintf = libc.vsnprintf
    vsnprintf.argtypes = [_cp, _size, _cp, _vp]
    vsnprintf.restype = _int

    def _cb(level: int, fmt: bytes, va: int) -> int:
        if printer is not None:
            buf = ct.create_string_buffer(4096)
            vsnprintf(buf, 4096, fmt, va)
            printer(level, buf.value.decode(errors="replace"))
        return 0

    _keep_printer = _PRINT_CALLBACK(_cb)
    lib().set_print(_keep_printer)
