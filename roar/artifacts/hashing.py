"""Content hashes of files: blake3 by default, other hashlib algorithms on request.

A file of MMAP_MIN bytes or more is hashed from a memory map with blake3's thread pool
(all cores, like `b3sum`); a smaller one, or one that cannot be leased (below), is read().
Files above PROGRESS_MIN_BYTES show a progress bar when stderr is a terminal. With a
HashCache (roar.artifacts.cache) an unchanged file is never hashed twice.

A file that shrinks under a memory map kills the process with SIGBUS, and a job may
truncate its input at any moment (`sort -o f f`). So a file is mapped only under a read
lease (fcntl F_SETLEASE): while one is held nobody can open the file for writing or
truncate it without breaking the lease first, and the breaker waits until the holder lets
go. The lease is checked between slices of the map; once it is broken the map is dropped
before the lease is, and the rest is read(). Without a lease (the file is open for writing
somewhere, the filesystem has no leases, the file is neither ours nor are we root) the file
is read(), which a shrinking file cannot crash.

The digest is always of one content: when the file changed while it was hashed (its fstat
before and after differ, or it gave fewer bytes than its size) FileChanged is raised
instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import signal
import stat
import sys
import time
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import blake3

if TYPE_CHECKING:
    from roar.artifacts.cache import HashCache

DEFAULT_ALGORITHM = "blake3"
MMAP_MIN = 1 << 20               # below this read() is as fast as a map, and needs no lease
MAP_STEP = 16 << 20              # mapped bytes hashed between two looks at the lease
READ_STEP = 8 << 20              # bytes per read(): blake3 still spreads them over all cores
MMAP_SLICE = 256 << 20           # progress is reported every MMAP_SLICE bytes
PROGRESS_MIN_BYTES = 256 << 20
RACY_NS = 100_000_000            # ns-granularity filesystems: 0.1 s
RACY_COARSE_NS = 2_000_000_000   # whole-second mtimes (ext3, FAT, some network filesystems)

# Linux values; Python's fcntl has them from 3.9 on Linux
F_SETSIG = getattr(fcntl, "F_SETSIG", 10)
F_SETLEASE = getattr(fcntl, "F_SETLEASE", 1024)
F_GETLEASE = getattr(fcntl, "F_GETLEASE", 1025)

Progress = Callable[[int, int], None]   # (bytes done, total)


class FileChanged(OSError):
    """The file changed while it was hashed: no digest of one content can be given.
    An OSError, so a caller that only knows "the file could not be hashed" is still right."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{path} changed while it was hashed ({why})")
        self.path = path
        self.why = why


class NotRegularFile(OSError):
    """The path names a FIFO, a device, a directory or a socket, not a regular file."""

    def __init__(self, path: str, mode: int) -> None:
        super().__init__(f"{path} is not a regular file (mode {stat.filemode(mode)})")
        self.path = path


def hash_file(path: str, algorithms: Iterable[str] = (DEFAULT_ALGORITHM,),
              cache: "HashCache | None" = None, progress: Progress | None = None,
              expect: os.stat_result | None = None) -> dict[str, str]:
    """{algorithm: hex digest} of the file's content.

    Raises FileChanged if the file changed while it was hashed, or, given `expect` (a stat
    the caller took), if it is no longer the file `expect` describes: the digest is then
    of the content that stat saw. NotRegularFile if the path is not a regular file,
    OSError if it cannot be opened. With `cache`, digests already known for the file's
    (dev, inode, size, mtime_ns) are reused and new ones are remembered. `progress`
    overrides the default (a bar on a terminal for big files)."""
    algorithms = tuple(dict.fromkeys(algorithms))
    if cache is None:
        return hash_uncached(path, algorithms, progress, expect=expect)
    before = os.stat(path)
    if expect is not None and identity(before) != identity(expect):
        raise FileChanged(path, "it changed between its stat and its hashing")
    known = cache.lookup(before, algorithms)
    missing = tuple(a for a in algorithms if a not in known)
    if not missing:
        cache.hits += 1
        return {a: known[a] for a in algorithms}
    cache.misses += 1
    now_ns = time.time_ns()
    # the digest is of the file `before` describes, or FileChanged is raised and nothing stored
    fresh = hash_uncached(path, missing, progress, expect=before)
    remember(cache, before, fresh, now_ns)
    known.update(fresh)
    return {a: known[a] for a in algorithms}


def remember(cache: "HashCache", st: os.stat_result, digests: dict[str, str],
             now_ns: int | None = None) -> None:
    """Store digests of the file `st` describes (hashed no earlier than now_ns), unless racy."""
    if not _racy(st, time.time_ns() if now_ns is None else now_ns):
        cache.store(st, digests)


def _racy(st: os.stat_result, now_ns: int) -> bool:
    """Modified within the filesystem's timestamp granularity: a later write could leave
    the same mtime, so the digest is not remembered (the file is hashed again next time)."""
    margin = RACY_COARSE_NS if st.st_mtime_ns % 1_000_000_000 == 0 else RACY_NS
    return now_ns - st.st_mtime_ns < margin


