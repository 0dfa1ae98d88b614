"""Job records made up in memory, for tests and benchmarks, built through the
code `roar run` writes them with (roar.record.job.new_record, the runner's file
entries, the collector's process entries), so a change to the record shape
reaches them too; the files' real hashes are used when they exist."""

from __future__ import annotations

import os
import time
from typing import Any, Iterable

from roar.record import job as jobrec
from roar.record.filesets import Seen

PID = 1   # the one made-up process that did everything


def file_entry(path: str, content: bytes | None = None, hash_: str | None = None,
               size: int | None = None) -> dict[str, Any]:
    """An input/output entry: hashed from `content`, from the file at `path`, or given."""
    import blake3

    from roar.runner import _file_entry

    if hash_ is None:
        if content is None:
            with open(path, "rb") as f:
                content = f.read()
        hash_ = blake3.blake3(content).hexdigest()
        size = len(content)
    return _file_entry(Seen(path), {"blake3": hash_}, size, {PID})


def record(command: str, inputs: Iterable[dict[str, Any]] = (), outputs: Iterable[dict[str, Any]] = (),
           kind: str = "run", exit_code: int = 0, cwd: str | None = None,
           labels: dict[str, str] | None = None, warnings: list[str] | None = None,
           started_at: float | None = None) -> dict[str, Any]:
    from roar.tracer.collector import Process

    started = time.time() if started_at is None else started_at
    argv = command.split()
    cwd = cwd or os.getcwd()
    status = exit_code << 8    # a wait status: exited with exit_code
    process = Process(PID, 0, 0, exe=f"/usr/bin/{argv[0] if argv else 'sh'}", argv=argv, cwd=cwd,
                      wait_status=status)
    return jobrec.new_record(
        kind, argv, cwd, started, started + 0.5,
        exit=jobrec.exit_fields(status, False), exit_code=jobrec.exit_code_of(status),
        processes=[process.as_record()], inputs=list(inputs), outputs=list(outputs),
        tracer={"backend": "synthetic"}, warnings=list(warnings or []), labels=dict(labels or {}),
    )
