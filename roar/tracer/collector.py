"""Turns the kernel's events into the job's process tree and file facts.

Paths of open files arrive canonical (resolved from the dentry in the
kernel). Name arguments of rename/link/unlink/truncate arrive as passed, with
the canonical directory they are relative to; they are joined here, and the
parent directory is resolved once more in case the name itself walks through
a symlink.

A path the kernel could not walk in full, or one too long to open, is never
taken for a file's path: it is left out and named in a warning. A pid that is
reused within the job is a new process; the earlier one stays in the record.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from roar.record.filesets import FileSets
from roar.tracer import events as ev
from roar.tracer.filestate import FileState


@dataclass
class Process:
    pid: int
    ppid: int | None
    start_ns: int
    exe: str | None = None
    argv: list[str] = field(default_factory=list)
    cwd: str | None = None
    end_ns: int | None = None
    wait_status: int | None = None
    privileged: bool = False     # exec'd a set-user-ID (etc.) program: not traced after it
    argv_truncated: bool = False  # the kernel kept only the start of argv (4 KiB)
    untracked: bool = False      # the kernel's process map was full at its fork: not traced
    # programs: each exec starts a stage (a job-wide serial); a process forked inherits its
    # parent's. The programs it exec'd before its last are its exec chain (a shim, a wrapper).
    stage: int = 0
    fork_stage: int | None = None
    execd: bool = False
    exec_chain: list[dict[str, Any]] = field(default_factory=list)
    helper: bool = False         # forked by a toolchain wrapper before it exec'd the real program

    def as_record(self) -> dict[str, Any]:
        exit_code = signal = None
        if self.wait_status is not None:
            if os.WIFSIGNALED(self.wait_status):
                signal = os.WTERMSIG(self.wait_status)
            else:
                exit_code = os.WEXITSTATUS(self.wait_status)
        entry = {"pid": self.pid, "ppid": self.ppid, "exe": self.exe, "argv": self.argv,
                 "cwd": self.cwd, "exit_code": exit_code, "signal": signal}
        if self.privileged:
            entry["privileged"] = True
        if self.argv_truncated:
            entry["argv_truncated"] = True
        if self.untracked:
            entry["untracked"] = True
        if self.exec_chain:
            entry["exec_chain"] = self.exec_chain
        if self.helper:
            entry["wrapper_helper"] = True
        return entry


def _str(b: bytes) -> str:
    return os.fsdecode(b)


def user_dev(kernel_dev: int) -> int:
    """The kernel's device number (MAJOR<<20 | MINOR) in stat's encoding (os.makedev):
    the file sets compare (device, inode) pairs from both, which agree only for major 0."""
    return os.makedev(kernel_dev >> 20, kernel_dev & 0xFFFFF)


class Collector:
    def __init__(self, files: FileSets, root_pid: int | None = None, parent_pid: int | None = None,
                 cwd: str | None = None, clock_ns: int = 0) -> None:
        self.files = files
        # every process of the job in order; an earlier process whose pid was reused is kept
        # under (pid, start_ns), the current one under its pid
        self.processes: dict[int | tuple[int, int], Process] = {}
        self.failed_execs: list[dict[str, Any]] = []
        self.events = 0
        self.unresolved: list[tuple[int, str, bytes]] = []   # (pid, what, path fragment)
        # variables read through getenv: name -> the first value read (None: not set), unredacted
        self.env_read: dict[str, str | None] = {}
        self.env_cut: list[str] = []   # warnings about names or values too long to keep whole
        self.stage_owner: dict[int, Process] = {}   # stage serial -> the process that exec'd it
        self.stage_exes: dict[int, str | None] = {}
        self.stage_scripts: dict[int, str] = {}
        # path -> the file's state at its first read (roar.tracer.pinner.FileState)
        self.read_states: dict[str, FileState] = {}
        if root_pid is not None:
            self.add_root(root_pid, parent_pid, cwd, clock_ns)

    def add_root(self, pid: int, ppid: int | None, cwd: str | None, clock_ns: int) -> None:
        self.processes[pid] = Process(pid, ppid, clock_ns, cwd=cwd)

    def live_pids(self) -> list[int]:
        return [p.pid for p in self.processes.values() if p.end_ns is None]

    def warnings(self) -> list[str]:
        """What the tracer saw but could not record: untraced processes, unresolved paths."""
        out = [f"process {p.pid} ({p.exe}) could not be traced (the tracer's process map was full): "
               "it and what it starts are not recorded" for p in self.processes.values() if p.untracked]
        for pid, what, path in self.unresolved:
            proc = self.processes.get(pid)
            shown = _str(path[1:] if path.startswith(ev.PATH_CUT) else path)[-200:]
            out.append(f"process {pid} ({proc.exe if proc else None}): the path of {what} is too long or "
                       f"deep to record (...{shown}): it is left out")
        return out

    def _path(self, pid: int, raw: bytes, what: str) -> str | None:
        if ev.unresolved(raw):
            self.unresolved.append((pid, what, raw))
            return None
        return _str(raw)

    def feed(self, raw: bytes) -> None:
        self.handle(ev.decode(raw))

    def handle(self, e: ev.Event) -> None:
        self.events += 1
        if isinstance(e, ev.FileAccess):
            self._file(e)
        elif isinstance(e, ev.Fork):
            parent = self.processes.get(e.tgid)
            earlier = self.processes.get(e.child)
            if earlier is not None:   # the pid was reused: keep the earlier process, in its place
                self.processes = {((k, earlier.start_ns) if k == e.child else k): v
                                  for k, v in self.processes.items()}
            self.processes[e.child] = Process(
                e.child, e.tgid, e.ts, exe=parent.exe if parent else None,
                argv=list(parent.argv) if parent else [], cwd=parent.cwd if parent else None,
                argv_truncated=parent.argv_truncated if parent else False,
                untracked=e.untracked, stage=parent.stage if parent else 0,
                fork_stage=parent.stage if parent else None)
        elif isinstance(e, ev.Exec):
            self._exec(e)
        elif isinstance(e, ev.PathOp):
            self._pathop(e)
        elif isinstance(e, ev.EnvRead):
            self._env(e)
        elif isinstance(e, ev.Exit):
            proc = self.processes.get(e.tgid)
            if proc is None:
                proc = self.processes[e.tgid] = Process(e.tgid, None, e.ts)
            proc.end_ns, proc.wait_status = e.ts, e.wait_status

    def _file(self, e: ev.FileAccess) -> None:
        path = self._path(e.tgid, e.path, "a file it accessed")
        if path is None:
            return
        dev = user_dev(e.dev)
        if e.access & ev.READ_ACCESS:
            if path not in self.read_states:
                self.read_states[path] = FileState(dev, e.ino, e.generation, e.size, e.mtime_ns, e.ctime_ns)
            proc = self.processes.get(e.tgid)
            self.files.read(path, e.tgid, dev, e.ino, e.size, e.mtime_ns,
                            mapped=bool(e.access & ev.ACC_MMAP_READ), stage=proc.stage if proc else None)
        if e.access & ev.CHANGE_ACCESS:
            self.files.change(path, e.tgid, dev, e.ino)

    def _env(self, e: ev.EnvRead) -> None:
        name = _str(e.name)
        if e.name_cut:
            self.env_cut.append(f"process {e.tgid} read a variable whose name is longer than "
                                f"{ev.ENV_NAME_MAX - 1} bytes ({name[:40]}...): it is left out")
            return
        if name in self.env_read:    # another process's read, or an LRU repeat: the first is kept
            return
        self.env_read[name] = None if e.value is None else _str(e.value)
        if e.value_cut:
            self.env_cut.append(f"the value of {name} is longer than {ev.ENV_VALUE_MAX - 1} bytes: "
                                "only its start is recorded")

    def _exec(self, e: ev.Exec) -> None:
        if e.ret < 0:
            path = self._path(e.tgid, ev.join_path(e.cwd, e.filename), "a program it failed to run")
            self.failed_execs.append({"pid": e.tgid, "path": path, "errno": -e.ret,
                                      "error": os.strerror(-e.ret)})
            return
        proc = self.processes.get(e.tgid)
        if proc is None:
            proc = self.processes[e.tgid] = Process(e.tgid, None, e.ts)
        if proc.execd:    # it replaces a program of its own: that one was a wrapper
            proc.exec_chain.append({"exe": proc.exe, "argv": proc.argv})
        proc.execd = True
        proc.stage = len(self.stage_owner) + 1
        self.stage_owner[proc.stage] = proc
        proc.exe = self._path(e.tgid, e.exe, "its program") if e.exe else None
        proc.argv = [_str(a) for a in e.argv]
        self.stage_exes[proc.stage] = proc.exe
        proc.argv_truncated = e.argv_truncated
        proc.cwd = self._path(e.tgid, e.cwd, "its working directory")
        proc.privileged = e.privileged
        if proc.exe:
            self.files.executed(proc.exe, e.tgid, proc.stage)
        if proc.cwd is None and not e.filename.startswith(b"/"):
            return
        script = os.path.realpath(_str(ev.join_path(e.cwd, e.filename)))
        if script != proc.exe:      # "#!" script: the kernel read it too
            self.files.executed(script, e.tgid, proc.stage)
            self.stage_scripts[proc.stage] = script

    def wrapper_stages(self, is_context: Any) -> set[int]:
        """The stages that ran inside a toolchain wrapper: a program (outside the lineage, per
        `is_context(path)`) that its process replaced by another exec, and every stage of the
        processes it forked first (its helpers, which it waited for). Marks the helpers."""
        wrapper = {s for s, p in self.stage_owner.items() if s != p.stage
                   and is_context(self.stage_program(s))}
        inside = set(wrapper)
        own: dict[int, list[int]] = {}
        for s, p in self.stage_owner.items():
            own.setdefault(id(p), []).append(s)
        for proc in self.processes.values():   # in fork order: a parent before its children
            if proc.fork_stage is not None and proc.fork_stage in inside:
                proc.helper = True
                inside.add(proc.stage)
                inside.update(own.get(id(proc), []))
        return inside

    def stage_program(self, stage: int) -> str | None:
        """The program a stage ran: the "#!" script when there was one, else the binary."""
        return self.stage_scripts.get(stage) or self.stage_exes.get(stage)

    def _pathop(self, e: ev.PathOp) -> None:
        for directory, name in ((e.dir1, e.name1), (e.dir2, e.name2) if e.name2 else (b"/", b"/")):
            if not name or ev.unresolved(ev.join_path(directory, name) if directory else name):
                self.unresolved.append((e.tgid, f"a name it passed to {ev.OP_NAMES.get(e.op)}",
                                        directory + b"/" + name))
                return
        first = _resolve(e.dir1, e.name1)
        if e.op == ev.OP_RENAME:
            self.files.rename(first, _resolve(e.dir2, e.name2), e.tgid)
        elif e.op == ev.OP_LINK:
            self.files.link(_resolve(e.dir2, e.name2), e.tgid)
        elif e.op == ev.OP_UNLINK:
            self.files.unlink(first)
        elif e.op == ev.OP_TRUNCATE:
            try:
                st = os.stat(first)
                self.files.change(first, e.tgid, st.st_dev, st.st_ino)
            except OSError:
                self.files.change(first, e.tgid)


def _resolve(directory: bytes, name: bytes) -> str:
    joined = _str(ev.join_path(directory, name))
    parent, base = os.path.split(joined)
    return os.path.join(os.path.realpath(parent), base) if parent else joined
