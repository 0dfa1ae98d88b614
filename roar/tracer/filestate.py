"""A file's state as the kernel saw it at an access: what a hash taken later must match."""

from __future__ import annotations

import os
from typing import NamedTuple


class FileState(NamedTuple):
    dev: int            # in os.stat's encoding
    ino: int
    generation: int     # a reused inode number is another file
    size: int
    mtime_ns: int
    ctime_ns: int       # no user can set it: with mtime, any write since shows

    @property
    def inode(self) -> tuple[int, int, int]:
        return self.dev, self.ino, self.generation

    def same_content(self, st: os.stat_result) -> bool:
        """st (a later stat of the same path or descriptor) shows no change since this state."""
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) == (
            self.dev, self.ino, self.size, self.mtime_ns, self.ctime_ns)
