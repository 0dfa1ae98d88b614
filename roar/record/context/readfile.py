"""Reading a file that someone else may have put there: a repository's HEAD, a
package's METADATA, a cache entry.

Such a path may be a FIFO (an open or a read would block roar for ever, after
the job, with its record not yet written), a device, or a huge file. open_text()
opens without blocking, refuses anything but a regular file, and reads at most
`limit` bytes; every failure is an OSError, which callers treat as "not there".
"""

from __future__ import annotations

import errno
import io
import os
import stat

DEFAULT_LIMIT = 64 << 20


def open_text(path: str | os.PathLike, limit: int = DEFAULT_LIMIT, newline: str | None = None) -> io.StringIO:
    """The file's text (UTF-8, undecodable bytes replaced) as a file object."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        data = f.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit} bytes", str(path))
    return io.StringIO(data.decode("utf-8", errors="replace"), newline=newline)


def read_text(path: str | os.PathLike, limit: int = DEFAULT_LIMIT) -> str:
    """The whole text, or "" when it cannot be read (missing, not a regular file, too big)."""
    try:
        return open_text(path, limit).read()
    except OSError:
        return ""


def is_regular(path: str | os.PathLike) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False
