"""The job record: one versioned msgpack document per recorded command.

The fields are described in docs/record-format.md. File names are kept exact:
a path that is not valid UTF-8 is stored as msgpack bin (its raw bytes) and
read back as a str with surrogate escapes (os.fsdecode), so it round-trips.
"""

from __future__ import annotations

import os
import shlex
import signal
import uuid
from typing import Any

import msgpack

from roar.errors import CorruptStore

FORMAT = "roar.job"
VERSION = 2      # 2: the record stores its composite grouping (roar.record.composites)


def new_record(kind: str, argv: list[str], cwd: str, started_at: float, ended_at: float,
               **fields: Any) -> dict[str, Any]:
    """A record with every key of the format (docs/record-format.md): identity,
    command and times filled in, the rest empty unless given in `fields`.
    Credentials in the command line and in every process's argv are replaced
    by "<redacted>" (roar.record.context.redact.scrub_argv) before anything is
    written, and `argv_redacted` says so."""
    from roar.record.context.redact import scrub_argv

    shown = scrub_argv(list(argv))
    record: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "uid": uuid.uuid4().hex[:16],
        "session": None, "step": None,   # given by the workspace when the job is added
        "type": kind, "command": shlex.join(shown), "argv": shown, "argv_redacted": shown != list(argv),
        "cwd": cwd,
        "started_at": started_at, "ended_at": ended_at,
        "duration_s": round(ended_at - started_at, 6),
        "exit": {"code": 0, "signal": None, "status": "ok"}, "exit_code": 0,
        "processes": [], "failed_execs": [], "inputs": [], "outputs": [],
        "read_and_written": [], "deleted": [], "renamed": [], "system_reads": [], "other_writes": [],
        "tracer": {}, "warnings": [], "labels": {},
    }
    record.update(fields)
    processes = []
    for process in record["processes"]:
        argv_ = process.get("argv")
        if argv_:
            process = dict(process, argv=scrub_argv(list(argv_)))
            record["argv_redacted"] |= process["argv"] != argv_
        processes.append(process)
    record["processes"] = processes
    return record


def encode(record: dict[str, Any]) -> bytes:
    """The record's bytes. Writing it is when its composite grouping is decided: a record of
    this version without one gets it here, in the record too (roar.record.composites)."""
    from roar.record import composites

    composites.decide(record)
    return msgpack.packb(_to_wire(record), use_bin_type=True)


def decode(data: bytes, source: str = "record") -> dict[str, Any]:
    """The record in `data`, checked against the format (roar.record.validate); CorruptStore
    naming `source` (the file) and what is wrong when it is not a valid job record."""
    from roar.record import validate

    name = validate.shown(source)   # a file name may hold a newline: keep the message one line
    try:
        record = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise CorruptStore(
            f"{name} is not a valid job record ({exc.__class__.__name__}): "
            "run `roar db rebuild` to reindex without it"
        ) from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CorruptStore(f"{name} is not a roar job record: run `roar db rebuild`")
    version = record.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        raise CorruptStore(
            f"{name} has record version {version}, newer than this roar understands "
            f"({VERSION}): upgrade roar"
        )
    # anyone who can write in .roar/jobs/ may have written it: check every field roar uses
    validate.check_plain(record, source)
    record = _from_wire(record)
    validate.check(record, source)
    return record


def _to_wire(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return os.fsencode(value)
    if isinstance(value, dict):
        return {_to_wire(k): _to_wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_wire(v) for v in value]
    return value


def _from_wire(value: Any) -> Any:
    if isinstance(value, bytes):
        return os.fsdecode(value)
    if isinstance(value, dict):
        return {_from_wire(k): _from_wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_wire(v) for v in value]
    return value


def exit_code_of(wait_status: int) -> int:
    """The shell convention: the code, or 128+N when killed by signal N."""
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


INTERRUPTING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def exit_fields(wait_status: int, interrupted: bool) -> dict[str, Any]:
    """`interrupted`: roar was signalled and passed it on, or the command died of
    Ctrl-C, SIGTERM, SIGHUP or SIGQUIT; `killed`: any other signal."""
    if os.WIFSIGNALED(wait_status):
        sig = os.WTERMSIG(wait_status)
        status = "interrupted" if interrupted or sig in INTERRUPTING_SIGNALS else "killed"
        return {"code": None, "signal": sig, "status": status}
    code = os.WEXITSTATUS(wait_status)
    status = "interrupted" if interrupted else ("ok" if code == 0 else "failed")
    return {"code": code, "signal": None, "status": status}


def json_path(path: str) -> dict[str, str]:
    """JSON fields for a path: `path`, plus `path_b64` when it is not UTF-8."""
    try:
        path.encode("utf-8")
        return {"path": path}
    except UnicodeEncodeError:
        import base64

        raw = os.fsencode(path)
        return {"path": raw.decode("utf-8", "replace"), "path_b64": base64.b64encode(raw).decode()}
