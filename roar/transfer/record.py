"""The job record of a get or put: the keys of roar.runner's records, filled for a transfer.

No process is traced: roar itself moves the bytes, so `processes` is empty and
`tracer.backend` is "none". The transfer's own facts are under `transfer`
(docs/get-put.md); `context` is captured as for a run, without packages.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from roar import __version__
from roar.record import job as jobrec
from roar.record.context import capture
from roar.record.context import warnings as context_warnings


def build(kind: str, argv: list[str], cwd: str, started_at: float, inputs: list[dict[str, Any]],
          outputs: list[dict[str, Any]], transfer: dict[str, Any], cache_dir: str) -> dict[str, Any]:
    """`cache_dir`: the workspace's context cache (Workspace.fd_path("cache"))."""
    ended_at = time.time()
    argv = ["roar", kind, *argv]
    context = capture(cwd=cwd, argv=[sys.executable, "-m", "roar", *argv[1:]], env=dict(os.environ),
                      processes=[], paths_read=[], cache_dir=Path(cache_dir))
    return jobrec.new_record(
        kind, argv, cwd, started_at, ended_at,
        inputs=inputs,
        outputs=outputs,
        tracer={"backend": "none", "roar_version": __version__},
        transfer=transfer,
        context=context,
        warnings=context_warnings(context),
    )
