"""`roar run` / `roar build`: trace one command and record it as a job.

Order matters for cost and safety: everything that can fail for a reason the
user can fix (arguments, privileges, workspace, the program's path) is checked
before anything is attached (the object itself may already be loading in the
background, roar.tracer.preload); it is attached only while the command runs;
the record is written once, atomically, after the command ended.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roar import __version__, privilege
from roar.errors import UsageError
from roar.record import job as jobrec
from roar.record.filesets import FileSets, Seen
from roar.store.workspace import Workspace
from roar.tracer.filestate import FileState
from roar.tracer.loader import DEFAULT_RING_BYTES, preflight

POLL_MS = 100
SYNC_HASH_MAX = 1 << 20


@dataclass
class RunOptions:
    kind: str = "run"                 # run | build
    ring_bytes: int = DEFAULT_RING_BYTES
    verbose: bool = False
    hash_algorithms: tuple[str, ...] = ("blake3",)
    labels: dict[str, str] = field(default_factory=dict)
    # hold each first read for its hash (roar.tracer.pinner); off: by path, and a debugger
    # can attach inside the job
    hold_reads: bool = True


@dataclass
class RunResult:
    record: dict[str, Any]
    exit_code: int


class _InputHasher:
    """Each input's hash, of the bytes the job read.

    With the pinner on (roar.tracer.pinner), the reader of each user file is held at its
    first read until the pinner has hashed that same open file: those hashes are exact
    whatever the job does next. A file the pinner could not take, or any input when there
    is no pinner, is hashed by path: as soon as its first read is seen when there is no
    pinner, at the end otherwise, and kept only if the path still names the inode, size and
    mtime the kernel saw at that read."""

    def __init__(self, algorithms: tuple[str, ...], cache) -> None:
        self.algorithms = algorithms
        self.cache = cache
        self.pool = None    # a thread pool, made only when a big input needs it
        self.pending: dict[str, tuple[Any, int, int]] = {}   # path -> (result or future, size, mtime)
        self.pinning = False          # the pinner hashes first reads: nothing to hash early
        self.pins: dict[tuple[int, int, int], Any] = {}   # (dev, ino, generation) -> pinner.Pin

    def submit(self, path: str, size: int, mtime_ns: int) -> None:
        from roar.artifacts.hashing import hash_file

        if self.pinning:
            outcome: Any = None
        elif size <= SYNC_HASH_MAX:   # small: hash now, the job may rewrite it in a moment
            outcome = _hash_with_stat(hash_file, path, self.algorithms, self.cache)
        else:
            if self.pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="roar-hash")
            outcome = self.pool.submit(_hash_with_stat, hash_file, path, self.algorithms, self.cache)
        self.pending[path] = (outcome, size, mtime_ns)

    def result(self, path: str, state: FileState | None = None
               ) -> tuple[dict[str, str] | None, int | None, str | None]:
        """(hashes, size, warning) for an input; state: the file's at its first read."""
        from roar.artifacts.hashing import hash_file

        outcome, size, mtime_ns = self.pending[path]
        pin = self.pins.get(state.inode) if state else None
        if pin is not None and (pin.hashes is not None or pin.size is not None):
            if (pin.size, pin.mtime_ns, pin.ctime_ns) != (state.size, state.mtime_ns, state.ctime_ns):
                return {}, size, (f"input {path} changed between its read and its hashing (another "
                                  "process wrote to it): its hash is unknown")
            if pin.hashes is not None:
                return pin.hashes, pin.size, None
            return {}, size, f"input {path} could not be hashed as read: {pin.why}; its hash is unknown"
        # not held for, or its descriptor could not be taken: by path, if it is still that file
        if outcome is None:
            outcome = _hash_with_stat(hash_file, path, self.algorithms, self.cache)
        hashes, st = outcome if isinstance(outcome, tuple) else outcome.result()
        if hashes is None and st is not None:   # kept in the record, with no hash
            return {}, size, f"input {path} changed while it was hashed: its hash is unknown"
        if hashes is None:
            return None, size, f"input {path} vanished before it could be hashed"
        if st is not None and not (state.same_content(st) if state else
                                   (st.st_mtime_ns, st.st_size) == (mtime_ns, size)):
            # hashed after the job rewrote or replaced it: a hash of other bytes than it read
            # would be a wrong fact (a job reading its own output, after `sed -i`), so none is
            # recorded
            return {}, size, (f"input {path} changed before roar could hash it: its hash is unknown "
                              "(the job rewrote what it read)")
        return hashes, size, None

    def remember_pins(self) -> None:
        """Put the pinner's digests in the hash cache: the next job reading an unchanged file
        is not held for its whole hashing again."""
        from types import SimpleNamespace

        from roar.artifacts.hashing import remember

        for pin in self.pins.values():
            if pin.hashes:
                st = SimpleNamespace(st_dev=pin.dev, st_ino=pin.ino, st_size=pin.size,
                                     st_mtime_ns=pin.mtime_ns, st_ctime_ns=pin.ctime_ns)
                remember(self.cache, st, pin.hashes)

    def close(self) -> None:
        if self.pool:
            self.pool.shutdown(wait=True)


