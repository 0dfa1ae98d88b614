"""The system-path table exists once, in bpf/system_paths.h: the kernel side is
built from it, and roar/record/filesets.py must hold the same prefixes. The C
function is compiled here for the host and asked about the same paths as
path_class, so the two cannot drift apart unnoticed."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from roar.record import filesets
from tests.trace.conftest import roar_run

HEADER = Path(__file__).resolve().parents[2] / "bpf" / "system_paths.h"

# (path, a system or pseudo path on both sides?)
PATHS = [
    ("/usr/bin/python3", True), ("/usr", False), ("/usrlocal/x", False),
    ("/lib/x86_64-linux-gnu/libc.so.6", True), ("/lib32/x", True), ("/lib64/ld.so", True),
    ("/libx32/x", True), ("/library/data.csv", False), ("/lib", False), ("/libfoo/x", False),
    ("/bin/sh", True), ("/binary/x", False), ("/sbin/init", True), ("/sbinx", False),
    ("/etc/passwd", True), ("/etcetera/x", False), ("/proc/1/stat", True), ("/process/x", False),
    ("/sys/kernel/x", True), ("/system/x", False), ("/dev/null", True), ("/devices/x", False),
    ("/home/u/lib/x", False), ("/home/u/usr/x", False), ("/", False), ("/x", False),
]


def _table(name: str) -> tuple[str, ...]:
    text = HEADER.read_text()
    body = re.search(rf"#define {name}\(X\)((?:.*\\\n)*.*)", text)
    assert body, f"{name} not in {HEADER}"
    return tuple(re.findall(r'X\("([^"]*)"\)', body.group(1)))


def test_filesets_holds_the_headers_table() -> None:
    assert filesets.PSEUDO_PREFIXES == _table("ROAR_PSEUDO_PREFIXES")
    assert filesets.SYSTEM_PREFIXES == _table("ROAR_SYSTEM_PREFIXES")


def test_every_prefix_ends_in_a_slash() -> None:
    for prefix in _table("ROAR_PSEUDO_PREFIXES") + _table("ROAR_SYSTEM_PREFIXES"):
        assert prefix.startswith("/") and prefix.endswith("/"), prefix


@pytest.fixture(scope="module")
def c_system_path(tmp_path_factory):
    """roar_system_path() from the header, compiled for the host: a path per line in,
    1 or 0 per line out."""
    if shutil.which("gcc") is None:
        pytest.skip("no gcc")
    out = tmp_path_factory.mktemp("syspath")
    src = out / "syspath.c"
    src.write_text(f'#include <stdio.h>\n#include <string.h>\n#include "{HEADER}"\n'
                   "int main(void) { char line[4096 + 8];\n"
                   "  while (fgets(line, 4096, stdin)) {\n"
                   "    line[strcspn(line, \"\\n\")] = 0;\n"
                   "    memset(line + strlen(line), 0, 8);   /* the kernel's buffer: NUL after the path */\n"
                   "    printf(\"%d\\n\", roar_system_path(line)); }\n  return 0; }\n")
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", "-o", str(out / "syspath"), str(src)], check=True)

    def run(paths: list[str]) -> list[bool]:
        done = subprocess.run([str(out / "syspath")], input="".join(p + "\n" for p in paths),
                              capture_output=True, text=True, check=True)
        return [line == "1" for line in done.stdout.split()]
    return run


def test_kernel_side_classifies_as_filesets_does(c_system_path) -> None:
    paths = [p for p, _ in PATHS]
    kernel = dict(zip(paths, c_system_path(paths)))
    for path, expected in PATHS:
        assert kernel[path] == expected, path
        if path not in ("/proc", "/sys", "/dev"):
            assert (filesets.path_class(path, "/w/.roar") in ("system", "pseudo")) == expected, path


def test_relative_path_is_not_lineage_to_the_kernel_side(c_system_path) -> None:
    assert c_system_path(["data.csv"]) == [True]


@pytest.mark.ebpf
def test_library_directory_is_user_data_to_the_kernel() -> None:
    """/library/... is not /lib/...: a second process's read of a file there is its own fact
    (the kernel side reports a system file's read once per job, not once per process)."""
    top = Path(tempfile.mkdtemp(prefix="library-roar-", dir="/"))
    try:
        (top / "data.txt").write_text("data\n")
        traced = roar_run(["sh", "-c", "cat data.txt > /dev/null; cat data.txt > /dev/null"], top)
        assert traced.returncode == 0, traced.stderr
        cats = {p["pid"] for p in traced.record["processes"] if p["exe"] and p["exe"].endswith("/cat")}
        assert len(cats) == 2
        assert set(traced.entry("inputs", top / "data.txt")["pids"]) == cats
    finally:
        shutil.rmtree(top, ignore_errors=True)
