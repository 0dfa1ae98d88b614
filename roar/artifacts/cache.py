"""The hash cache: digests remembered by (dev, inode, size, mtime_ns, ctime_ns).

ctime is in the key because a file's owner can put its mtime back after rewriting it with the
same size (os.utime), while no user can set its ctime: without it, another user could have roar
record the hash of bytes a job did not read.

A plain store in the workspace index (table `hash_cache`): lookup and store by a
file's stat key, nothing more. When a digest may be stored (the file hashed is the
one stat'ed, and not "racy") is decided by roar.artifacts.hashing.hash_file, the one
place that hashes. Safe to share between threads.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path


def cache_key(st: os.stat_result) -> tuple[int, int, int, int, int]:
    """What a digest is remembered by; lookup_many's keys."""
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


LOOKUP_CHUNK = 400   # keys per query of lookup_many (5 parameters each)


def lookup_many(conn: sqlite3.Connection, stats: list[os.stat_result], algorithm: str) -> dict[tuple, str]:
    """{(dev, ino, size, mtime_ns, ctime_ns): digest} of the files among `stats` the cache knows, a
    few queries for any number of files (a `roar status` may check 100,000 inputs). `conn`
    is any connection to the workspace index."""
    found: dict[tuple, str] = {}
    keys = list(dict.fromkeys(map(cache_key, stats)))
    for start in range(0, len(keys), LOOKUP_CHUNK):
        chunk = keys[start:start + LOOKUP_CHUNK]
        values = ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk))
        rows = conn.execute(
            f"WITH k(dev, ino, size, mtime_ns, ctime_ns) AS (VALUES {values}) SELECT h.dev, h.ino, h.size,"
            " h.mtime_ns, h.ctime_ns, h.digest FROM k JOIN hash_cache h ON h.dev = k.dev AND h.ino = k.ino"
            " AND h.size = k.size AND h.mtime_ns = k.mtime_ns AND h.ctime_ns = k.ctime_ns"
            " AND h.algorithm = ?",
            [v for key in chunk for v in key] + [algorithm])
        found.update((tuple(row[:5]), row[5]) for row in rows)
    return found


class HashCache:
    def __init__(self, db_path: str | Path, readonly: bool = False) -> None:
        from roar.store import index

        self._conn = index.connect(db_path, check_same_thread=False, readonly=readonly)
        # the cache is only an optimisation: a busy index must not hold a job's hashing up
        self._conn.execute("PRAGMA busy_timeout = 50")
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def close(self) -> None:
        self._conn.close()

    def lookup(self, st: os.stat_result, algorithms: tuple[str, ...]) -> dict[str, str]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT algorithm, digest FROM hash_cache WHERE dev=? AND ino=? AND size=? AND mtime_ns=?"
                " AND ctime_ns=?",
                cache_key(st)).fetchall()
        return {alg: digest for alg, digest in rows if alg in algorithms}

    def store(self, st: os.stat_result, digests: dict[str, str]) -> None:
        now = time.time()
        with self._lock:
            try:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO hash_cache VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(*cache_key(st), alg, digest, now) for alg, digest in digests.items()])
            except sqlite3.OperationalError:
                pass   # a read-only workspace or a busy index: the cache is only an optimisation