def _hash_with_stat(hash_file, path: str, algorithms: tuple[str, ...], cache):
    from roar.artifacts.hashing import FileChanged

    try:
        st = os.stat(path)
        # expect: the hash is of the content this stat saw, the one compared with the tracer's
        return hash_file(path, algorithms, cache=cache, expect=st), st
    except FileChanged:
        return None, st
    except OSError:
        return None, None


@dataclass
class _Observed:
    """What tracing one command produced."""

    status: int                 # wait status of the command
    interrupted: bool           # roar was signalled and passed it on
    started_at: float
    ended_at: float
    collector: Any              # roar.tracer.collector.Collector
    files: FileSets
    counters: list[int]         # kernel counters (events.h roar_stat)


def run_job(argv: list[str], options: RunOptions) -> RunResult:
    """Under sudo, roar is root only to attach the tracer and start the command:
    the workspace, the program lookup and everything after the start happen as
    the invoking user (roar.privilege, docs/security.md)."""
    from roar.tracer import launcher, preload

    if not argv:
        raise UsageError("no command given: use `roar run [--] CMD [ARGS...]`")
    preflight()      # privileges and kernel first: nothing else matters without them
    user = privilege.invoking_user()
    loaded = None
    # The preload thread loads as root: the workspace is prepared as the user meanwhile, in
    # this thread alone. glibc's as_user() would change the preload thread too: where only
    # that is at hand, the load finishes first.
    overlap = not user or privilege.in_this_thread.supported
    if not overlap:
        loaded = preload.take(options.ring_bytes, options.verbose)
    try:
        with privilege.in_this_thread(user) if user and overlap else _as_user(user):
            workspace = Workspace.find_or_create()
            cwd = os.getcwd()
            env = launcher.child_environment(user)
            program = launcher.resolve_program(argv[0], env)
            cache = workspace.hash_cache()   # an unchanged file is never hashed twice
            from roar.record import context

            git_before = context.capture_git(cwd)   # before the job's own writes make the tree dirty
    except BaseException:
        # no job (no workspace, no such command...): the preload thread, maybe still inside
        # libbpf, finishes before roar exits with its one-line error
        if overlap:
            unused = preload.take(options.ring_bytes, options.verbose)
            if unused is not None:
                unused.close()
                if unused.source == "spare":   # the next job should not pay for this one's refusal
                    from roar.tracer import spare

                    spare.start()
        raise
    if overlap:
        loaded = preload.take(options.ring_bytes, options.verbose)
    try:
        return _trace_and_record(argv, options, cwd, workspace, user, env, program, cache, loaded,
                                 git_before)
    finally:
        cache.close()


@contextlib.contextmanager
def _as_user(user: privilege.User | None):
    """As the user for the block (the whole process), when there is one."""
    if not user:
        yield
        return
    privilege.as_user(user)
    try:
        yield
    finally:
        privilege.regain()


