"""Which of roar's two BPF objects to load on the running kernel.

Both are built from bpf/roar.bpf.c (bpf/Makefile). `roar.bpf.o` loads on any kernel roar
supports (5.17+). `roar-btf.bpf.o` (built with ROAR_BTF) reads the open file and its inode on
every read and write with plain loads through the `bpf_rdonly_cast` kfunc (Linux 6.2+) rather
than one `bpf_probe_read_kernel` call per field; docs/performance-tracer.md has what that saves.
It is chosen when the kernel's BTF names that kfunc and the object was built.
"""

from __future__ import annotations

import functools
import os
import re
import struct
from pathlib import Path

BTF_PATH = Path("/sys/kernel/btf/vmlinux")
HERE = Path(__file__).resolve().parent
BASE_OBJECT = HERE / "roar.bpf.o"
BTF_OBJECT = HERE / "roar-btf.bpf.o"
KFUNC = "bpf_rdonly_cast"
_BTF_MAGIC = 0xEB9F
_HEADER = struct.Struct("<HBBIIIII")   # magic, version, flags, hdr_len, type_off/len, str_off/len


def btf_has_name(name: str, btf_path: Path = BTF_PATH) -> bool:
    """Whether the BTF at btf_path has `name` as a whole string of its string section (kernel
    functions, kfuncs among them, are named there). Reads the header and the string section
    only (about 2 MB of 5.5 MB on 6.18); False when the file is missing or not BTF."""
    try:
        fd = os.open(btf_path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        header = os.pread(fd, _HEADER.size, 0)
        if len(header) < _HEADER.size:
            return False
        magic, _version, _flags, hdr_len, _toff, _tlen, str_off, str_len = _HEADER.unpack(header)
        if magic != _BTF_MAGIC:
            return False
        strings = _pread_all(fd, str_len, hdr_len + str_off)
    except OSError:
        return False
    finally:
        os.close(fd)
    return b"\0" + name.encode() + b"\0" in strings


def _pread_all(fd: int, size: int, offset: int) -> bytes:
    """size bytes at offset, or fewer at the end of the file (sysfs gives a few pages a call)."""
    parts, got = [], 0
    while got < size:
        part = os.pread(fd, size - got, offset + got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def release_at_least(release: str, major: int, minor: int) -> bool:
    """Whether a kernel release string ("6.18.44-fc-v1147") is major.minor or later."""
    m = re.match(r"(\d+)\.(\d+)", release)
    return bool(m) and (int(m[1]), int(m[2])) >= (major, minor)


def has_rdonly_cast(release: str | None = None, btf_path: Path = BTF_PATH) -> bool:
    """Whether the kernel has the bpf_rdonly_cast kfunc: every mainline kernel since 6.2 has
    it (CONFIG_BPF_SYSCALL and BTF, which roar needs anyway); an older release may have it
    backported, so its BTF is searched (sysfs reads it out a page at a time: ~15 ms)."""
    if release_at_least(release if release is not None else os.uname().release, 6, 2):
        return True
    return btf_has_name(KFUNC, btf_path)


@functools.cache
def pick() -> Path:
    """The object to load here: the BTF one when this kernel has bpf_rdonly_cast and the
    object is installed, else the one for every kernel."""
    if BTF_OBJECT.exists() and has_rdonly_cast():
        return BTF_OBJECT
    return BASE_OBJECT
