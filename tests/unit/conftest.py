"""Fixtures for store and lineage tests: a fresh workspace and a helper that
writes files and records a made-up job over them (no tracer, no root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from roar.store import synthetic
from roar.store.workspace import Workspace


class Jobs:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def add(self, command: str, reads: dict[str, bytes] | list[str] = (), writes: dict[str, bytes] = None,
            **kw):
        """Record a job reading `reads` (name -> content, or names of existing files)
        and writing `writes` (name -> content, written to disk first)."""
        root = self.ws.root
        if isinstance(reads, dict):
            for name, content in reads.items():
                if not (root / name).exists():
                    (root / name).parent.mkdir(parents=True, exist_ok=True)
                    (root / name).write_bytes(content)
        inputs = [synthetic.file_entry(str(root / name)) for name in reads]
        for name, content in (writes or {}).items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(content)
        outputs = [synthetic.file_entry(str(root / name)) for name in (writes or {})]
        return self.ws.add_job(synthetic.record(command, inputs, outputs, cwd=str(root), **kw))


@pytest.fixture
def ws(tmp_path: Path, monkeypatch) -> Workspace:
    monkeypatch.chdir(tmp_path)
    return Workspace.find_or_create(tmp_path)


@pytest.fixture
def jobs(ws: Workspace) -> Jobs:
    return Jobs(ws)
