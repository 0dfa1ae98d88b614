"""`roar put SRC... DEST`: push local files or directories out and record a "put" job.

DEST is a local directory (a path or file:///dir) or an s3:// prefix; each
SRC lands at DEST/<its name>. Every byte is verified: after the copy the
destination is read back and hashed, and a mismatch removes the copy and
fails. Inputs are the sources (what was pushed), outputs the copies (where),
each with `verified: true`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from roar.artifacts.hashing import hash_file
from roar.errors import ContextError, UsageError
from roar.transfer import files, record
from roar.transfer.locations import Location, parse

ALGORITHMS = ("blake3",)


def put(srcs: list[str], dest: str, force: bool = False) -> dict[str, Any]:
    """Copy every source under `dest`, verify it, add the job; the stored record."""
    from roar.store.workspace import Workspace

    if not srcs:
        raise UsageError("nothing to put: use `roar put SRC... DEST`")
    cwd = os.getcwd()
    target = parse(dest, allowed=("file", "s3"))
    sources = [os.path.abspath(s) for s in srcs]
    for src in sources:
        if not os.path.exists(src):
            raise ContextError(f"source {src} does not exist: check the path")
    workspace = Workspace.find_or_create(Path(cwd))
    started_at = time.time()
    if target.scheme == "s3":
        inputs, outputs = _put_s3(sources, target, force)
    else:
        inputs, outputs = _put_local(sources, target, force, workspace)
    transfer = {"sources": sources, "destination": target.public, "scheme": target.scheme, "verified": True}
    job = record.build("put", [*srcs, target.public] + (["--force"] if force else []), cwd, started_at,
                       inputs, outputs, transfer, workspace.fd_path("cache"))
    return workspace.add_job(job)


def _source_entry(src: str) -> dict[str, Any]:
    if os.path.isdir(src):
        return files.directory_entry(src, files.tree_members(src, ALGORITHMS))
    return files.file_entry(src, ALGORITHMS)


def _put_local(sources: list[str], target: Location, force: bool,
               workspace: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    directory = target.path
    if not os.path.isdir(directory):
        raise ContextError(f"destination directory {directory} does not exist: create it first")
    dests = [os.path.join(directory, os.path.basename(src)) for src in sources]
    for dest in dests:
        files.check_destination(dest, force)
    inputs, outputs = [], []
    for src, dest in zip(sources, dests, strict=True):
        entry = _source_entry(src)
        copy: Callable[[str, str], Any] = (
            (lambda s, d: shutil.copytree(s, d, symlinks=True, dirs_exist_ok=True))
            if os.path.isdir(src) else shutil.copy)
        with files.staging(dest, directory=os.path.isdir(src)) as tmp:
            try:
                copy(src, tmp)
            except (OSError, shutil.Error) as exc:
                raise ContextError(f"copying {src} to {directory} failed ({exc}); check free space "
                                   "and permissions") from None
            _verify(entry, _local_entry(tmp, entry), f"file://{dest}")
            files.place(tmp, dest, force)
        inputs.append(entry)
        outputs.append(_output(entry, dest, f"file://{dest}"))
    return inputs, outputs


def _local_entry(path: str, like: dict[str, Any]) -> dict[str, Any]:
    if like.get("kind") == "composite":
        return files.directory_entry(path, files.tree_members(path, ALGORITHMS))
    return files.file_entry(path, ALGORITHMS)


def _put_s3(sources: list[str], target: Location,
            force: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from roar.transfer import s3

    bucket = s3.Bucket(target.bucket)
    prefix = target.path.rstrip("/")
    keys = [f"{prefix}/{os.path.basename(src)}" if prefix else os.path.basename(src) for src in sources]
    if not force:
        for src, key in zip(sources, keys, strict=True):
            if os.path.isdir(src):
                taken = next(bucket.keys_under(key), None) is not None
            else:
                taken = bucket.object_exists(key)
            if taken:
                raise ContextError(f"{bucket.url(key)} exists: choose another destination or pass --force "
                                   "to replace it")
    inputs, outputs = [], []
    for src, key in zip(sources, keys, strict=True):
        entry = _source_entry(src)
        if entry.get("kind") == "composite":
            uploaded = [(os.path.join(src, m["name"]), f"{key}/{m['name']}", m) for m in entry["members"]]
        else:
            uploaded = [(src, key, entry)]
        for path, member_key, expected in uploaded:
            bucket.upload(path, member_key)
            _verify_s3(bucket, member_key, expected)
        inputs.append(entry)
        outputs.append(_output(entry, bucket.url(key), bucket.url(key)))
    return inputs, outputs


def _verify_s3(bucket: Any, key: str, expected: dict[str, Any]) -> None:
    """Read the object back and compare; a mismatching object is deleted."""
    fd, tmp = tempfile.mkstemp(prefix=".roar-verify-")
    os.close(fd)
    try:
        bucket.download(key, tmp)
        actual = hash_file(tmp, ALGORITHMS)
    finally:
        os.unlink(tmp)
    if actual.get("blake3") != expected["hash"]:
        bucket.delete(key)
        raise ContextError(f"{bucket.url(key)} does not match its source after the upload (checksum "
                           "mismatch); it was deleted: retry the put")


def _verify(expected: dict[str, Any], actual: dict[str, Any], where: str) -> None:
    if actual["hash"] != expected["hash"]:
        raise ContextError(f"{where} does not match its source after the copy (checksum mismatch); "
                           "nothing was placed: retry the put")


def _output(entry: dict[str, Any], path: str, url: str) -> dict[str, Any]:
    out = dict(entry, path=path, url=url, verified=True)
    if "members" in entry:
        out["members"] = [dict(m, path=f"{path}/{m['name']}") for m in entry["members"]]
    return out
