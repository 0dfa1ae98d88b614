"""Small JSON caches for context facts that do not change between runs.

Each cache file holds one value and the key it was computed for (a boot id, a
directory mtime, ...); a different key is a miss. Files are written atomically,
by the acting user (under sudo, the invoking user: roar.privilege), in the
workspace's .roar/cache, which the caller reaches through a descriptor
(Workspace.fd_path). A cache that cannot be read or written is only a miss:
capture never fails because of it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def machine_dir() -> Path | None:
    """Where facts of the whole machine are cached (the dpkg path index), shared by every
    workspace of the user: $XDG_CACHE_HOME/roar or ~/.cache/roar (under sudo the invoking
    user's: roar.privilege sets HOME). None when there is no usable home."""
    base = os.environ.get("XDG_CACHE_HOME") or (os.path.join(os.environ["HOME"], ".cache")
                                                  if os.environ.get("HOME") else "")
    if not os.path.isabs(base):
        return None
    path = Path(base, "roar")
    ensure_dir(path)
    return path if path.is_dir() and os.access(path, os.W_OK) else None


def ensure_dir(cache_dir: Path) -> None:
    """Create the cache directory if it is missing (private to its user)."""
    if cache_dir.is_dir():
        return
    try:
        cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        pass


def load(path: Path, key: Any) -> Any | None:
    """The cached value when the file holds exactly `key`, else None."""
    from roar.record.context import readfile

    try:
        with readfile.open_text(path) as f:   # no FIFO: the cache directory may hold anything
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
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    except OSError:
        pass
