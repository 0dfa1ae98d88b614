"""Device numbers: the kernel encodes a device as MAJOR<<20|MINOR, stat as
os.makedev(major, minor); the two agree only when the major is 0 (tmpfs, most
overlays). Every scenario runs on the root filesystem, on a tmpfs and on an
ext4 loop mount, so a fact keyed by (device, inode) is matched on each."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.trace import test_scenarios
from tests.trace.test_scenarios import SCENARIOS, Scenario, sh, write

pytestmark = pytest.mark.ebpf

FILESYSTEMS = ("root", "tmpfs", "ext4")


def _linked(root: Path, **files: str) -> None:
    """Each name=target pair: a hard link to target, made before the job."""
    for name, target in files.items():
        os.link(root / target, root / name)


def _truncate_setup(root: Path) -> None:
    write(root, **{"a.txt": "abcdef\n"})
    _linked(root, **{"b.txt": "a.txt"})


def _exec_setup(root: Path) -> None:
    write(root, **{"tool.sh": "#!/bin/sh\necho old\n"})
    (root / "tool.sh").chmod(0o755)
    _linked(root, **{"alias.sh": "tool.sh"})


# The job changes an inode under one name (its device as stat or as the kernel
# gives it), then reads it under another: its own data, not an input. No strace
# twin: strace_sets knows paths, not inodes, and takes the other name for an input.
DEVICE_SCENARIOS = [
    # truncate(2) by name: the collector stats the path
    Scenario("truncate_by_name_read_by_link",
             sh("/usr/bin/python3 -c 'import os; os.truncate(\"a.txt\", 3)'; cat b.txt > out.txt"),
             set(), {"a.txt", "out.txt"}, _truncate_setup, strace=False),
    # an exec'd program: the collector stats it
    Scenario("write_then_exec_by_link", sh("printf '#!/bin/sh\\necho new\\n' > tool.sh; ./alias.sh > out.txt"),
             set(), {"tool.sh", "out.txt"}, _exec_setup, strace=False),
    # both facts from the kernel
    Scenario("write_then_read_by_link", sh("echo new > a.txt; cat b.txt > out.txt"),
             set(), {"a.txt", "out.txt"}, _truncate_setup, strace=False),
]


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def _on_root_fs() -> Path:
    """A fresh directory on the filesystem mounted at / (not a tmpfs /tmp)."""
    root_dev = os.stat("/").st_dev
    for base in (tempfile.gettempdir(), "/var/tmp", "/"):
        if os.path.isdir(base) and os.stat(base).st_dev == root_dev:
            return Path(tempfile.mkdtemp(prefix="roar-devices-", dir=base)).resolve()
    pytest.fail("no writable directory on the root filesystem")


@pytest.fixture(scope="module", params=FILESYSTEMS)
def filesystem(request, tmp_path_factory):
    """(kind, a directory on that filesystem); mounts are made here and removed after."""
    kind = request.param
    if kind == "root":
        top = _on_root_fs()
        try:
            yield kind, top
        finally:
            shutil.rmtree(top, ignore_errors=True)
        return
    base = tmp_path_factory.mktemp(kind)
    mnt = base / "mnt"
    mnt.mkdir()
    if kind == "tmpfs":
        _run("mount", "-t", "tmpfs", "-o", "size=64m", "roar-test", str(mnt))
    else:
        img = base / "ext4.img"
        _run("truncate", "-s", "64M", str(img))
        _run("mkfs.ext4", "-q", str(img))
        _run("mount", "-o", "loop", str(img), str(mnt))
    try:
        yield kind, mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
        if os.path.ismount(mnt):
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.fixture
def fs_dir(filesystem, request) -> Path:
    kind, top = filesystem
    path = top / request.node.name.replace("/", "_").replace("[", "_").replace("]", "")
    path.mkdir()
    return path


def test_filesystems_are_what_they_claim(filesystem) -> None:
    kind, top = filesystem
    dev = os.stat(top).st_dev
    if kind == "root":
        assert dev == os.stat("/").st_dev
    elif kind == "tmpfs":
        assert os.major(dev) == 0
    else:
        # a loop device: its major is not 0, so the two encodings differ
        assert os.major(dev) != 0 and os.path.ismount(top)


@pytest.mark.parametrize("scenario", SCENARIOS + DEVICE_SCENARIOS, ids=lambda s: s.name)
def test_scenario_on_each_filesystem(scenario: Scenario, programs: Path, fs_dir: Path) -> None:
    test_scenarios.test_scenario(scenario, programs, fs_dir)

