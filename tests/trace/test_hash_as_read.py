"""An input's hash is of the bytes the job read, whatever the job does to the file next.

Each first read of a user file holds the reader until roar's pinner has hashed the same
open file (docs/tracer.md, "Input hashes"). Every pattern below rewrites, replaces,
truncates or deletes what it read right after reading it; each runs RUNS times, and every
input of every run must carry the hash of the content it had before the job started.
Before the pinner, sed -i was wrong (or unhashed) 30 times in 30.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import blake3
import pytest

pytestmark = pytest.mark.ebpf

RUNS = 20
ORIGINAL = b"a line of the original content\n" * 64
UNKNOWN = "changed before roar could hash it"


def roar(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "roar", *args], cwd=cwd, capture_output=True, timeout=120)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    from roar.store.workspace import Workspace

    Workspace.create(tmp_path)
    return tmp_path


def snapshot(root: Path) -> dict[str, str]:
    """blake3 of every file under root but .roar, by absolute path."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".roar"]
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.isfile(path) and not os.path.islink(path):
                out[path] = blake3.blake3(Path(path).read_bytes()).hexdigest()
    return out


def run_exact(work: Path, cmd: list[str], prepare: Callable[[], None], must_read: list[str],
              runs: int = RUNS) -> None:
    """Run cmd `runs` times, each after prepare(); every input that existed before the run
    has its pre-run hash, and each of must_read is among the inputs."""
    wrong: list[tuple[int, str, str | None]] = []
    step = 0
    for _ in range(runs):
        prepare()
        before = snapshot(work)
        proc = roar("run", "-q", "--", *cmd, cwd=work)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        step += 1
        record = json.loads(roar("show", f"@{step}", "--json", cwd=work).stdout)
        inputs = {i["path"]: i["hash"] for i in record["inputs"] if i["path"].startswith(str(work))}
        for name in must_read:
            assert str(work / name) in inputs, f"{name} is not an input: {sorted(inputs)[:5]}"
        wrong += [(step, p, h) for p, h in inputs.items() if p in before and h != before[p]]
        assert not [w for w in record["warnings"] if UNKNOWN in w], record["warnings"]
    assert not wrong, f"{len(wrong)} inputs without the hash of the bytes read: {wrong[:3]}"


def one_file(work: Path) -> Callable[[], None]:
    return lambda: (work / "f").write_bytes(ORIGINAL)


def test_sed_in_place(work: Path) -> None:
    run_exact(work, ["sed", "-i", "s/a/b/", "f"], one_file(work), ["f"])


def test_read_seek_rewrite(work: Path) -> None:
    code = "f = open('f', 'r+'); d = f.read(); f.seek(0); f.write(d.replace('a', 'b')); f.close()"
    run_exact(work, [sys.executable, "-c", code], one_file(work), ["f"])


def test_sort_output_over_its_input(work: Path) -> None:
    run_exact(work, ["sort", "-o", "f", "f"], one_file(work), ["f"])


def test_editor_saves_by_rename(work: Path) -> None:
    code = ("d = open('f').read(); open('f.new', 'w').write(d.upper()); "
            "import os; os.rename('f.new', 'f')")
    run_exact(work, [sys.executable, "-c", code], one_file(work), ["f"])


def test_truncate_after_read(work: Path) -> None:
    code = ("import os; fd = os.open('f', os.O_RDWR); os.read(fd, 1 << 20); os.ftruncate(fd, 0); "
            "os.write(fd, b'new'); os.close(fd)")
    run_exact(work, [sys.executable, "-c", code], one_file(work), ["f"])


def test_read_then_delete(work: Path) -> None:
    code = "import os; open('f').read(); os.unlink('f')"
    run_exact(work, [sys.executable, "-c", code], one_file(work), ["f"])


def test_mmap_write_through(work: Path) -> None:
    """Read through a shared map, then write through it: no write() call ever names the file."""
    code = ("import mmap, os; fd = os.open('f', os.O_RDWR); m = mmap.mmap(fd, 0); d = m[:]; "
            "m[:3] = b'XYZ'; m.flush(); m.close(); os.close(fd)")
    run_exact(work, [sys.executable, "-c", code], one_file(work), ["f"])


@pytest.mark.slow
def test_read_then_rewrite_2000_small_files(work: Path) -> None:
    names = [f"d/{i:04d}" for i in range(2000)]

    def prepare() -> None:
        (work / "d").mkdir(exist_ok=True)
        for i, name in enumerate(names):
            (work / name).write_bytes(b"%d original\n" % i)

    code = ("import os\nfor n in sorted(os.listdir('d')):\n p = 'd/' + n\n"
            " d = open(p, 'rb').read()\n open(p, 'wb').write(d + b'more')\n")
    run_exact(work, [sys.executable, "-c", code], prepare, names[:1] + names[-1:], runs=5)


def _git(work: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    subprocess.run(["git", "-C", str(work), *args], check=True, capture_output=True, env=env)


@pytest.fixture
def repo(work: Path) -> Path:
    if shutil.which("git") is None:
        pytest.fail("git is not installed (scripts/setup installs it)")
    _git(work, "init", "-q")
    (work / "x").write_text("0\n")
    _git(work, "add", "x")
    _git(work, "commit", "-q", "-m", "first")
    return work


def test_git_add_rewrites_its_index(repo: Path) -> None:
    """git reads .git/index, writes index.lock and renames it over the index."""
    counter = iter(range(1, 10_000))

    def prepare() -> None:
        (repo / "x").write_text(f"{next(counter)}\n")

    run_exact(repo, ["git", "add", "x"], prepare, [".git/index", "x"])


@pytest.mark.slow
def test_git_gc_repacks_what_it_read(repo: Path) -> None:
    """gc reads loose objects and packs, writes a new pack and deletes what it read."""
    counter = iter(range(1, 10_000))

    def prepare() -> None:
        for _ in range(3):
            (repo / "x").write_text(f"{next(counter)}\n")
            _git(repo, "commit", "-q", "-am", "more")

    env_cmd = ["git", "-c", "gc.auto=0", "-c", "core.fsync=none", "gc", "-q", "--prune=now"]
    run_exact(repo, env_cmd, prepare, [".git/HEAD"], runs=10)
