"""Facts the tracer must never invent or drop silently: 32-bit programs, reused
pids, events lost to a full buffer or map, paths too deep for a naive walk,
O_RDONLY|O_TRUNC. Some run `roar run`; the rest drive the loader directly to
see the kernel's events and counters."""

from __future__ import annotations

import ctypes as ct
import os
import re
import subprocess
from pathlib import Path

import pytest

from roar.tracer import events as ev
from tests.trace.conftest import roar, roar_run
from tests.trace.strace_sets import strace_sets

pytestmark = pytest.mark.ebpf

TRACKED_MAX = 65536   # max_entries of the kernel's `tracked` map


def kernel_trace(cmd: list, cwd: Path, before=None) -> tuple[int, bytes, list, list[int]]:
    """Run cmd traced by a bare Tracer: (exit code, stdout, decoded events, counters).
    cmd waits for a byte on stdin, so it is tracked before it does anything."""
    from roar.tracer import loader

    loader.preflight()
    got: list = []
    with loader.Tracer(lambda raw: got.append(ev.decode(raw))) as tracer:
        if before:
            before(tracer)
        proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        tracer.track(proc.pid)
        proc.stdin.write(b"x")
        proc.stdin.close()
        pidfd = os.pidfd_open(proc.pid)
        try:
            while not tracer.wait(pidfd, 100):
                pass
        finally:
            os.close(pidfd)
        out = proc.stdout.read()
        proc.wait()
        tracer.drain()
        counters = tracer.counters()
    return proc.returncode, out, got, counters


def file_events(events: list, name: str) -> list:
    return [e for e in events if isinstance(e, ev.FileAccess) and e.path.endswith(b"/" + name.encode())]


# 1. 32-bit programs


def test_ia32_program_file_io_is_decoded(programs: Path, tmp_path: Path) -> None:
    if not (programs / "copy32").exists():
        pytest.skip("gcc -m32 -static does not work here: install gcc-multilib")
    for root in (tmp_path / "job", tmp_path / "strace"):
        root.mkdir()
        (root / "in32.txt").write_text("thirty-two\n")
        (root / "keep32.txt").write_text("kept\n")
    root = (tmp_path / "job").resolve()
    traced = roar_run([str(programs / "copy32")], root)
    assert traced.returncode == 0, traced.stderr
    assert traced.inputs(root) == {"in32.txt"}
    assert traced.outputs(root) == {"out32.txt"}   # keep32.txt: no phantom ftruncate
    twin = (tmp_path / "strace").resolve()
    s_in, s_out = strace_sets([str(programs / "copy32")], twin, twin / ".roar")
    assert {p[len(str(twin)) + 1:] for p in s_in if p.startswith(str(twin) + "/")} == {"in32.txt"}
    assert {p[len(str(twin)) + 1:] for p in s_out if p.startswith(str(twin) + "/")} == {"out32.txt"}


# 2. pid reuse


def test_reused_pid_reads_again(programs: Path, tmp_path: Path) -> None:
    (tmp_path / "reuse.txt").write_text("reuse\n")
    code, out, events, _ = kernel_trace([str(programs / "pidreuse")], tmp_path)
    if code == 77:
        pytest.skip("could not make the kernel hand out the same pid again")
    assert code == 0
    pid = int(out)
    reads = [e for e in file_events(events, "reuse.txt") if e.tgid == pid and e.access & ev.ACC_READ]
    assert len(reads) == 2, "the second process with the same pid had its read suppressed"


def test_reused_pid_is_a_second_process_in_the_record(programs: Path, tmp_path: Path) -> None:
    (tmp_path / "reuse.txt").write_text("reuse\n")
    traced = roar_run([str(programs / "pidreuse")], tmp_path)
    if traced.returncode == 77:
        pytest.skip("could not make the kernel hand out the same pid again")
    assert traced.returncode == 0, traced.stderr
    exe = str(programs / "pidreuse")
    pids = [p["pid"] for p in traced.record["processes"] if p["exe"] == exe]
    assert len(pids) - len(set(pids)) == 1   # the first child and the one that got its pid back


# 3. silent loss paths


def test_untracked_child_is_counted_and_warned(programs: Path, tmp_path: Path) -> None:
    from roar.record.filesets import FileSets
    from roar.tracer import libbpf
    from roar.tracer.collector import Collector

    def fill_tracked(tracer) -> None:   # leave one slot: the command's own
        lb = libbpf.lib()
        fd = tracer.map_fd("tracked")
        one = ct.c_uint8(1)
        for i in range(TRACKED_MAX - 1):
            key = ct.c_uint32(0x40000000 + i)   # above any pid_max
            assert lb.map_update(fd, ct.byref(key), ct.byref(one), 0) == 0

    code, _, events, counters = kernel_trace([str(programs / "gatefork")], tmp_path, fill_tracked)
    assert code == 0
    assert (tmp_path / "child.txt").exists()
    assert counters[ev.STAT_UNTRACKED] == 1
    forks = [e for e in events if isinstance(e, ev.Fork)]
    assert len(forks) == 1 and forks[0].untracked
    collector = Collector(FileSets(str(tmp_path / ".roar")))
    for e in events:
        collector.handle(e)
    assert any(f"process {forks[0].child} " in w and "could not be traced" in w for w in collector.warnings())


