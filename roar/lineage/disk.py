"""Is a recorded artifact still what is on disk at its path?

A missing file is not a change (the artifact stays recorded); a different
size is, without hashing; otherwise the file is hashed through the hash
cache, so a file that did not change since it was last hashed costs a stat
and one cache lookup. A composite is changed when any of its members is.
Each (path, artifact) is checked once per DiskCheck.

A file that exists but cannot be read (no permission, a symlink loop, an I/O
error, still being written) is neither changed nor unchanged: it is not
counted as a change and `unknown` says why, so staleness never fails open.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from typing import TYPE_CHECKING, Callable, Iterable

if TYPE_CHECKING:
    from roar.artifacts.cache import HashCache


class _Unknown(Exception):
    """The file could not be compared with the artifact; the message says why."""


def _missing(exc: OSError) -> bool:
    """Gone, rather than unreadable: the name or a directory on its way no longer exists."""
    return isinstance(exc, (FileNotFoundError, NotADirectoryError))


def _why(path: str, exc: OSError) -> str:
    from roar.artifacts.hashing import FileChanged

    if isinstance(exc, FileChanged):
        return f"{path} changed while it was hashed"
    return f"{path} could not be read ({exc.strerror or exc})"


class DiskCheck:
    """`cache` is a HashCache, or a function that opens one (called the first time a
    file has to be looked up, and closed by close())."""

    def __init__(self, conn: sqlite3.Connection,
                 cache: "HashCache | Callable[[], HashCache] | None" = None) -> None:
        self.conn = conn
        self._cache = cache
        self._opened: "HashCache | None" = None
        self._memo: dict[tuple[str, str], bool] = {}
        # (path, artifact) -> why it could not be compared: not counted as changed
        self.unknown: dict[tuple[str, str], str] = {}
        self.unknown_rows: list[tuple] = []    # the same, as (path as stored in the index, artifact)

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
            try:
                found = self._changed(path, artifact, size)
            except _Unknown as why:
                self.unknown[key] = str(why)
                found = False
            self._memo[key] = found
        return found

    def _set_unknown(self, stored, path: str, artifact: str, why: str) -> None:
        self._memo[(path, artifact)] = False
        self.unknown[(path, artifact)] = why
        self.unknown_rows.append((stored, artifact))

    def changed_among(self, rows: Iterable[tuple[str | bytes, str, int | None]]) -> list[tuple]:
        """The (path as stored in the index, artifact) of the rows (path, artifact, size)
        whose file changed, for many rows at once (in path order, files of a directory
        follow each other): a directory that is gone (a temporary directory, an old
        checkout) is looked at once for all its files; the files that exist with their
        recorded size are looked up in the hash cache together, a few queries in all; only
        the others are hashed. Rows that could not be compared go to `unknown_rows`."""
        found: list[tuple] = []
        pending: list[tuple] = []       # (stored, path, artifact, stat) for the cache
        dirs: dict[str, bool | str] = {}      # directory -> is one, or why it cannot be looked at
        memo, fsdecode, do_stat = self._memo, os.fsdecode, os.stat
        for stored, artifact, size in rows:
            path = stored if isinstance(stored, str) else fsdecode(stored)
            head, slash, _ = path.rpartition("/")
            parent = (head or "/") if slash else "."
            there = dirs.get(parent)
            if there is None:
                there = dirs[parent] = _is_dir(parent)
            if there is not True:
                if there:   # the directory exists but cannot be looked into
                    self._set_unknown(stored, path, artifact, there)
                continue
            if (memo and (path, artifact) in memo) or ":" in artifact:
                self._row(stored, path, artifact, size, found)
                continue
            try:
                st = do_stat(path)
            except OSError as exc:
                if not _missing(exc):
                    self._set_unknown(stored, path, artifact, _why(path, exc))
                continue
            if stat.S_ISDIR(st.st_mode) or (size is not None and st.st_size != size):
                self._row(stored, path, artifact, size, found)    # a composite, or a change
                continue
            pending.append((stored, path, artifact, st))
        if pending:
            self._look_up(pending, found)
        return found

    def _row(self, stored, path: str, artifact: str, size: int | None, found: list[tuple]) -> None:
        if self.changed(path, artifact, size):
            found.append((stored, artifact))
        elif (path, artifact) in self.unknown:
            self.unknown_rows.append((stored, artifact))

    def _look_up(self, pending: list[tuple], found: list[tuple]) -> None:
        """The files of `pending` that exist with their recorded size: the hash cache
        first, all at once, then a hash for those it does not know."""
        from roar.artifacts.cache import cache_key, lookup_many

        known = lookup_many(self.conn, [p[3] for p in pending], "blake3")
        for stored, path, artifact, st in pending:
            digest = known.get(cache_key(st))
            try:
                changed = digest != artifact if digest else self._differs(path, st, artifact, st.st_size)
            except _Unknown as why:
                self._set_unknown(stored, path, artifact, str(why))
                continue
            self._memo[(path, artifact)] = changed
            if changed:
                found.append((stored, artifact))

    def _changed(self, path: str, artifact: str, size: int | None) -> bool:
        try:
            st = os.stat(path)
        except OSError as exc:
            if _missing(exc):
                return False
            raise _Unknown(_why(path, exc)) from None
        if stat.S_ISDIR(st.st_mode):
            row = self.conn.execute("SELECT kind FROM artifacts WHERE hash = ?", (artifact,)).fetchone()
            if row is None or row[0] != "composite":
                return True      # a file replaced by a directory
            members = self.conn.execute(
                "SELECT cm.name, cm.artifact, a.size FROM composite_members cm JOIN artifacts a"
                " ON a.hash = cm.artifact WHERE cm.composite = ?", (artifact,)).fetchall()
            unknown = None
            for name, member, msize in members:
                try:
                    if self.file_differs(os.path.join(path, os.fsdecode(name)), member, msize):
                        return True
                except _Unknown as why:
                    unknown = unknown or why   # a member that did change still decides
            if unknown:
                raise unknown
            return False
        return self._differs(path, st, artifact, size)

    def file_differs(self, path: str, artifact: str, size: int | None) -> bool:
        """Raises _Unknown when the file exists but cannot be compared."""
        try:
            st = os.stat(path)
        except OSError as exc:
            if _missing(exc):
                return False
            raise _Unknown(_why(path, exc)) from None
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
        from roar.artifacts.hashing import NotRegularFile, hash_file

        try:
            now = hash_file(path, (algorithm,), cache=cache)
        except NotRegularFile:
            return True      # a file replaced by a FIFO, a device, a socket
        except OSError as exc:
            if _missing(exc):
                return False
            raise _Unknown(_why(path, exc)) from None
        return now[algorithm] != digest


def _is_dir(path: str) -> bool | str:
    """True for a directory; False when it is gone or not one; why, when it cannot be looked at."""
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except OSError as exc:
        return False if _missing(exc) else _why(path, exc)