def _trace_and_record(argv, options, cwd, workspace, user, env, program, cache, loaded,
                      git_before) -> RunResult:
    from roar.tracer import launcher
    from roar.tracer.collector import Collector
    from roar.tracer.loader import Tracer
    from roar.tracer.pinner import Pinner

    hasher = _InputHasher(options.hash_algorithms, cache)
    pinner = None
    files = FileSets(str(workspace.dir), on_input=hasher.submit)
    collector = Collector(files)
    started_at, start_ns = time.time(), time.monotonic_ns()
    tracer = Tracer(collector.feed, ring_bytes=options.ring_bytes, verbose=options.verbose, loaded=loaded)
    try:
        from roar.tracer.envread import with_python_hook

        child = launcher.Launch(program, argv, with_python_hook(env), user)
        collector.add_root(child.pid, os.getpid(), cwd, start_ns)
        tracer.track(child.pid)
        pinner = Pinner(tracer, options.hash_algorithms, user, cache)
        if options.hold_reads:
            hasher.pinning = pinner.start(child.pid)
        else:
            pinner.off_reason = "asked for with --no-hold"
        child.forward_signals(collector.live_pids)
        if user:
            privilege.as_user(user)   # root's part is done: the rest runs as the user
        try:
            child.release()
            status = None
            while status is None:
                ended = tracer.wait(child.pidfd, POLL_MS)
                status = child.poll_exit()
                if ended and status is None:
                    # exited, but its tracer (the pinner) has not let its exit through yet
                    time.sleep(0.01)
        finally:
            child.restore_terminal()
            child.close()
        tracer.drain()
        counters = _counters(tracer, user, hasher)
    finally:
        try:
            if pinner is not None:
                pinner.finish()    # processes the job left behind are let go
        finally:
            tracer.close(wait=False)   # detached now; the uprobes finish detaching meanwhile
            from roar.tracer import spare

            spare.start()              # the next job's object, loaded while this one finishes
    hasher.pins = pinner.pins()
    if user:
        privilege.drop(user)

    observed = _Observed(status, child.interrupted, started_at, time.time(), collector, files, counters)
    roles = _program_roles(files, collector, workspace)
    program_hashes: dict[str, dict[str, str]] = {}
    record = _build_record(argv, options, cwd, observed, hasher, cache, roles, program_hashes)
    from roar.record.context.env import add_reads

    add_reads(record, collector, tracer, env)   # record["env_read"]: the variables the tree read
    hasher.close()
    hasher.remember_pins()
    if pinner.off_reason:
        record["warnings"].append(f"input hashes are taken by path after the fact: {pinner.off_reason}")
    _add_context(record, workspace, env, git_before)
    _add_programs(record, roles, program_hashes, files, options, cache, workspace)
    workspace.add_job(record)
    tracer.join()      # nothing stays attached once roar run returns
    return RunResult(record, jobrec.exit_code_of(status))


def _counters(tracer, user: privilege.User | None, hasher: _InputHasher) -> list[int]:
    """The kernel counters. Linux 6.5+ lets the map be read through roar's descriptor
    after roar gave up root; older kernels need root back for that one call, once no
    hashing thread is left to open a path as root in that moment."""
    from roar.errors import TracerError

    try:
        return tracer.counters()
    except TracerError:
        if not user:
            raise
    hasher.close()
    privilege.regain()
    try:
        return tracer.counters()
    finally:
        privilege.as_user(user)


def _program_roles(files: FileSets, collector, workspace: Workspace) -> dict[str, str]:
    """{path: role} of the programs and libraries read that are context, not inputs (one
    query of the index for those a recorded job produced)."""
    from roar.record.context import programs
    from roar.store import index

    try:   # read-only and without healing: a busy index must not hold the job up here
        workspace._check_db_files()
        conn = index.connect(workspace._db_open_path(), readonly=True, display=workspace.db_path)
        conn.execute("PRAGMA busy_timeout = 0")
    except Exception:  # no index yet or unreadable: nothing was produced by a recorded job
        conn = None
    try:
        return programs.classify(files, collector, str(workspace.root), conn)
    finally:
        if conn is not None:
            conn.close()


def _add_programs(record: dict[str, Any], roles: dict[str, str], hashes: dict[str, dict[str, str]],
                  files: FileSets, options: RunOptions, cache, workspace: Workspace) -> None:
    """context.programs: the programs the job ran and the libraries it mapped, outside the lineage."""
    from roar.artifacts.hashing import hash_file
    from roar.record.context import programs

    for path in files.system_programs:
        try:
            hashes[path] = hash_file(path, options.hash_algorithms, cache=cache)
        except OSError:
            hashes[path] = {}
    record["context"]["programs"] = programs.entries(roles, hashes, files.system_programs,
                                                     Path(workspace.fd_path("cache")))


def _inputs(files: FileSets, hasher: _InputHasher, roles: dict[str, str],
            program_hashes: dict[str, dict[str, str]], warnings: list[str],
            states: dict[str, FileState]) -> list[dict[str, Any]]:
    """The input entries; a program or library outside the lineage goes to program_hashes."""
    inputs = []
    for seen in files.inputs.values():
        hashes, size, warning = hasher.result(seen.path, states.get(seen.path))
        if seen.path in roles:
            program_hashes[seen.path] = hashes or {}
            continue
        if warning:
            warnings.append(warning)
        if hashes is not None:
            inputs.append(_file_entry(seen, hashes, size, seen.read_by))
    return inputs


