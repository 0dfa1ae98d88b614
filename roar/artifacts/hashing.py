"""Content hashes of files: blake3 by default, other hashlib algorithms on request.

blake3 runs on all cores (blake3's own thread pool over a memory map, like
`b3sum`). Files above PROGRESS_MIN_BYTES show a progress bar when stderr is a
terminal. With a HashCache (roar.artifacts.cache) an unchanged file is never
hashed twice.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import sys
from typing import TYPE_CHECKING, Callable, Iterable

import blake3

if TYPE_CHECKING:
    from roar.artifacts.cache import HashCache

DEFAULT_ALGORITHM = "blake3"
CHUNK = 1 << 20
MMAP_SLICE = 256 << 20          # blake3 work per call when showing progress
PROGRESS_MIN_BYTES = 256 << 20

Progress = Callable[[int, int], None]   # (bytes done, total)


def hash_file(path: str, algorithms: Iterable[str] = (DEFAULT_ALGORITHM,),
              cache: "HashCache | None" = None, progress: Progress | None = None) -> dict[str, str]:
    """{algorithm: hex digest} of the file's content.

    With `cache`, digests already known for the file's (dev, inode, size,
    mtime_ns) are reused and new ones are remembered. `progress` overrides
    the default (a bar on a terminal for big files)."""
    algorithms = tuple(dict.fromkeys(algorithms))
    if cache is not None:
        return cache.hash_file(path, algorithms, progress)
    return hash_uncached(path, algorithms, progress)


def hash_uncached(path: str, algorithms: tuple[str, ...], progress: Progress | None = None) -> dict[str, str]:
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if progress is None and size >= PROGRESS_MIN_BYTES and sys.stderr.isatty():
            progress = TerminalBar(path)
        result = {}
        if "blake3" in algorithms:
            result["blake3"] = _blake3(f, size, progress)
        others = [hashlib.new(name) for name in algorithms if name != "blake3"]
        if others:
            f.seek(0)
            chunks = 0
            while chunk := f.read(CHUNK):
                for h in others:
                    h.update(chunk)
                chunks += 1
                if progress and chunks % (MMAP_SLICE // CHUNK) == 0:
                    progress(min(chunks * CHUNK, size), size)
            result.update({name: h.hexdigest() for name, h in zip(
                [a for a in algorithms if a != "blake3"], others, strict=True)})
    if isinstance(progress, TerminalBar):
        progress.close()
    return result


def _blake3(f, size: int, progress: Progress | None) -> str:
    h = blake3.blake3(max_threads=blake3.blake3.AUTO)
    if size == 0:
        return h.hexdigest()
    if progress is None:        # one call over the whole map: the most parallel, as b3sum does
        h.update_mmap(f.name)
        return h.hexdigest()
    with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        mm.madvise(mmap.MADV_SEQUENTIAL)
        view = memoryview(mm)
        try:
            for offset in range(0, size, MMAP_SLICE):
                h.update(view[offset:offset + MMAP_SLICE])
                if progress:
                    progress(min(offset + MMAP_SLICE, size), size)
        finally:
            view.release()
    return h.hexdigest()


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
