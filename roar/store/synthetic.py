"""Job records made up in memory, for tests and benchmarks: the shape
roar.runner writes, with the files' real hashes when they exist."""

from __future__ import annotations

import os
import time
import uuid
from typing import Any, Iterable

from roar.record import job as jobrec


def file_entry(path: str, content: bytes | None = None, hash_: str | None = None,
               size: int | None = None) -> dict[str, Any]:
    """An input/output entry: hashed from `content`, from the file at `path`, or given."""
    import blake3

    if hash_ is None:
        if content is None:
            with open(path, "rb") as f:
                content = f.read()
        hash_ = blake3.blake3(content).hexdigest()
        size = len(content)
    return {"path": path, "hash": hash_, "hashes": {"blake3": hash_}, "size": size, "pids": [1]}


def record(command: str, inputs: Iterable[dict[str, Any]] = (), outputs: Iterable[dict[str, Any]] = (),
           kind: str = "run", exit_code: int = 0, cwd: str | None = None,
           labels: dict[str, str] | None = None, warnings: list[str] | None = None,
           started_at: float | None = None) -> dict[str, Any]:
    started = time.time() if started_at is None else started_at
    argv = command.split()
    return {
        "format": jobrec.FORMAT, "version": jobrec.VERSION, "uid": uuid.uuid4().hex[:16],
        "session": None, "step": None, "type": kind, "command": command, "argv": argv,
        "cwd": cwd or os.getcwd(), "started_at": started, "ended_at": started + 0.5, "duration_s": 0.5,
        "exit": {"code": exit_code, "signal": None, "status": "ok" if exit_code == 0 else "failed"},
        "exit_code": exit_code,
        "processes": [{"pid": 1, "ppid": 0, "exe": f"/usr/bin/{argv[0] if argv else 'sh'}", "argv": argv,
                       "cwd": cwd or os.getcwd(), "exit_code": exit_code, "signal": None}],
        "failed_execs": [], "inputs": list(inputs), "outputs": list(outputs), "read_and_written": [],
        "deleted": [], "renamed": [], "system_reads": [], "other_writes": [],
        "tracer": {"backend": "synthetic"}, "warnings": list(warnings or []), "labels": dict(labels or {}),
    }
