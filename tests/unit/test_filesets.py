"""The input/output rules on facts built in memory (docs/lineage-rules.md)."""

from __future__ import annotations

from pathlib import Path

from roar.record.filesets import FileSets, path_class


def sets(tmp_path: Path) -> FileSets:
    return FileSets(str(tmp_path / ".roar"))


def test_read_is_input_and_reported_once(tmp_path: Path) -> None:
    seen = []
    fs = FileSets(str(tmp_path / ".roar"), on_input=lambda p, s, m: seen.append(p))
    fs.read(f"{tmp_path}/a", 1, 1, 10, 3, 0)
    fs.read(f"{tmp_path}/a", 2, 1, 10, 3, 0)
    assert list(fs.inputs) == [f"{tmp_path}/a"]
    assert fs.inputs[f"{tmp_path}/a"].read_by == {1, 2}
    assert seen == [f"{tmp_path}/a"]


def test_written_then_read_is_not_input(tmp_path: Path) -> None:
    fs = sets(tmp_path)
    fs.change(f"{tmp_path}/w", 1, 1, 11)
    fs.read(f"{tmp_path}/w", 2, 1, 11, 1, 0)
    assert fs.inputs == {}


def test_renamed_own_data_is_not_input(tmp_path: Path) -> None:
    fs = sets(tmp_path)
    fs.change(f"{tmp_path}/t.tmp", 1, 1, 12)
    fs.rename(f"{tmp_path}/t.tmp", f"{tmp_path}/t", 1)
    fs.read(f"{tmp_path}/t", 2, 1, 12, 1, 0)     # same inode, new name
    assert fs.inputs == {}


def test_outputs_exist_at_the_end(tmp_path: Path) -> None:
    fs = sets(tmp_path)
    (tmp_path / "kept").write_text("x")
    fs.change(f"{tmp_path}/kept", 1, 1, 1)
    fs.change(f"{tmp_path}/gone", 1, 1, 2)
    fs.unlink(f"{tmp_path}/gone")
    fs.change(f"{tmp_path}/never-made", 1, 1, 3)
    assert [s.path for s in fs.outputs()] == [f"{tmp_path}/kept"]


def test_rename_into_place_and_directory_rename(tmp_path: Path) -> None:
    fs = sets(tmp_path)
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "f").write_text("x")
    (tmp_path / "moved").write_text("y")
    fs.change(f"{tmp_path}/old/f", 1, 1, 4)
    fs.rename(f"{tmp_path}/old", f"{tmp_path}/new", 1)        # directory renamed
    fs.rename(f"{tmp_path}/untouched", f"{tmp_path}/moved", 1)  # renamed into place
    assert {s.path for s in fs.outputs()} == {f"{tmp_path}/new/f", f"{tmp_path}/moved"}
    assert fs.renamed == [(f"{tmp_path}/old", f"{tmp_path}/new"), (f"{tmp_path}/untouched", f"{tmp_path}/moved")]


def test_system_pseudo_and_workspace_files_are_kept_apart(tmp_path: Path) -> None:
    fs = sets(tmp_path)
    fs.read("/usr/lib/libc.so.6", 1, 1, 5, 1, 0)
    fs.read("/proc/self/status", 1, 1, 6, 1, 0)
    fs.read(f"{tmp_path}/.roar/roar.db", 1, 1, 7, 1, 0)
    fs.change("/dev/null", 1, 1, 8)
    assert fs.inputs == {}
    assert fs.system_reads == {"/usr/lib/libc.so.6", "/proc/self/status"}
    assert fs.other_writes == {"/dev/null"}


def test_path_classes() -> None:
    assert path_class("/etc/passwd", "/w/.roar") == "system"
    assert path_class("/lib64/ld-linux-x86-64.so.2", "/w/.roar") == "system"
    assert path_class("/sys/kernel", "/w/.roar") == "pseudo"
    assert path_class("/w/.roar/jobs/x", "/w/.roar") == "roar"
    assert path_class("/w/.roaring", "/w/.roar") == "lineage"
    assert path_class("/home/u/data.csv", "/w/.roar") == "lineage"
    assert path_class("/home/u/venv/lib/python3.11/site-packages/numpy/__init__.py", "/w/.roar") == "system"
    assert path_class("/root/.pyenv/versions/3.11.7/lib/python3.11/os.py", "/w/.roar") == "system"
    assert path_class("/home/u/project/lib/python_helpers.py", "/w/.roar") == "lineage"


def test_roar_own_python_hook_is_roar_not_an_input(tmp_path: Path) -> None:
    from roar.record import filesets

    hook = f"{filesets.ROAR_HOOK_DIR}/sitecustomize.py"
    fs = sets(tmp_path)
    fs.read(hook, 1, 1, 30, 1, 0)
    assert path_class(hook, str(tmp_path / ".roar")) == "roar"
    assert fs.inputs == {} and fs.system_reads == set()


def test_program_and_library_are_marked_for_the_programs_rule(tmp_path: Path) -> None:
    prog = tmp_path / "tool"
    prog.write_bytes(b"\x7fELF")
    fs = sets(tmp_path)
    fs.executed(str(prog), 1, stage=3)
    fs.read(f"{tmp_path}/lib.so", 1, 1, 31, 1, 0, mapped=True, stage=3)
    assert fs.inputs[str(prog)].executed and fs.inputs[str(prog)].stages == {3}
    assert fs.inputs[f"{tmp_path}/lib.so"].mapped
    fs.executed("/usr/bin/sort", 1)
    assert "/usr/bin/sort" in fs.system_programs
