"""The hash cache: digests remembered by (dev, inode, size, mtime_ns).

It lives in the workspace index (table `hash_cache`). A digest is stored only
when the file hashed is the one stat'ed (same key and ctime, from before the hash to
after it) and its mtime is older than the filesystem's timestamp granularity ("racy" files are hashed
again next time), so a cached digest is always the content's. A file that changed
while it was hashed raises hashing.FileChanged, and nothing is stored. Safe to share
between threads.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from roar.artifacts import hashing

RACY_NS = 100_000_000            # ns-granularity filesystems: 0.1 s
RACY_COARSE_NS = 2_000_000_000   # whole-second mtimes (ext3, FAT, some network filesystems)


def _key(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _racy(st: os.stat_result, now_ns: int) -> bool:
    margin = RACY_COARSE_NS if st.st_mtime_ns % 1_000_000_000 == 0 else RACY_NS
    return now_ns - st.st_mtime_ns < margin


LOOKUP_CHUNK = 500   # keys per query of lookup_many (4 parameters each)


def lookup_many(conn: sqlite3.Connection, stats: list[os.stat_result], algorithm: str) -> dict[tuple, str]:
    """{(dev, ino, size, mtime_ns): digest} of the files among `stats` the cache knows, a
    few queries for any number of files (a `roar status` may check 100,000 inputs). `conn`
    is any connection to the workspace index."""
    found: dict[tuple, str] = {}
    keys = list(dict.fromkeys(map(_key, stats)))
    for start in range(0, len(keys), LOOKUP_CHUNK):
        chunk = keys[start:start + LOOKUP_CHUNK]
        values = ", ".join(["(?, ?, ?, ?)"] * len(chunk))
        rows = conn.execute(
            f"WITH k(dev, ino, size, mtime_ns) AS (VALUES {values}) SELECT h.dev, h.ino, h.size, h.mtime_ns,"
            " h.digest FROM k JOIN hash_cache h ON h.dev = k.dev AND h.ino = k.ino AND h.size = k.size"
            " AND h.mtime_ns = k.mtime_ns AND h.algorithm = ?",
            [v for key in chunk for v in key] + [algorithm])
        found.update(((dev, ino, size, mtime), digest) for dev, ino, size, mtime, digest in rows)
    return found


class HashCache:
    def __init__(self, db_path: str | Path, readonly: bool = False) -> None:
        from roar.store import index

        self._conn = index.connect(db_path, check_same_thread=False, readonly=readonly)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def close(self) -> None:
        self._conn.close()

    def lookup(self, st: os.stat_result, algorithms: tuple[str, ...]) -> dict[str, str]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT algorithm, digest FROM hash_cache WHERE dev=? AND ino=? AND size=? AND mtime_ns=?",
                _key(st)).fetchall()
        return {alg: digest for alg, digest in rows if alg in algorithms}

    def store(self, st: os.stat_result, digests: dict[str, str]) -> None:
        now = time.time()
        with self._lock:
            try:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO hash_cache VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(*_key(st), alg, digest, now) for alg, digest in digests.items()])
            except sqlite3.OperationalError:
                pass   # a read-only workspace or a busy index: the cache is only an optimisation

    def hash_file(self, path: str, algorithms: tuple[str, ...], progress: hashing.Progress | None = None,
                  expect: os.stat_result | None = None) -> dict[str, str]:
        before = os.stat(path)
        if expect is not None and hashing.identity(before) != hashing.identity(expect):
            raise hashing.FileChanged(path, "it changed between its stat and its hashing")
        known = self.lookup(before, algorithms)
        missing = tuple(a for a in algorithms if a not in known)
        if not missing:
            self.hits += 1
            return {a: known[a] for a in algorithms}
        self.misses += 1
        now_ns = time.time_ns()
        # the digest is of the file `before` describes, or FileChanged is raised and nothing stored
        fresh = hashing.hash_uncached(path, missing, progress, expect=before)
        if not _racy(before, now_ns):
            self.store(before, fresh)
        known.update(fresh)
        return {a: known[a] for a in algorithms}
