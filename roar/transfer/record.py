"""The job record of a get or put: the keys of roar.runner's records, filled for a transfer.

No process is traced: roar itself moves the bytes, so `processes` is empty and
`tracer.backend` is "none". The transfer's own facts are under `transfer`
(docs/get-put.md); `context` is captured as for a run, without packages.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from roar import __version__
from roar.record import job as jobrec
from roar.record.context import capture

CACHE_DIRNAME = "cache"


def build(kind: str, argv: list[str], cwd: str, started_at: float, inputs: list[dict[str, Any]],
          outputs: list[dict[str, Any]], transfer: dict[str, Any], roar_dir: Path) -> dict[str, Any]:
    ended_at = time.time()
    argv = ["roar", kind, *argv]
    return {
        "format": jobrec.FORMAT,
        "version": jobrec.VERSION,
        "uid": uuid.uuid4().hex[:16],
        "session": None,
        "step": None,
        "type": kind,
        "command": shlex.join(argv),
        "argv": argv,
        "cwd": cwd,
        "started_at": started_at,
        "ended_at": ended_at,
        "duration_s": round(ended_at - started_at, 6),
        "exit": {"code": 0, "signal": None, "status": "ok"},
        "exit_code": 0,
        "processes": [],
        "failed_execs": [],
        "inputs": inputs,
        "outputs": outputs,
        "read_and_written": [],
        "deleted": [],
        "renamed": [],
        "system_reads": [],
        "other_writes": [],
        "tracer": {"backend": "none", "roar_version": __version__, "events": 0, "dropped": 0,
                   "paths_truncated": 0, "dedup_map_full": False, "ring_buffer_mb": None},
        "warnings": [],
        "labels": {},
        "transfer": transfer,
        "context": capture(cwd=cwd, argv=[sys.executable, "-m", "roar", *argv[1:]], env=dict(os.environ),
                           processes=[], paths_read=[], cache_dir=roar_dir / CACHE_DIRNAME),
    }
