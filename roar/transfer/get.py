"""`roar get SRC DEST`: fetch external data and record it as a "get" job.

The source (http, https, file, s3) is the job's external input, recorded by
its public URL (credentials removed) with the hashes of the content fetched;
DEST is its output, a file or, for a directory source, a composite.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from roar.errors import ContextError
from roar.transfer import files, record
from roar.transfer.locations import Location, parse

ALGORITHMS = ("blake3",)


def get(src: str, dest: str, force: bool = False) -> dict[str, Any]:
    """Fetch `src` to `dest` and add the job to the workspace; the stored record."""
    from roar.store.workspace import Workspace

    cwd = os.getcwd()
    source = parse(src)
    target = os.path.abspath(dest)
    files.check_destination(target, force)
    workspace = Workspace.find_or_create(Path(cwd))
    started_at = time.time()
    if source.scheme == "s3":
        output, details = _fetch_s3(source, target, force)
    elif source.scheme == "file":
        output, details = _fetch_file(source, target, force)
    else:
        output, details = _fetch_http(source, target, force)
    inputs = [_as_input(output, source)]
    transfer = {"source": source.public, "destination": target, "scheme": source.scheme, **details}
    job = record.build("get", [source.public, dest] + (["--force"] if force else []), cwd, started_at,
                       inputs, [output], transfer, workspace.fd_path("cache"))
    return workspace.add_job(job)


def _fetch_http(source: Location, target: str, force: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    from roar.transfer import http

    with files.staging(target) as tmp:
        details = http.fetch(source.url, tmp)
        entry = files.file_entry(tmp, ALGORITHMS)
        files.place(tmp, target, force)
    entry["path"] = target
    return entry, details


def _fetch_file(source: Location, target: str, force: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    path = source.path
    if os.path.isdir(path):
        with files.staging(target, directory=True) as tmp:
            try:
                shutil.copytree(path, tmp, symlinks=True, dirs_exist_ok=True)
            except (OSError, shutil.Error) as exc:
                raise ContextError(f"copying {path} failed ({exc}); check the source and free space") \
                    from None
            members = files.tree_members(tmp, ALGORITHMS)
            files.place(tmp, target, force)
        return files.directory_entry(target, members), {}
    if not os.path.isfile(path):
        raise ContextError(f"source {path} does not exist: check the path")
    with files.staging(target) as tmp:
        try:
            shutil.copyfile(path, tmp)
        except OSError as exc:
            raise ContextError(f"copying {path} failed ({exc.strerror}); check the source and free space") \
                from None
        entry = files.file_entry(tmp, ALGORITHMS)
        files.place(tmp, target, force)
    entry["path"] = target
    return entry, {}


def _fetch_s3(source: Location, target: str, force: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    from roar.transfer import s3

    bucket = s3.Bucket(source.bucket)
    if bucket.object_exists(source.path):
        with files.staging(target) as tmp:
            bucket.download(source.path, tmp)
            entry = files.file_entry(tmp, ALGORITHMS)
            files.place(tmp, target, force)
        entry["path"] = target
        return entry, {}
    keys = list(bucket.keys_under(source.path))
    if not keys:
        raise ContextError(f"{source.public}: no such object or prefix; check the URL")
    with files.staging(target, directory=True) as tmp:
        for key in keys:
            local = os.path.join(tmp, s3.relative(key, source.path))
            os.makedirs(os.path.dirname(local), exist_ok=True)
            bucket.download(key, local)
        members = files.tree_members(tmp, ALGORITHMS)
        files.place(tmp, target, force)
    return files.directory_entry(target, members), {"objects": len(keys)}


def _as_input(output: dict[str, Any], source: Location) -> dict[str, Any]:
    """The external input: the same content, named by the source URL."""
    url = source.public.rstrip("/")
    entry = dict(output, path=url, url=url, external=True)
    if "members" in output:
        entry["members"] = [dict(m, path=f"{url}/{m['name']}") for m in output["members"]]
    return entry
