"""Which BPF object roar loads: roar/tracer/objects.py, on BTF files written here and on
the running kernel's own."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from roar.tracer import objects


def btf_file(path: Path, names: list[str], magic: int = 0xEB9F) -> Path:
    """A BTF blob with no types and `names` in its string section (which starts with "\\0")."""
    strings = b"\0" + b"".join(n.encode() + b"\0" for n in names)
    types = b"\0" * 16   # never read: the names are found in the string section alone
    header = struct.pack("<HBBIIIII", magic, 1, 0, 24, 0, len(types), len(types), len(strings))
    path.write_bytes(header + types + strings)
    return path


@pytest.mark.parametrize(("release", "expected"), [
    ("6.18.44-fc-v1147", True), ("6.2.0", True), ("6.2rc1", True), ("6.10", True), ("10.0", True),
    ("6.1.0-13-amd64", False), ("6.1rc9", False), ("5.15.0-91-generic", False), ("6", False), ("x.y", False),
])
def test_release_at_least_6_2(release: str, expected: bool) -> None:
    assert objects.release_at_least(release, 6, 2) is expected


def test_a_name_counts_only_as_a_whole_string(tmp_path: Path) -> None:
    btf = btf_file(tmp_path / "btf", ["task_struct", "bpf_rdonly_cast", "file"])
    assert objects.btf_has_name("bpf_rdonly_cast", btf)
    assert objects.btf_has_name("task_struct", btf)
    assert not objects.btf_has_name("bpf_rdonly_ca", btf)      # a prefix of a name
    assert not objects.btf_has_name("rdonly_cast", btf)        # a suffix
    assert not objects.btf_has_name("bpf_cast_to_kern_ctx", btf)


def test_not_btf_or_missing_has_no_names(tmp_path: Path) -> None:
    bad_magic = btf_file(tmp_path / "bad", ["bpf_rdonly_cast"], 0x1234)
    assert not objects.btf_has_name("bpf_rdonly_cast", bad_magic)
    assert not objects.btf_has_name("bpf_rdonly_cast", tmp_path / "missing")
    (tmp_path / "short").write_bytes(b"\x9f\xeb")
    assert not objects.btf_has_name("bpf_rdonly_cast", tmp_path / "short")
    os.symlink(btf_file(tmp_path / "real", ["bpf_rdonly_cast"]), tmp_path / "link")
    assert not objects.btf_has_name("bpf_rdonly_cast", tmp_path / "link")   # not followed


def test_an_older_release_is_asked_of_its_btf(tmp_path: Path) -> None:
    with_kfunc = btf_file(tmp_path / "with", ["bpf_rdonly_cast"])
    without = btf_file(tmp_path / "without", ["bpf_cast_to_kern_ctx"])
    assert objects.has_rdonly_cast("5.14.0-362.el9.x86_64", with_kfunc)   # a backport
    assert not objects.has_rdonly_cast("5.14.0-362.el9.x86_64", without)
    assert not objects.has_rdonly_cast("6.1.0", tmp_path / "missing")
    assert objects.has_rdonly_cast("6.2.0", without)   # mainline 6.2+: not read


@pytest.mark.skipif(not objects.BTF_PATH.exists(), reason="kernel has no BTF")
def test_the_running_kernels_btf_is_read_whole() -> None:
    # the kernel hands its BTF out a page at a time: bpf_rdonly_cast lies megabytes in (6.18)
    assert objects.btf_has_name("task_struct")
    assert not objects.btf_has_name("roar_no_such_function")
    if objects.release_at_least(os.uname().release, 6, 2):
        assert objects.btf_has_name("bpf_rdonly_cast")


def test_pick_falls_back_to_the_object_for_every_kernel(monkeypatch, tmp_path: Path) -> None:
    objects.pick.cache_clear()
    monkeypatch.setattr(objects, "BTF_OBJECT", tmp_path / "roar-btf.bpf.o")   # not installed
    try:
        assert objects.pick() == objects.BASE_OBJECT
        (tmp_path / "roar-btf.bpf.o").write_bytes(b"\x7fELF")
        objects.pick.cache_clear()
        expected = objects.BTF_OBJECT if objects.has_rdonly_cast() else objects.BASE_OBJECT
        assert objects.pick() == expected
    finally:
        objects.pick.cache_clear()


def test_function_offset_matches_the_symbol_table() -> None:
    """envread.function_offset agrees with readelf on libc's getenv, and finds nothing where
    there is no such function (a binary without it, a file that is not ELF)."""
    import shutil
    import subprocess

    from roar.tracer.envread import function_offset, libc_paths

    if not libc_paths() or shutil.which("readelf") is None:
        pytest.skip("no libc or no readelf")
    libc = libc_paths()[0]
    out = subprocess.run(["readelf", "-W", "--dyn-syms", "-S", libc], capture_output=True, text=True,
                         check=True).stdout
    sym = next(line.split() for line in out.splitlines()
               if line.split()[-1:] and line.split()[-1].split("@")[0] == "getenv" and "FUNC" in line)
    value, ndx = int(sym[1], 16), int(sym[6])
    section = next(line for line in out.splitlines() if line.strip().startswith(f"[{ndx:2d}]")
                   or line.strip().startswith(f"[{ndx}]"))
    fields = section.split("]", 1)[1].split()
    addr, offset = int(fields[2], 16), int(fields[3], 16)
    assert function_offset(libc, "getenv") == value - addr + offset
    assert function_offset(libc, "no_such_function_here") is None
    assert function_offset("/etc/hostname", "getenv") is None
