"""Content hashes of files: blake3 by default, other hashlib algorithms on request."""

from __future__ import annotations

import hashlib
from typing import Iterable

import blake3

DEFAULT_ALGORITHM = "blake3"
CHUNK = 1 << 20


def hash_file(path: str, algorithms: Iterable[str] = (DEFAULT_ALGORITHM,)) -> dict[str, str]:
    """{algorithm: hex digest} of the file's content."""
    result = {}
    others = []
    for name in algorithms:
        if name == "blake3":
            h = blake3.blake3(max_threads=blake3.blake3.AUTO)
            h.update_mmap(path)
            result[name] = h.hexdigest()
        else:
            others.append(hashlib.new(name))
    if others:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                for h in others:
                    h.update(chunk)
        result.update({h.name: h.hexdigest() for h in others})
    return result
