"""Helpers for the real-tracer tests: build the C test programs, run a
command under `roar run`, and run the same command under `strace -f`."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PROGRAMS = Path(__file__).parent / "programs"


@dataclass
class Traced:
    returncode: int
    stderr: str
    record: dict

    def files(self, role: str, root: Path) -> set[str]:
        """Paths of inputs or outputs inside root, relative to it (exact bytes
        from path_b64 where a name is not UTF-8)."""
        prefix = str(root) + "/"
        paths = {exact_path(f) for f in self.record[role]}
        return {p[len(prefix):] for p in paths if p.startswith(prefix)}

    def inputs(self, root: Path) -> set[str]:
        return self.files("inputs", root)

    def outputs(self, root: Path) -> set[str]:
        return self.files("outputs", root)

    def entry(self, role: str, path: Path) -> dict:
        return next(f for f in self.record[role] if f["path"] == str(path))


def exact_path(entry: dict) -> str:
    if "path_b64" in entry:
        return os.fsdecode(base64.b64decode(entry["path_b64"]))
    return entry["path"]


def roar(*args: str | bytes, cwd: Path, check: bool = False, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "roar", *args], cwd=cwd, capture_output=True,
                          check=check, **kw)


def roar_run(cmd: list, cwd: Path, step: int = 1) -> Traced:
    proc = roar("run", "-q", "--", *cmd, cwd=cwd)
    shown = roar("show", f"@{step}", "--json", cwd=cwd)
    assert shown.returncode == 0, shown.stderr.decode()
    return Traced(proc.returncode, proc.stderr.decode(), json.loads(shown.stdout))


def held_links(pid: int | str = "self") -> dict[int, int]:
    """{link id: program id} for the BPF links process pid holds a descriptor of."""
    links = {}
    for info in Path(f"/proc/{pid}/fdinfo").iterdir():
        try:
            fields = dict(line.split(":", 1) for line in info.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if "link_id" in fields and "prog_id" in fields:
            links[int(fields["link_id"])] = int(fields["prog_id"])
    return links


def bpftool(*args: str) -> list[dict]:
    out = subprocess.run(["bpftool", *args, "--json"], capture_output=True, check=True).stdout
    return json.loads(out or b"[]")


def linked(prog_ids: set[int]) -> set[int]:
    """Those of prog_ids that some link on the machine still attaches, held by any process."""
    return prog_ids & {link["prog_id"] for link in bpftool("link", "show")}


@pytest.fixture(scope="session")
def programs(tmp_path_factory) -> Path:
    """The C test programs, compiled once, outside every scenario directory."""
    out = tmp_path_factory.mktemp("bin")
    for src in PROGRAMS.glob("*.c"):
        if src.stem.endswith("32"):   # ia32 programs need gcc-multilib: a test skips when it is missing
            subprocess.run(["gcc", "-O1", "-Wall", "-m32", "-static", "-o", str(out / src.stem), str(src)],
                           capture_output=True)
            continue
        flags = ["-static"] if src.stem == "statcopy" else []
        subprocess.run(["gcc", "-O1", "-Wall", "-pthread", *flags, "-o", str(out / src.stem), str(src)],
                       check=True)
    return out
