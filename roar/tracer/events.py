"""Decoding of the kernel's events (layouts in bpf/events.h).

LAYOUTS mirrors each C struct field by field; tests/unit/test_event_layout.py
compiles events.h and checks every size and offset against it.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from roar.errors import TracerError

EV_FORK, EV_EXEC, EV_FILE, EV_PATHOP, EV_EXIT = 1, 2, 3, 4, 5
EV_ENV = 40
ENV_SET, ENV_NAME_CUT, ENV_VALUE_CUT = 1, 2, 4   # ev_env flags
ENV_NAME_MAX, ENV_VALUE_MAX = 256, 4096          # ROAR_ENV_*_MAX, the NUL included

ACC_READ, ACC_WRITE, ACC_CREATE, ACC_TRUNC, ACC_MMAP_READ, ACC_MMAP_WRITE = 1, 2, 4, 8, 16, 32
READ_ACCESS = ACC_READ | ACC_MMAP_READ
CHANGE_ACCESS = ACC_WRITE | ACC_CREATE | ACC_TRUNC | ACC_MMAP_WRITE

OP_RENAME, OP_LINK, OP_UNLINK, OP_TRUNCATE, OP_RMDIR = 1, 2, 3, 4, 5
OP_NAMES = {OP_RENAME: "rename", OP_LINK: "link", OP_UNLINK: "unlink", OP_TRUNCATE: "truncate",
            OP_RMDIR: "rmdir"}

EXEC_PRIVILEGED = 1   # ROAR_EXEC_PRIVILEGED

STAT_DROPPED, STAT_PATH_TRUNCATED, STAT_SEEN_FAILED, STAT_UNTRACKED = 0, 1, 2, 3
STAT_PIN_FAILED, STAT_COUNT = 4, 5

FORK_UNTRACKED = 1    # ROAR_FORK_UNTRACKED
CTIME_NSEC_MASK = 0x3FFFFFFF   # Linux 6.13+ keeps a "ctime was queried" flag in the top bit
PATH_CUT = b"?"       # ROAR_PATH_CUT: in place of the leading "/" of a path not walked in full
PATH_MAX = 4096       # a longer path cannot be opened by name, so it cannot be hashed or stat'ed

HEADER = [("type", "H"), ("size", "H"), ("tgid", "I"), ("tid", "I"), ("_pad", "I"), ("ts_ns", "Q")]

# struct name -> fields after the header, in C order
LAYOUTS: dict[str, list[tuple[str, str]]] = {
    "ev_header": [],
    "ev_fork": [("parent_tgid", "I"), ("child_tgid", "I"), ("flags", "I"), ("_pad", "I")],
    "ev_exec": [("ret", "i"), ("argc", "I"), ("filename_len", "H"), ("cwd_len", "H"),
                ("exe_len", "H"), ("argv_len", "H"), ("argv_truncated", "I"), ("flags", "I")],
    "ev_file": [("access", "I"), ("mode", "I"), ("dev", "Q"), ("ino", "Q"), ("size", "Q"),
                ("mtime_sec", "q"), ("mtime_nsec", "I"), ("path_len", "H"), ("_pad", "H"),
                ("generation", "I"), ("ctime_nsec", "I"), ("ctime_sec", "q")],
    "ev_pathop": [("op", "I"), ("ret", "i"), ("flags", "I"), ("name1_len", "H"), ("dir1_len", "H"),
                  ("name2_len", "H"), ("dir2_len", "H"), ("_pad", "I")],
    "ev_exit": [("wait_status", "i"), ("_pad", "I")],
    "ev_env": [("flags", "I"), ("name_len", "H"), ("value_len", "H")],
}


def _struct(name: str) -> struct.Struct:
    return struct.Struct("=" + "".join(f for _, f in HEADER + LAYOUTS[name]))


_HEADER = _struct("ev_header")
_FORK = _struct("ev_fork")
_EXEC = _struct("ev_exec")
_FILE = _struct("ev_file")
_PATHOP = _struct("ev_pathop")
_EXIT = _struct("ev_exit")
_ENV = _struct("ev_env")


def field_offsets(name: str) -> dict[str, int]:
    """Offset of every field of a struct as the decoder reads it."""
    offsets, fmt = {}, "="
    for field, code in HEADER + LAYOUTS[name]:
        offsets[field] = struct.calcsize(fmt)
        fmt += code
    return offsets


def struct_size(name: str) -> int:
    return _struct(name).size


@dataclass(slots=True)
class Fork:
    ts: int
    tgid: int
    child: int
    untracked: bool = False   # the kernel could not track the child: its subtree is unseen


@dataclass(slots=True)
class Exec:
    ts: int
    tgid: int
    ret: int          # 0 or -errno
    filename: bytes   # as passed to exec
    cwd: bytes
    exe: bytes        # canonical path of the program run (empty when failed)
    argv: list[bytes]
    argv_truncated: bool
    privileged: bool = False   # a set-user-ID (etc.) exec: not traced after it


@dataclass(slots=True)
class FileAccess:
    ts: int
    tgid: int
    access: int
    dev: int
    ino: int
    size: int
    mtime_ns: int
    path: bytes
    generation: int = 0
    ctime_ns: int = 0


@dataclass(slots=True)
class PathOp:
    ts: int
    tgid: int
    op: int
    flags: int
    name1: bytes
    dir1: bytes
    name2: bytes
    dir2: bytes


@dataclass(slots=True)
class Exit:
    ts: int
    tgid: int
    wait_status: int


@dataclass(slots=True)
class EnvRead:
    ts: int
    tgid: int
    name: bytes
    value: bytes | None   # None: getenv returned NULL (the variable was not set)
    name_cut: bool
    value_cut: bool


Event = Fork | Exec | FileAccess | PathOp | Exit | EnvRead


def _strings(raw: bytes, offset: int, lengths: tuple[int, ...]) -> list[bytes]:
    out = []
    for n in lengths:
        # each length counts the NUL; a truncated string may lack it
        chunk = raw[offset:offset + n]
        out.append(chunk[:-1] if chunk.endswith(b"\0") else chunk)
        offset += n
    return out


def decode(raw: bytes) -> Event:
    typ, _size, tgid, _tid, _pad, ts = _HEADER.unpack_from(raw)
    if typ == EV_FILE:
        (_, _, _, _, _, _, access, _mode, dev, ino, size, msec, mnsec, plen, _, gen, cnsec,
         csec) = _FILE.unpack_from(raw)
        (path,) = _strings(raw, _FILE.size, (plen,))
        return FileAccess(ts, tgid, access, dev, ino, size, msec * 1_000_000_000 + mnsec, path, gen,
                          csec * 1_000_000_000 + (cnsec & CTIME_NSEC_MASK))
    if typ == EV_FORK:
        (*_, parent, child, flags, _) = _FORK.unpack_from(raw)
        return Fork(ts, parent, child, bool(flags & FORK_UNTRACKED))
    if typ == EV_EXEC:
        (*_, ret, argc, flen, clen, elen, alen, trunc, flags) = _EXEC.unpack_from(raw)
        filename, cwd, exe = _strings(raw, _EXEC.size, (flen, clen, elen))
        blob = raw[_EXEC.size + flen + clen + elen:_EXEC.size + flen + clen + elen + alen]
        argv = blob.split(b"\0")
        if blob.endswith(b"\0"):
            argv.pop()
        return Exec(ts, tgid, ret, filename, cwd, exe, argv[:argc] if argc else argv, bool(trunc),
                    bool(flags & EXEC_PRIVILEGED))
    if typ == EV_PATHOP:
        (*_, op, _ret, flags, n1, d1, n2, d2, _) = _PATHOP.unpack_from(raw)
        name1, dir1, name2, dir2 = _strings(raw, _PATHOP.size, (n1, d1, n2, d2))
        return PathOp(ts, tgid, op, flags, name1, dir1, name2, dir2)
    if typ == EV_EXIT:
        (*_, status, _) = _EXIT.unpack_from(raw)
        return Exit(ts, tgid, status)
    if typ == EV_ENV:
        (*_, flags, nlen, vlen) = _ENV.unpack_from(raw)
        name, value = _strings(raw, _ENV.size, (nlen, vlen))
        return EnvRead(ts, tgid, name, value if flags & ENV_SET else None, bool(flags & ENV_NAME_CUT),
                       bool(flags & ENV_VALUE_CUT))
    raise TracerError(
        f"unknown event type {typ} from the kernel: the BPF object does not match this roar; "
        "reinstall roar (scripts/setup)"
    )


def unresolved(path: bytes) -> bool:
    """A path the kernel could not walk in full, or too long to open by name."""
    return not path.startswith(b"/") or len(path) >= PATH_MAX


def join_path(directory: bytes, name: bytes) -> bytes:
    """The absolute, normalised path of a syscall name argument."""
    if not name.startswith(b"/"):
        name = directory.rstrip(b"/") + b"/" + name
    return os.path.normpath(name)
