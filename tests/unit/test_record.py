"""Job record encoding: versioned, exact for any file name, clear errors."""

from __future__ import annotations

import os

import msgpack
import pytest

from roar.errors import CorruptStore
from roar.record import job


def test_roundtrip_keeps_non_utf8_paths_exact() -> None:
    odd = os.fsdecode(b"/tmp/caf\xe9\n.txt")
    record = {"format": job.FORMAT, "version": job.VERSION, "inputs": [{"path": odd}], "n": 3}
    back = job.decode(job.encode(record))
    assert back == record
    assert os.fsencode(back["inputs"][0]["path"]) == b"/tmp/caf\xe9\n.txt"


def test_newer_version_asks_for_upgrade() -> None:
    data = msgpack.packb({"format": job.FORMAT, "version": job.VERSION + 1})
    with pytest.raises(CorruptStore, match="upgrade roar"):
        job.decode(data, "x.msgpack")


def test_garbage_names_the_file() -> None:
    with pytest.raises(CorruptStore, match="x.msgpack is not a valid job record"):
        job.decode(b"\xc1\xc1", "x.msgpack")


def test_exit_fields() -> None:
    assert job.exit_code_of(3 << 8) == 3
    assert job.exit_code_of(9) == 137
    assert job.exit_fields(9, interrupted=False) == {"code": None, "signal": 9, "status": "killed"}
    assert job.exit_fields(2, interrupted=False)["status"] == "interrupted"   # SIGINT
    assert job.exit_fields(5 << 8, interrupted=True) == {"code": 5, "signal": None, "status": "interrupted"}
    assert job.exit_fields(0, interrupted=False)["status"] == "ok"


def test_json_path_for_non_utf8() -> None:
    odd = os.fsdecode(b"/x/\xff")
    out = job.json_path(odd)
    assert out["path_b64"] == "L3gv/w=="
