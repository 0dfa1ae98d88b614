"""Input and output sets of a command as `strace -f` sees it.

strace runs with -xx -y, so every string and every fd's path is printed in
hex (exact for any byte) and fds carry their canonical path. Its facts are fed
to the same FileSets rules as roar's, so the comparison checks what the two
tracers observed, file by file.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from roar.record.filesets import FileSets

SYSCALLS = ("read,pread64,readv,preadv,preadv2,write,pwrite64,writev,pwritev,pwritev2,sendfile,"
            "copy_file_range,splice,fallocate,ftruncate,truncate,mmap,open,openat,openat2,creat,"
            "rename,renameat,renameat2,link,linkat,unlink,unlinkat,execve,execveat")

LINE = re.compile(r"^(\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\w+)")
FD = re.compile(r"(\d+)<((?:\\x[0-9a-f]{2})*)>")
STR = re.compile(r'"((?:\\x[0-9a-f]{2})*)"')
CWD = re.compile(r"AT_FDCWD<((?:\\x[0-9a-f]{2})*)>")
DIR = re.compile(r"(?:AT_FDCWD|\b\d+)<((?:\\x[0-9a-f]{2})*)>")   # dirfd arguments, in order

READS = {"read", "pread64", "readv", "preadv", "preadv2"}
WRITES = {"write", "pwrite64", "writev", "pwritev", "pwritev2", "fallocate", "ftruncate"}
COPIES = {"sendfile": (1, 0), "copy_file_range": (0, 1), "splice": (0, 1)}   # (source, target) fd index


def _hex(s: str) -> str:
    return os.fsdecode(bytes.fromhex(s.replace("\\x", "")))


def _join(base: str, name: str) -> str:
    joined = os.path.normpath(name if name.startswith("/") else os.path.join(base, name))
    parent, leaf = os.path.split(joined)
    return os.path.join(os.path.realpath(parent), leaf)


def strace_sets(cmd: list, cwd: Path, roar_dir: Path) -> tuple[set[str], set[str]]:
    log = cwd.parent / f"{cwd.name}.strace"
    subprocess.run(["strace", "-f", "-qq", "-xx", "-y", "-e", f"trace={SYSCALLS}", "-o", str(log), "--",
                    *cmd], cwd=cwd, capture_output=True)
    files = FileSets(str(roar_dir))
    ino = {}

    def ident(path: str) -> tuple[int, int]:
        return (0, ino.setdefault(path, len(ino) + 1))

    for line in _joined(log.read_text().splitlines()):
        m = LINE.match(line)
        if not m or m.group(4).startswith("-"):
            continue
        pid, name, args, ret = int(m.group(1)), m.group(2), m.group(3), m.group(4)
        fds = [_hex(p) for _, p in FD.findall(args)]
        if name in READS and fds:
            files.read(fds[0], pid, *ident(fds[0]), 0, 0)
        elif name in WRITES and fds and (name in ("fallocate", "ftruncate") or ret != "0"):
            files.change(fds[0], pid, *ident(fds[0]))
        elif name in COPIES and len(fds) >= 2 and ret != "0":
            src, dst = COPIES[name]
            files.read(fds[src], pid, *ident(fds[src]), 0, 0)
            files.change(fds[dst], pid, *ident(fds[dst]))
        elif name == "mmap" and fds and "MAP_ANONYMOUS" not in args:
            if "PROT_READ" in args or "PROT_EXEC" in args:
                files.read(fds[-1], pid, *ident(fds[-1]), 0, 0)
            if "PROT_WRITE" in args and "MAP_SHARED" in args:
                files.change(fds[-1], pid, *ident(fds[-1]))
        elif name in ("open", "openat", "openat2", "creat"):
            ret_path = FD.search(line[line.rindex("=") :])
            # O_PATH ignores O_CREAT and O_TRUNC; O_TRUNC truncates whatever the access mode
            opens = "O_CREAT" in args or "O_TRUNC" in args or name == "creat"
            if ret_path and opens and "O_PATH" not in args:
                path = _hex(ret_path.group(2))
                if "O_TRUNC" in args or name == "creat":
                    files.change(path, pid, *ident(path))
                elif path not in ino:
                    files.change(path, pid, *ident(path))   # O_CREAT of a path not seen before: created
        elif name.startswith(("rename", "link", "unlink", "truncate")):
            _name_op(files, pid, name, args, ident, str(cwd))
        elif name.startswith("execve"):
            strings = STR.findall(args)
            cwds = CWD.findall(args)
            if strings:
                base = _hex(cwds[0]) if cwds else str(cwd)
                files.executed(os.path.realpath(_join(base, _hex(strings[0]))), pid)
    return ({p for p in files.inputs}, {s.path for s in files.outputs()})


RESUMED = re.compile(r"^(\d+)\s+<\.\.\. \w+ resumed>(.*)$")


def _joined(lines: list[str]):
    """Stitch `<unfinished ...>` calls (another process ran in between) back together."""
    pending: dict[str, str] = {}
    for line in lines:
        if line.endswith("<unfinished ...>"):
            pending[line.split()[0]] = line[: -len("<unfinished ...>")].rstrip()
            continue
        m = RESUMED.match(line)
        if m:
            start = pending.pop(m.group(1), None)
            if start is None:
                continue
            line = start + m.group(2)
        yield line


def _name_op(files: FileSets, pid: int, name: str, args: str, ident, cwd: str) -> None:
    # the *at() forms give each name its directory; the others are relative to the cwd
    bases = [_hex(d) for d in DIR.findall(args)]
    names = [_hex(s) for s in STR.findall(args)]
    if not names:
        return
    paths = [_join(bases[i] if i < len(bases) else cwd, n) for i, n in enumerate(names)]
    if name.startswith("rename") and len(paths) == 2:
        files.rename(paths[0], paths[1], pid)
    elif name.startswith("link") and len(paths) == 2:
        files.link(paths[1], pid)
    elif name.startswith("unlink"):
        if "AT_REMOVEDIR" not in args:
            files.unlink(paths[0])
    elif name == "truncate":
        files.change(paths[0], pid, *ident(paths[0]))
