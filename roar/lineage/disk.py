"""Is a recorded artifact still what is on disk at its path?

A missing file is not a change (the artifact stays recorded); a different
size is, without hashing; otherwise the file is hashed through the hash
cache, so a file that did not change since it was last hashed costs a stat
and one cache lookup. A composite is changed when any of its members is.
Each (path, artifact) is checked once per DiskCheck.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from typing import TYPE_CHECKING, Callable, Iterable

if TYPE_CHECKING:
    from roar.artifacts.cache import HashCache


class DiskCheck:
    """`cache` is a HashCache, or a function that opens one (called the first time a
    file has to be looked up, and closed by close())."""

    def __init__(self, conn: sqlite3.Connection,
                 cache: "HashCache | Callable[[], HashCache] | None" = None) -> None:
        self.conn = conn
        self._cache = cache
        self._opened: "HashCache | None" = None
        self._memo: dict[tuple[str, str], bool] = {}

    def close(self) -> None:
        if self._opened is not None:
            self._opened.close()
            self._opened = None

    def __enter__(self) -> "DiskCheck":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def cache(self) -> "HashCache | None":
        if self._cache is None or not callable(self._cache):
            return self._cache
        if self._opened is None:
            self._opened = self._cache()
        return self._opened

    def changed(self, path: str, artifact: str, size: int | None) -> bool:
        """Whether the file (or directory, for a composite) at `path` is no longer `artifact`."""
        key = (path, artifact)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = self._changed(path, artifact, size)
        return found

    def changed_among(self, rows: Iterable[tuple[str | bytes, str, int | None]]) -> list[tuple]:
        """The (path as stored in the index, artifact) of the rows (path, artifact, size)
        whose file changed, for many rows at once (in path order, files of a directory
        follow each other): a directory that is gone (a temporary directory, an old
        checkout) is looked at once for all its files; the files that exist with their
        recorded size are looked up in the hash cache together, a few queries in all; only
        the others are hashed."""
        found: list[tuple] = []
        pending: list[tuple] = []       # (stored, path, artifact, stat) for the cache
        dirs: dict[str, bool] = {}      # directory -> is one
        memo, fsdecode, isdir, do_stat = self._memo, os.fsdecode, os.path.isdir, os.stat
        for stored, artifact, size in rows:
            path = stored if isinstance(stored, str) else fsdecode(stored)
            head, slash, _ = path.rpartition("/")
            parent = (head or "/") if slash else "."
            there = dirs.get(parent)
            if there is None:
                there = dirs[parent] = isdir(parent)
            if not there:
                continue
            if (memo and (path, artifact) in memo) or ":" in artifact:
                if self.changed(path, artifact, size):
                    found.append((stored, artifact))
                continue
            try:
                st = do_stat(path)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) or (size is not None and st.st_size != size):
                if self.changed(path, artifact, size):    # a composite, or a change
                    found.append((stored, artifact))
                continue
            pending.append((stored, path, artifact, st))
        if pending:
            from roar.artifacts.cache import lookup_many

            known = lookup_many(self.conn, [p[3] for p in pending], "blake3")
            for stored, path, artifact, st in pending:
                digest = known.get((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
                changed = digest != artifact if digest else self._differs(path, st, artifact, st.st_size)
                memo[(path, artifact)] = changed
                if changed:
                    found.append((stored, artifact))
        return found

    def _changed(self, path: str, artifact: str, size: int | None) -> bool:
        if not os.access(path, os.F_OK):
            return False
        try:
            st = os.stat(path)
        except OSError:
            return False
        if stat.S_ISDIR(st.st_mode):
            row = self.conn.execute("SELECT kind FROM artifacts WHERE hash = ?", (artifact,)).fetchone()
            if row is None or row[0] != "composite":
                return True      # a file replaced by a directory
            members = self.conn.execute(
                "SELECT cm.name, cm.artifact, a.size FROM composite_members cm JOIN artifacts a"
                " ON a.hash = cm.artifact WHERE cm.composite = ?", (artifact,)).fetchall()
            return any(self.file_differs(os.path.join(path, os.fsdecode(name)), member, msize)
                       for name, member, msize in members)
        return self._differs(path, st, artifact, size)

    def file_differs(self, path: str, artifact: str, size: int | None) -> bool:
        try:
            st = os.stat(path)
        except OSError:
            return False
        return self._differs(path, st, artifact, size)

    def _differs(self, path: str, st: os.stat_result, artifact: str, size: int | None) -> bool:
        if size is not None and st.st_size != size:
            return True
        algorithm, _, digest = artifact.rpartition(":")
        algorithm = algorithm or "blake3"
        cache = self.cache
        if cache is not None:
            known = cache.lookup(st, (algorithm,))
            if algorithm in known:
                return known[algorithm] != digest
        from roar.artifacts.hashing import hash_file

        try:
            now = hash_file(path, (algorithm,), cache=cache)
        except OSError:
            return False
        return now[algorithm] != digest