def _build_record(argv: list[str], options: RunOptions, cwd: str, observed: _Observed,
                  hasher: _InputHasher, cache, roles: dict[str, str] | None = None,
                  program_hashes: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    from roar.artifacts.hashing import FileChanged, hash_file

    files, collector = observed.files, observed.collector
    dropped, truncated, seen_failed, untracked, pin_failed = observed.counters
    started_at, ended_at, status = observed.started_at, observed.ended_at, observed.status
    warnings: list[str] = []
    inputs = _inputs(files, hasher, roles or {}, {} if program_hashes is None else program_hashes, warnings,
                     collector.read_states)
    outputs = []
    for seen in files.outputs():
        size, hashes = None, {}
        try:
            st = os.stat(seen.path)
            size = st.st_size
            hashes = hash_file(seen.path, options.hash_algorithms, cache=cache, expect=st)
        except FileChanged:   # still written to (a process the job left behind): no hash
            warnings.append(f"output {seen.path} changed while it was hashed: its hash is unknown")
        except (FileNotFoundError, NotADirectoryError):   # removed since the job ended
            warnings.append(f"output {seen.path} vanished before it could be hashed")
            continue
        except OSError as exc:   # kept in the record, with no hash, never dropped unsaid
            warnings.append(f"output {seen.path} could not be hashed ({exc.strerror or exc}): "
                            "its hash is unknown")
        outputs.append(_file_entry(seen, hashes, size, seen.changed_by))
    if dropped:
        warnings.append(f"{dropped} tracer events were lost (ring buffer full): the file sets may be "
                        "incomplete; rerun with a larger --ring-buffer (e.g. 64M)")
    if truncated:
        warnings.append(f"{truncated} paths were too long or deep to record in full")
    warnings += collector.warnings()   # names each untraced process and each unresolved path
    unnamed = untracked - sum(1 for p in collector.processes.values() if p.untracked)
    if unnamed > 0:   # their fork events were lost too
        warnings.append(f"{unnamed} more processes could not be traced (the tracer's process map was full)")
    warnings += [f"process {p.pid} ran {p.exe}, which gains privileges (set-user-ID or capabilities): "
                 "it and what it starts are not traced" for p in collector.processes.values() if p.privileged]
    output_paths = {o["path"] for o in outputs}
    return jobrec.new_record(
        options.kind, argv, cwd, started_at, ended_at,
        exit=jobrec.exit_fields(status, observed.interrupted),
        exit_code=jobrec.exit_code_of(status),
        processes=[p.as_record() for p in collector.processes.values()],
        failed_execs=collector.failed_execs,
        inputs=inputs,
        outputs=outputs,
        read_and_written=sorted(p for p in files.inputs if p in output_paths),
        deleted=list(files.deleted),
        renamed=[list(r) for r in files.renamed],
        system_reads=sorted(files.system_reads),
        other_writes=sorted(files.other_writes),
        tracer={"backend": "ebpf", "roar_version": __version__, "events": collector.events,
                "dropped": dropped, "paths_truncated": truncated,
                "paths_unresolved": len(collector.unresolved),
                "dedup_map_full": seen_failed, "untracked": untracked, "pin_failed": pin_failed,
                "ring_buffer_bytes": options.ring_bytes},
        warnings=warnings,
        labels=dict(options.labels),
    )


def _add_context(record: dict[str, Any], workspace: Workspace, env: dict[str, str],
                 git_before: tuple[Any, list[str]]) -> None:
    """The world the job ran in: machine, packages it used, environment, and git as it
    was before the command started, with the paths of the work tree the job changed."""
    from roar.record import context

    record["context"] = context.capture(
        cwd=record["cwd"], argv=record["argv"], env=env, processes=record["processes"],
        paths_read=record["system_reads"] + [i["path"] for i in record["inputs"]],
        cache_dir=Path(workspace.fd_path("cache")), git_before=git_before)
    git = record["context"].get("git")
    if git and git.get("root"):
        prefix = git["root"].rstrip("/") + "/"
        changed = [o["path"] for o in record["outputs"]] + list(record["deleted"])
        git["changed_by_job"] = sorted({p[len(prefix):] for p in changed if p.startswith(prefix)})
    record["warnings"] += context.warnings(record["context"])


def _file_entry(seen: Seen, hashes: dict[str, str], size: int | None, pids: set[int]) -> dict[str, Any]:
    return {"path": seen.path, "hash": hashes.get("blake3"), "hashes": hashes, "size": size,
            "pids": sorted(pids)}