def test_dropped_read_comes_back_on_the_next_read(tmp_path: Path) -> None:
    """roar is stopped while one shell reads 600 files: a 64 KiB buffer drops
    some of those events. The shell reads them all again once roar runs: each
    file whose event was lost is reported then."""
    for i in range(600):
        (tmp_path / f"f{i}").write_text(f"{i}\n")
    script = ("kill -STOP $PPID; for i in $(seq 0 599); do read x < f$i; done; kill -CONT $PPID; "
              "sleep 0.5; for i in $(seq 0 599); do read x < f$i; done")
    proc = roar("run", "-q", "--ring-buffer", "64K", "--", "bash", "-c", script, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    import json

    record = json.loads(roar("show", "@1", "--json", cwd=tmp_path).stdout)
    assert record["tracer"]["dropped"] > 0
    names = {os.path.basename(f["path"]) for f in record["inputs"]}
    assert names >= {f"f{i}" for i in range(600)}


def test_dedup_counter_is_named_for_what_it_counts() -> None:
    assert ev.STAT_SEEN_FAILED == 2 and not hasattr(ev, "STAT_SEEN_FULL")


# 4. deep paths


@pytest.fixture
def deep_root(tmp_path: Path):
    """A directory for a very deep tree, removed here with rm -rf: pytest's own clean-up of
    old temporary directories (shutil.rmtree) recurses once per level and fails on it."""
    root = (tmp_path / "deep").resolve()
    root.mkdir()
    yield root
    subprocess.run(["rm", "-rf", str(root)], check=False)


def _deep_dir(root: Path, components: int, width: int) -> list[str]:
    """root/d.../d... `components` deep; the chdir steps to get there (each under PATH_MAX)."""
    fd = os.open(root, os.O_RDONLY)
    names = []
    for i in range(components):
        name = f"d{i:0{width}d}"
        os.mkdir(name, dir_fd=fd)
        nfd = os.open(name, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nfd
        names.append(name)
    with open(os.open("in.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as f:
        f.write("deep\n")
    os.close(fd)
    return ["/".join(names[i:i + 300]) for i in range(0, len(names), 300)]


COPY_AT = ("import os, sys\n"
           "for step in sys.argv[1:]: os.chdir(step)\n"
           "data = open('in.txt').read()\n"
           "open('out.txt', 'w').write(data)\n")


def test_path_deeper_than_64_components(deep_root: Path) -> None:
    root = deep_root
    steps = _deep_dir(root, 70, 2)
    traced = roar_run(["python3", "-c", COPY_AT, *steps], root)
    assert traced.returncode == 0, traced.stderr
    deep = "/".join(steps)
    assert traced.inputs(root) == {f"{deep}/in.txt"}
    assert traced.outputs(root) == {f"{deep}/out.txt"}
    assert not any("vanished" in w for w in traced.record["warnings"])


def test_path_too_long_is_unresolved_not_wrong(deep_root: Path) -> None:
    root = deep_root
    steps = _deep_dir(root, 1100, 4)   # 6.6 KB: past PATH_MAX
    traced = roar_run(["python3", "-c", COPY_AT, *steps], root)
    assert traced.returncode == 0, traced.stderr
    record = traced.record
    named = [f["path"] for f in record["inputs"] + record["outputs"]] + record["warnings"]
    wrong = [t for t in named if re.search(r"(^|\s)/d\d{4}/", t)]   # a tail of the path passed off as one
    assert not wrong
    assert record["tracer"]["paths_unresolved"] >= 1
    assert any("too long" in w and "in.txt" in w for w in record["warnings"])


# 6. O_RDONLY|O_TRUNC


def test_rdonly_trunc_is_a_change(programs: Path, tmp_path: Path) -> None:
    for root in (tmp_path / "job", tmp_path / "strace"):
        root.mkdir()
        (root / "data.txt").write_text("data\n")
    root = (tmp_path / "job").resolve()
    traced = roar_run([str(programs / "rdonlytrunc")], root)
    assert traced.returncode == 0
    assert (root / "data.txt").stat().st_size == 0
    assert traced.outputs(root) == {"data.txt"}
    twin = (tmp_path / "strace").resolve()
    _, s_out = strace_sets([str(programs / "rdonlytrunc")], twin, twin / ".roar")
    assert s_out == {str(twin / "data.txt")}
