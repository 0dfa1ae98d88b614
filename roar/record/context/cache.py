"""Small JSON caches for context facts that do not change between runs.

Each cache file holds one value and the key it was computed for (a boot id, a
directory mtime, ...); a different key is a miss. Files are written atomically
and, when roar runs as root, given to the owner of the cache directory, so a
later run without sudo can still use and refresh them. A cache that cannot be
read or written is only a miss: capture never fails because of it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def ensure_dir(cache_dir: Path) -> None:
    """Create the cache directory, owned like its parent (the workspace's .roar/)."""
    if cache_dir.is_dir():
        return
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        match_owner(cache_dir, cache_dir.parent)
    except OSError:
        pass


def load(path: Path, key: Any) -> Any | None:
    """The cached value when the file holds exactly `key`, else None."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    return data.get("value")


def store(path: Path, key: Any, value: Any) -> None:
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"key": key, "value": value}, f, separators=(",", ":"))
            match_owner(Path(tmp), path.parent)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    except OSError:
        pass


def match_owner(path: Path, like: Path) -> None:
    if os.geteuid() != 0:
        return
    try:
        st = like.stat()
        os.chown(path, st.st_uid, st.st_gid)
    except OSError:
        pass
