"""Placing transferred data on the local disk safely, and hashing it.

Data is written under a hidden temporary name in the destination's own
directory and renamed into place only when complete and hashed, so a failed
or interrupted transfer leaves nothing behind at DEST (and at most a
`.NAME.roar-*.tmp` that the next failure path removes). An existing DEST is
refused unless forced; a forced directory replacement moves the old tree
aside first, then deletes it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from typing import Any, Iterator

from roar.artifacts.hashing import hash_file
from roar.errors import ContextError


def check_destination(dest: str, force: bool) -> None:
    """Refuse before any byte moves: DEST exists (without force) or its directory is missing."""
    if os.path.lexists(dest) and not force:
        raise ContextError(f"{dest} exists: choose another destination or pass --force to replace it")
    parent = os.path.dirname(dest) or "."
    if not os.path.isdir(parent):
        raise ContextError(f"directory {parent} does not exist: create it first")


@contextmanager
def staging(dest: str, directory: bool = False) -> Iterator[str]:
    """A temporary file (or directory) next to `dest`, removed unless it was placed."""
    parent, name = os.path.split(dest)
    prefix = f".{name}.roar-"
    try:
        if directory:
            tmp = tempfile.mkdtemp(dir=parent or ".", prefix=prefix, suffix=".tmp")
        else:
            fd, tmp = tempfile.mkstemp(dir=parent or ".", prefix=prefix, suffix=".tmp")
            os.close(fd)
        os.chmod(tmp, (0o777 if directory else 0o666) & ~_umask())   # mkstemp's 0600 is not the user's
    except OSError as exc:
        raise ContextError(f"cannot write in {parent or '.'}: {exc.strerror}; fix its permissions") from None
    try:
        yield tmp
    finally:
        remove(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def place(tmp: str, dest: str, force: bool) -> None:
    """Rename the finished `tmp` to `dest`, replacing what is there only when forced."""
    if os.path.lexists(dest):
        if not force:
            raise ContextError(f"{dest} appeared during the transfer: pass --force to replace it")
        if os.path.isdir(dest) and not os.path.islink(dest) or os.path.isdir(tmp):
            aside = os.path.join(os.path.dirname(dest),
                                 f".{os.path.basename(dest)}.roar-old-{uuid.uuid4().hex[:8]}")
            os.rename(dest, aside)
            os.rename(tmp, dest)
            remove(aside)
            return
    os.replace(tmp, dest)


def remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)


def file_entry(path: str, algorithms: tuple[str, ...]) -> dict[str, Any]:
    """A record entry for one local file: path, hash(es), size."""
    hashes = hash_file(path, algorithms)
    return {"path": path, "hash": hashes.get("blake3"), "hashes": hashes, "size": os.path.getsize(path),
            "pids": []}


def tree_members(root: str, algorithms: tuple[str, ...]) -> list[dict[str, Any]]:
    """[{name (relative path), hash, hashes, size}] of every regular file under `root`."""
    members = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for filename in sorted(filenames):
            full = os.path.join(dirpath, filename)
            if os.path.isfile(full) and not os.path.islink(full):
                entry = file_entry(full, algorithms)
                members.append({"name": os.path.relpath(full, root), "hash": entry["hash"],
                                "hashes": entry["hashes"], "size": entry["size"]})
    return members


def directory_entry(path: str, members: list[dict[str, Any]]) -> dict[str, Any]:
    """A composite record entry (roar.artifacts.composite) for a directory and its members."""
    from roar.artifacts import composite

    entry = composite.make(path, [dict(m, path=os.path.join(path, m["name"])) for m in members])
    entry["pids"] = []
    return entry
