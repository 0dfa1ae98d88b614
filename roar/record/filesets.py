"""What counts as an input and an output of a job (docs/lineage-rules.md).

FileSets is fed the file facts of one job in kernel order and says, at the
end, which files are inputs and which are outputs:

- input: a file whose existing content the tree read (read, mmap, sendfile or
  copy source, or exec'd); a file the job changed before reading it is not one.
- output: a file that exists when the job ends and whose content the job
  created or changed (written, truncated, created empty, renamed or linked
  into place); one created and deleted inside the job is neither.
- pseudo filesystems, the workspace's own .roar/, read-only system locations
  and installed Python code (site-packages, the standard library) are kept
  apart (`system_reads`, `other_writes`), not lineage.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from typing import Callable

# the table of bpf/system_paths.h, which the kernel side is built from (tests/unit/
# test_system_paths.py keeps the two equal): every prefix ends in "/", "/lib" is not "/library"
PSEUDO_PREFIXES = ("/proc/", "/sys/", "/dev/")
SYSTEM_PREFIXES = ("/usr/", "/lib/", "/lib32/", "/lib64/", "/libx32/", "/bin/", "/sbin/", "/etc/")


# roar's own Python start-up hook (docs/context.md): the job reads it because roar put it there
ROAR_HOOK_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "tracer", "pyhook")

# an interpreter's installed code, wherever it lives (venv, pyenv, conda): the
# packages record names it by distribution and version, file by file is noise
INSTALLED_CODE = re.compile(r"/(site-packages|dist-packages)/|/lib/python\d+(\.\d+)?/")


def path_class(path: str, roar_dir: str) -> str:
    """'pseudo', 'roar', 'system' or 'lineage'."""
    if path.startswith(PSEUDO_PREFIXES) or path in ("/proc", "/sys", "/dev"):
        return "pseudo"
    if path == roar_dir or path.startswith((roar_dir + "/", ROAR_HOOK_DIR + "/")):
        return "roar"
    if path.startswith(SYSTEM_PREFIXES) or INSTALLED_CODE.search(path):
        return "system"
    return "lineage"


@dataclass
class Seen:
    """What the job did to one path."""

    path: str
    read_by: set[int] = field(default_factory=set)
    changed_by: set[int] = field(default_factory=set)
    size: int | None = None       # as the kernel saw it at the first read
    mtime_ns: int | None = None
    executed: bool = False        # a program the job ran (binary or "#!" script)
    mapped: bool = False          # mapped into memory: a shared library when it is ELF
    stages: set[int] = field(default_factory=set)   # the programs (collector stages) that read it


class FileSets:
    def __init__(self, roar_dir: str, on_input: Callable[[str, int, int], None] | None = None) -> None:
        self.roar_dir = roar_dir
        self.on_input = on_input          # (path, size, mtime_ns) when a new input is seen
        self.inputs: dict[str, Seen] = {}
        self.changed: dict[str, Seen] = {}   # paths whose content the job made, in order
        self.changed_inodes: set[tuple[int, int]] = set()
        self.system_reads: set[str] = set()
        self.system_programs: set[str] = set()   # exec'd programs in system locations
        self.other_writes: set[str] = set()
        self.deleted: list[str] = []
        self.renamed: list[tuple[str, str]] = []

    def read(self, path: str, pid: int, dev: int, ino: int, size: int, mtime_ns: int,
             mapped: bool = False, stage: int | None = None) -> Seen | None:
        kind = path_class(path, self.roar_dir)
        if kind != "lineage":
            if kind != "roar":
                self.system_reads.add(path)
            return None
        if (dev, ino) in self.changed_inodes or path in self.changed:
            return None   # the job's own data, not an input
        seen = self.inputs.get(path)
        if seen is None:
            seen = self.inputs[path] = Seen(path, size=size, mtime_ns=mtime_ns)
            if self.on_input:
                self.on_input(path, size, mtime_ns)
        seen.read_by.add(pid)
        seen.mapped |= mapped
        if stage is not None:
            seen.stages.add(stage)
        return seen

    def executed(self, path: str, pid: int, stage: int | None = None) -> None:
        """An exec'd program is read by the kernel: an input like any other."""
        kind = path_class(path, self.roar_dir)
        if kind != "lineage":
            if kind == "system":
                self.system_reads.add(path)
                self.system_programs.add(path)
            return
        if path in self.changed:
            return
        try:
            st = os.stat(path)
        except OSError:
            return
        seen = self.read(path, pid, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, stage=stage)
        if seen is not None:
            seen.executed = True

    def change(self, path: str, pid: int, dev: int | None = None, ino: int | None = None) -> None:
        if dev is not None and ino is not None:
            self.changed_inodes.add((dev, ino))
        if path_class(path, self.roar_dir) != "lineage":
            self.other_writes.add(path)
            return
        seen = self.changed.get(path)
        if seen is None:
            seen = self.changed[path] = Seen(path)
        seen.changed_by.add(pid)

    def rename(self, old: str, new: str, pid: int) -> None:
        """new now holds old's content: renamed into place. Paths under a
        renamed directory move with it."""
        self.renamed.append((old, new))
        prefix = old + "/"
        for path in [p for p in self.changed if p == old or p.startswith(prefix)]:
            seen = self.changed.pop(path)
            moved = new + path[len(old):]
            seen.path = moved
            self.changed.setdefault(moved, seen).changed_by.update(seen.changed_by)
        self.change(new, pid)

    def link(self, new: str, pid: int) -> None:
        self.change(new, pid)

    def unlink(self, path: str) -> None:
        self.deleted.append(path)
        self.changed.pop(path, None)

    def outputs(self) -> list[Seen]:
        """Changed paths that exist as regular files now, in first-change order."""
        result = []
        for path, seen in self.changed.items():
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                result.append(seen)
        return result