def identity(st: os.stat_result) -> tuple[int, ...]:
    """What must stay the same for a file's content to be taken as unchanged."""
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def hash_uncached(path: str, algorithms: tuple[str, ...], progress: Progress | None = None,
                  expect: os.stat_result | None = None) -> dict[str, str]:
    # O_NONBLOCK: a FIFO put in the file's place must not hang us in open()
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    bar = None
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise NotRegularFile(path, before.st_mode)
        if expect is not None and identity(before) != identity(expect):
            raise FileChanged(path, "it changed between its stat and its opening")
        if progress is None and before.st_size >= PROGRESS_MIN_BYTES and sys.stderr.isatty():
            progress = bar = TerminalBar(path)
        return _digest(fd, path, before, algorithms, progress)
    finally:
        os.close(fd)     # also releases a lease
        if bar is not None:
            bar.close()


def hash_fd(fd: int, algorithms: tuple[str, ...], before: os.stat_result) -> dict[str, str]:
    """{algorithm: hex digest} of an open regular file, `before` its fstat: the content of
    the inode the descriptor is on, whatever its path names now. Only pread: the descriptor
    may be another process's open file (its offset, lease and owner are left alone).
    FileChanged if it changed while it was hashed."""
    return _digest(fd, f"descriptor {fd}", before, algorithms, None, may_map=False)


def _hashlib():
    """hashlib, imported only when an algorithm other than blake3 is asked for: loading
    OpenSSL costs every `roar run` ~4 ms otherwise."""
    import hashlib

    return hashlib


def _digest(fd: int, path: str, before: os.stat_result, algorithms: tuple[str, ...],
            progress: Progress | None, may_map: bool = True) -> dict[str, str]:
    size = before.st_size
    hashers = {name: blake3.blake3(max_threads=blake3.blake3.AUTO) if name == "blake3"
               else _hashlib().new(name) for name in algorithms}
    with contextlib.closing(_content(fd, path, before, may_map)) as chunks:
        for chunk, done in chunks:
            for h in hashers.values():
                h.update(chunk)
            if progress and (done % MMAP_SLICE == 0 or done == size):
                progress(done, size)
    if identity(os.fstat(fd)) != identity(before):
        raise FileChanged(path, "its size, times or inode differ after hashing")
    return {name: h.hexdigest() for name, h in hashers.items()}


def _step(done: int, size: int, step: int) -> int:
    # never across a progress boundary, so progress is reported at every MMAP_SLICE
    return min(step, size - done, MMAP_SLICE - done % MMAP_SLICE)


def _content(fd: int, path: str, before: os.stat_result, may_map: bool = True
             ) -> Iterator[tuple[memoryview, int]]:
    """(chunk, bytes done so far) over the file's st_size bytes, in order."""
    size, done = before.st_size, 0
    if may_map and size >= MMAP_MIN and _take_lease(fd):
        if identity(os.fstat(fd)) != identity(before):   # truncated before the lease was ours
            raise FileChanged(path, "it changed as hashing began")
        try:
            mm = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
        except (OSError, ValueError):    # a filesystem that cannot map: read it
            mm = None
        if mm is not None:
            done = yield from _mapped(fd, mm, size)
        with contextlib.suppress(OSError):   # already gone if we were too slow (lease-break-time)
            fcntl.fcntl(fd, F_SETLEASE, fcntl.F_UNLCK)   # after the unmap: a writer may go on now
    yield from _read(fd, path, size, done)


def _take_lease(fd: int) -> bool:
    try:
        # a lease break is signalled, SIGIO by default, which would kill us: SIGURG is ignored
        fcntl.fcntl(fd, F_SETSIG, signal.SIGURG)
        fcntl.fcntl(fd, F_SETLEASE, fcntl.F_RDLCK)
    except OSError:     # open for writing somewhere, no leases here, or not ours (EACCES)
        return False
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, fcntl.F_SETOWN, 0)      # and better, no signal at all
    return True


def _mapped(fd: int, mm: mmap.mmap, size: int) -> Iterator[tuple[memoryview, int]]:
    """Chunks of the map while the lease holds; returns how far it got."""
    done = 0
    with mm:
        mm.madvise(mmap.MADV_SEQUENTIAL)
        view = memoryview(mm)
        try:
            # a writer waits in open()/truncate() until we let go, so every byte mapped so far is
            # still the content we started with
            while done < size and fcntl.fcntl(fd, F_GETLEASE) == fcntl.F_RDLCK:
                n = _step(done, size, MAP_STEP)
                piece = view[done:done + n]
                try:
                    yield piece, done + n
                finally:
                    piece.release()
                done += n
        finally:
            view.release()
    return done


def _read(fd: int, path: str, size: int, done: int) -> Iterator[tuple[memoryview, int]]:
    if done >= size:
        return
    buf = bytearray(min(READ_STEP, size - done))
    view = memoryview(buf)
    try:
        while done < size:
            n = os.preadv(fd, [view[:_step(done, size, READ_STEP)]], done)
            if n == 0:
                raise FileChanged(path, f"it ended at {done} of {size} bytes")
            yield view[:n], done + n
            done += n
    finally:
        view.release()


class TerminalBar:
    """`hashing NAME  [#####.....]  45%  0.9/2.0 GB` on stderr, erased at the end."""

    WIDTH = 30

    def __init__(self, path: str) -> None:
        self.name = os.path.basename(path)

    def __call__(self, done: int, total: int) -> None:
        filled = self.WIDTH * done // max(total, 1)
        sys.stderr.write(f"\rroar: hashing {self.name}  [{'#' * filled}{'.' * (self.WIDTH - filled)}]"
                         f" {100 * done // max(total, 1):3d}%  {done / 1e9:.1f}/{total / 1e9:.1f} GB")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()
