"""Wheels for the wheel test, offline: roar's dependencies repacked from the
distributions installed beside the running interpreter (the same versions the
suite runs with), and a copy of the source tree to build roar's own wheel in.

Building in a copy keeps the checkout untouched: the build runs `make` in bpf/
and writes build/ and *.egg-info."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement  # a dependency of pytest

SKIP_META = {"INSTALLER", "REQUESTED", "RECORD", "direct_url.json"}


def copy_source(root: Path, dest: Path) -> Path:
    """The files git would put in an sdist of the work tree as it is now (tracked and
    new, not ignored), plus the built BPF objects; mtimes kept, so make sees what it
    would see in root."""
    names = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], capture_output=True, check=True).stdout.split(b"\0")
    extra = [f"{d}/{o}".encode() for d in ("bpf", "roar/tracer") for o in ("roar.bpf.o", "roar-btf.bpf.o")]
    for name in filter(None, names + extra):
        src = root / name.decode()
        if src.is_file() and not src.is_symlink():
            (dest / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name.decode())
    return dest


def _requirements(name: str) -> list[str]:
    """Names of the unconditional requirements of an installed distribution."""
    reqs = [Requirement(r) for r in metadata.requires(name) or []]
    return [r.name for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})]


def closure(names: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        key = metadata.distribution(name).metadata["Name"]
        if key not in seen:
            seen[key] = None
            todo.extend(_requirements(key))
    return list(seen)


def repack(name: str, dest: Path) -> Path:
    """A wheel of an installed distribution, from the files its RECORD lists."""
    dist = metadata.distribution(name)
    info = Path(dist._path)   # the .dist-info directory
    tags = [line.split(":", 1)[1].strip() for line in (info / "WHEEL").read_text().splitlines()
            if line.startswith("Tag:")]
    parts = list(zip(*(t.split("-") for t in tags), strict=True))
    tag = "-".join(".".join(dict.fromkeys(p)) for p in parts)
    normal = re.sub(r"[-_.]+", "_", dist.metadata["Name"]).lower()
    wheel = dest / f"{normal}-{dist.version}-{tag}.whl"
    site = info.parent
    records = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in dist.files or []:
            rel = file.as_posix()
            if rel.startswith("..") or "__pycache__" in rel or Path(rel).name in SKIP_META:
                continue
            data = (site / rel).read_bytes()
            zf.writestr(rel, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            records.append(f"{rel},sha256={digest},{len(data)}")
        record = f"{info.name}/RECORD"
        zf.writestr(record, "\n".join(records + [f"{record},,"]) + "\n")
    return wheel


def dependencies(dest: Path) -> Path:
    """A --find-links directory holding roar's run-time dependencies."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in closure(_requirements("roar")):
        repack(name, dest)
    return dest
