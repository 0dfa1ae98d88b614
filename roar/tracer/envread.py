"""Where libc's getenv lives, for the uprobes that report which variables a job read.

A uprobe is attached to a file, not to a process tree: roar attaches to each
64-bit libc the system's programs load (the one roar itself runs on, and those
in the dynamic linker's standard directories), and the kernel side reports only
tracked processes. A program that carries its own libc elsewhere (Nix, a
bundled runtime), a static binary and Go programs are not observed
(docs/context.md, "Variables read").
"""

from __future__ import annotations

import functools
import os
import struct

# x86_64 only, as the rest of the tracer; 32-bit libcs pass arguments on the stack, which the
# probe does not read
LIBC_NAMES = ("libc.so.6", "ld-musl-x86_64.so.1")
LIBC_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib",
             "/usr/lib")
ELF64_X86_64 = (b"\x7fELF\x02", 62)    # e_ident magic + ELFCLASS64, e_machine EM_X86_64
GETENV = "getenv"                      # secure_getenv calls it: one probe sees both


def _mapped_libc() -> list[str]:
    """The libc this process runs on, as the kernel names its mapping."""
    paths = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                fields = line.split(None, 5)
                if len(fields) == 6 and os.path.basename(fields[5].strip()) in LIBC_NAMES:
                    paths.add(fields[5].strip())
    except OSError:
        pass
    return sorted(paths)


def _is_libc64(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(20)
    except OSError:
        return False
    return head[:5] == ELF64_X86_64[0] and int.from_bytes(head[18:20], "little") == ELF64_X86_64[1]


def libc_paths() -> list[str]:
    """Each distinct 64-bit libc file (by device and inode), by its canonical path."""
    found: dict[tuple[int, int], str] = {}
    candidates = _mapped_libc() + [os.path.join(d, n) for d in LIBC_DIRS for n in LIBC_NAMES]
    for path in candidates:
        real = os.path.realpath(path)
        try:
            st = os.stat(real)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) not in found and _is_libc64(real):
            found[(st.st_dev, st.st_ino)] = real
    return list(found.values())


_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")
SHT_DYNSYM, STT_FUNC = 11, 2


def function_offset(path: str, name: str) -> int | None:
    """The file offset of the function `name` in the ELF64 file at path, from its dynamic
    symbol table, as a uprobe wants it: the symbol's address less its section's address plus
    the section's file offset (what libbpf computes for a func_name). None when the file has
    no such function. A few ms for a libc: cheaper than libbpf's own lookup, which opens the
    file with libelf at every attach, and done in the preload thread (roar.tracer.uprobes)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        ehdr = os.pread(fd, _EHDR.size, 0)
        if len(ehdr) < _EHDR.size or ehdr[:6] != b"\x7fELF\x02\x01":   # ELF64, little-endian
            return None
        fields = _EHDR.unpack(ehdr)
        shoff, shentsize, shnum = fields[6], fields[11], fields[12]
        if shentsize != _SHDR.size or not 0 < shnum < 4096:
            return None
        table = os.pread(fd, shentsize * shnum, shoff)
        sections = [_SHDR.unpack_from(table, i * shentsize) for i in range(len(table) // shentsize)]
        for sh in sections:
            if sh[1] != SHT_DYNSYM or sh[6] >= len(sections) or sh[9] != _SYM.size:
                continue
            strtab = sections[sh[6]]
            strings = os.pread(fd, strtab[5], strtab[4])
            want = name.encode() + b"\0"    # names share tails: "getenv" may be secure_getenv's
            if want not in strings:
                return None
            symbols = os.pread(fd, sh[5], sh[4])
            for st_name, info, _other, shndx, value, _size in _SYM.iter_unpack(symbols):
                if (strings.startswith(want, st_name) and info & 0xF == STT_FUNC and value
                        and 0 < shndx < len(sections)):
                    section = sections[shndx]
                    return value - section[3] + section[4]   # sh_addr, sh_offset
        return None
    except (OSError, struct.error):
        return None
    finally:
        os.close(fd)


@functools.cache
def getenv_targets() -> tuple[tuple[str, int | None], ...]:
    """(libc path, getenv's offset in it or None) for each libc the probes attach to; cached:
    the preload thread resolves them, and the tracer attaches at once later."""
    return tuple((path, function_offset(path, GETENV)) for path in libc_paths())


# Python reads its environment through os.environ, never through getenv: a start-up hook
# (pyhook/sitecustomize.py) makes each lookup by name go through libc too. It travels in
# PYTHONPATH, the one variable every interpreter honours without flags.
PYTHON_CARRIER = "PYTHONPATH"


def hook_dir() -> str | None:
    """The hook's directory, or None when it is missing or writable by others than its owner
    (it runs in every Python of the job)."""
    import stat

    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pyhook")
    for path in (here, os.path.join(here, "sitecustomize.py")):
        try:
            st = os.lstat(path)
        except OSError:
            return None
        if stat.S_ISLNK(st.st_mode) or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return None
    return here


def with_python_hook(env: dict[str, str]) -> dict[str, str]:
    """The environment to exec the job with: `env` with the hook first in PYTHONPATH. A
    PYTHONPATH set but empty is left alone (an entry would add "" to sys.path: the cwd)."""
    here = hook_dir()
    current = env.get(PYTHON_CARRIER)
    if here is None or current == "":
        return env
    return {**env, PYTHON_CARRIER: here if current is None else here + os.pathsep + current}


def without_python_hook(name: str, value: str | None) -> str | None:
    """A value read as the tree's processes saw it, less the hook's PYTHONPATH entry."""
    here = hook_dir()
    if name != PYTHON_CARRIER or value is None or here is None:
        return value
    if value == here:
        return None
    return value[len(here) + 1:] if value.startswith(here + os.pathsep) else value
