"""The real tracer, one behaviour per scenario: exact input and output sets
inside the scenario's directory, and the same sets as `strace -f` sees them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import blake3
import pytest

from tests.trace.conftest import roar_run
from tests.trace.strace_sets import strace_sets

pytestmark = pytest.mark.ebpf

NON_UTF8 = os.fsdecode(b"caf\xe9.txt")
NEWLINE = "new\nline.txt"


def write(root: Path, **files: str) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@dataclass
class Scenario:
    name: str
    cmd: Callable[[Path], list]            # programs dir -> argv
    inputs: set[str]
    outputs: set[str]
    setup: Callable[[Path], None] = lambda root: None
    exit_code: int = 0
    strace: bool = True
    extra: dict = field(default_factory=dict)


def sh(script: str) -> Callable[[Path], list]:
    return lambda _bin: ["sh", "-c", script]


def prog(name: str, *args: str) -> Callable[[Path], list]:
    return lambda bin_: [str(bin_ / name), *args]


def _symlinked(root: Path) -> None:
    write(root, **{"real.txt": "real\n"})
    (root / "link.txt").symlink_to("real.txt")


def _odd_names(root: Path) -> None:
    (root / NON_UTF8).write_text("latin-1 name\n")
    (root / NEWLINE).write_text("newline name\n")


SCENARIOS = [
    Scenario("cat_redirect", sh("cat a.txt > b.txt"), {"a.txt"}, {"b.txt"},
             lambda r: write(r, **{"a.txt": "alpha\n"})),
    Scenario("cp_copy_file_range", lambda b: ["cp", "a.txt", "b.txt"], {"a.txt"}, {"b.txt"},
             lambda r: write(r, **{"a.txt": "alpha\n" * 1000})),
    Scenario("pipeline", sh("cat a.txt | sort | uniq > b.txt"), {"a.txt"}, {"b.txt"},
             lambda r: write(r, **{"a.txt": "b\na\nb\n"})),
    Scenario("rename_over_target", sh("printf new > t.tmp && mv t.tmp target.txt"), set(), {"target.txt"},
             lambda r: write(r, **{"target.txt": "old\n"})),
    Scenario("created_and_deleted", sh("echo x > gone.txt; rm gone.txt"), set(), set()),
    Scenario("append", sh("echo more >> log.txt"), set(), {"log.txt"},
             lambda r: write(r, **{"log.txt": "first\n"})),
    Scenario("rdwr_only_read", prog("rdwr"), {"data.txt"}, set(),
             lambda r: write(r, **{"data.txt": "data\n"})),
    Scenario("touch_new_file", lambda b: ["touch", "new.txt"], set(), {"new.txt"}),
    Scenario("written_then_read", sh("echo x > w.txt; cat w.txt > r.txt"), set(), {"w.txt", "r.txt"}),
    Scenario("threads", prog("threads"), set(), {"thread_a.txt", "thread_b.txt"}),
    Scenario("vfork_posix_spawn", prog("spawn"), {"a.txt", "b.txt"}, {"vforked.txt", "spawned.txt"},
             lambda r: write(r, **{"a.txt": "a\n", "b.txt": "b\n"})),
    Scenario("fork_tree_200", prog("forktree", "200"), set(), {f"out/{i}" for i in range(200)},
             lambda r: (r / "out").mkdir()),
    Scenario("chdir_relative", sh("cd sub && cat in.txt > ../out.txt"), {"sub/in.txt"}, {"out.txt"},
             lambda r: write(r, **{"sub/in.txt": "in\n"})),
    Scenario("openat_dirfd", prog("dirfd"), {"sub/in.txt"}, {"moved.txt"},
             lambda r: write(r, **{"sub/in.txt": "in\n"})),
    Scenario("symlinked_input", sh("cat link.txt > out.txt"), {"real.txt"}, {"out.txt"}, _symlinked),
    Scenario("mmap_input", prog("mmapread"), {"mapped.txt"}, {"copy.txt"},
             lambda r: write(r, **{"mapped.txt": "mapped bytes\n"})),
    Scenario("static_binary", prog("statcopy"), {"s_in.txt"}, {"s_out.txt"},
             lambda r: write(r, **{"s_in.txt": "static\n"})),
    Scenario("exit_0", sh("cat a.txt > b.txt; exit 0"), {"a.txt"}, {"b.txt"},
             lambda r: write(r, **{"a.txt": "a\n"})),
    Scenario("exit_3", sh("cat a.txt > b.txt; exit 3"), {"a.txt"}, {"b.txt"},
             lambda r: write(r, **{"a.txt": "a\n"}), exit_code=3),
    Scenario("sigkill", sh("cat a.txt > b.txt; kill -9 $$"), {"a.txt"}, {"b.txt"},
             lambda r: write(r, **{"a.txt": "a\n"}), exit_code=128 + 9),
    Scenario("odd_file_names", sh("for f in *.txt; do cat \"$f\"; done > out.bin"), {NON_UTF8, NEWLINE},
             {"out.bin"}, _odd_names),
    Scenario("exec_missing_program", sh("./no-such-program-roar; cat a.txt > b.txt"), {"a.txt"}, {"b.txt"},
             lambda r: write(r, **{"a.txt": "a\n"})),
]


def _materialise(scenario: Scenario, root: Path) -> None:
    root.mkdir(parents=True)
    scenario.setup(root)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_scenario(scenario: Scenario, programs: Path, tmp_path: Path) -> None:
    root = (tmp_path / "job").resolve()
    _materialise(scenario, root)
    traced = roar_run(scenario.cmd(programs), root)

    assert traced.returncode == scenario.exit_code, traced.stderr
    assert traced.inputs(root) == scenario.inputs
    assert traced.outputs(root) == scenario.outputs
    assert traced.record["exit_code"] == scenario.exit_code
    assert traced.record["tracer"]["dropped"] == 0
    for entry in traced.record["inputs"] + traced.record["outputs"]:
        if entry["path"].startswith(str(root)) and os.path.exists(entry["path"]):
            data = Path(entry["path"]).read_bytes()
            if entry in traced.record["outputs"]:
                assert entry["hash"] == blake3.blake3(data).hexdigest(), entry["path"]

    if scenario.strace:
        twin = (tmp_path / "strace").resolve()
        _materialise(scenario, twin)
        s_inputs, s_outputs = strace_sets(scenario.cmd(programs), twin, twin / ".roar")
        rel = lambda paths: {p[len(str(twin)) + 1:] for p in paths if p.startswith(str(twin) + "/")}  # noqa: E731
        # strace's syscalls go through roar's own FileSets: it catches tracer gaps, not
        # classification errors, so the hand-written sets stay the first oracle
        assert rel(s_inputs) == traced.inputs(root), "roar and strace disagree on inputs"
        assert rel(s_outputs) == traced.outputs(root), "roar and strace disagree on outputs"
        assert (rel(s_inputs), rel(s_outputs)) == (scenario.inputs, scenario.outputs)


# scenarios whose expected sets are both empty on purpose
NOTHING_EXPECTED = {"created_and_deleted"}


def test_every_scenario_has_hand_written_sets() -> None:
    """Expected sets are written out per scenario, never computed: a scenario
    with no expectation would pass on whatever roar and strace agree on."""
    names = [s.name for s in SCENARIOS]
    assert len(names) == len(set(names))
    for s in SCENARIOS:
        assert isinstance(s.inputs, set) and isinstance(s.outputs, set), s.name
        assert all(isinstance(p, str) and p and not p.startswith("/") for p in s.inputs | s.outputs), s.name
        assert bool(s.inputs or s.outputs) != (s.name in NOTHING_EXPECTED), s.name


def test_fork_tree_records_every_process(programs: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    traced = roar_run([str(programs / "forktree"), "200"], tmp_path)
    forktree = [p for p in traced.record["processes"] if p["exe"] == str(programs / "forktree")]
    assert len(forktree) == 200
    pids = {p["pid"] for p in forktree}
    assert sum(1 for p in forktree if p["ppid"] not in pids) == 1   # one root, the rest its descendants
    assert all(p["exit_code"] == 0 for p in forktree)


def test_sigkill_recorded_as_signal(tmp_path: Path) -> None:
    traced = roar_run(["sh", "-c", "kill -9 $$"], tmp_path)
    assert traced.returncode == 137
    assert traced.record["exit"] == {"code": None, "signal": 9, "status": "killed"}


def test_failed_exec_is_recorded(tmp_path: Path) -> None:
    traced = roar_run(["sh", "-c", "./no-such-program-roar; true"], tmp_path)
    assert traced.returncode == 0
    failed = {os.path.basename(f["path"]) for f in traced.record["failed_execs"]}
    assert failed == {"no-such-program-roar"}
    assert all(f["errno"] == 2 for f in traced.record["failed_execs"])


def test_input_hash_is_of_content_as_read(tmp_path: Path) -> None:
    """The job reads f.txt, then overwrites it: the input hash is the old content's."""
    (tmp_path / "f.txt").write_text("original\n")
    traced = roar_run(["sh", "-c", "cat f.txt > /dev/null; sleep 0.3; echo changed > f.txt"], tmp_path)
    path = tmp_path.resolve() / "f.txt"
    assert traced.entry("inputs", path)["hash"] == blake3.blake3(b"original\n").hexdigest()
    assert traced.entry("outputs", path)["hash"] == blake3.blake3(b"changed\n").hexdigest()
    assert traced.record["read_and_written"] == [str(path)]


def test_process_tree_and_argv(tmp_path: Path) -> None:
    traced = roar_run(["sh", "-c", "/bin/echo hello world > out.txt"], tmp_path)
    by_exe = {p["exe"]: p for p in traced.record["processes"]}
    echo = by_exe["/usr/bin/echo"]
    assert echo["argv"] == ["/bin/echo", "hello", "world"]
    root = next(p for p in traced.record["processes"] if p["argv"][:1] == ["sh"])
    assert echo["ppid"] == root["pid"]
    assert traced.record["argv"] == ["sh", "-c", "/bin/echo hello world > out.txt"]
