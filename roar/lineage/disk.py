"""Is a recorded artifact still what is on disk at its path?

A missing file is not a change (the artifact stays recorded); a different
size is, without hashing; otherwise the file is hashed through the hash
cache, so a file that did not change since it was last hashed costs a stat.
A composite is changed when any of its members is.
"""

from __future__ import annotations

import os
import sqlite3
from typing import TYPE_CHECKING

from roar.artifacts.hashing import hash_file

if TYPE_CHECKING:
    from roar.artifacts.cache import HashCache
    from roar.lineage.dag import ArtifactNode


class DiskCheck:
    def __init__(self, conn: sqlite3.Connection, cache: "HashCache | None" = None) -> None:
        self.conn = conn
        self.cache = cache
        self._memo: dict[tuple[str, str], bool] = {}

    def changed(self, path: str, node: "ArtifactNode") -> bool:
        key = (path, node.hash)
        if key not in self._memo:
            self._memo[key] = self._changed(path, node.hash, node.kind, node.size)
        return self._memo[key]

    def _changed(self, path: str, artifact: str, kind: str, size: int | None) -> bool:
        if kind == "composite":
            members = self.conn.execute(
                "SELECT cm.name, cm.artifact, a.size FROM composite_members cm JOIN artifacts a"
                " ON a.hash = cm.artifact WHERE cm.composite = ?", (artifact,)).fetchall()
            return any(self.file_differs(os.path.join(path, name), member, msize)
                       for name, member, msize in members)
        return self.file_differs(path, artifact, size)

    def file_differs(self, path: str, artifact: str, size: int | None) -> bool:
        try:
            st = os.stat(path)
        except OSError:
            return False
        if size is not None and st.st_size != size:
            return True
        algorithm, _, digest = artifact.rpartition(":")
        try:
            now = hash_file(path, (algorithm or "blake3",), cache=self.cache)
        except OSError:
            return False
        return now[algorithm or "blake3"] != digest
