"""What a decoded job record must hold before roar indexes or shows it.

A record file may have been written by anyone who can write in `.roar/jobs/`,
so every field the index and the CLI use is checked here (docs/record-format.md,
"Validation"): a record that decodes but has a string where a time belongs, or a
step SQLite cannot store, is refused with a message naming the file and the
field, and the workspace sets it aside instead of failing every command.

The schema is a table of small validators, each a function (value, field) that
raises Invalid. Keys the table does not name are allowed (plain data only).
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

from roar.errors import CorruptStore
from roar.record import composites

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1     # SQLite's INTEGER
MAX_TIME = 253402300799                        # 9999-12-31: what localtime and strftime take
MAX_DEPTH = 32                                 # roar's own records nest 6 deep
ID = re.compile(r"[0-9a-f]{16}")               # a job uid or session id: 16 hex digits, as roar makes them
HEX = re.compile(r"[0-9a-f]{1,128}")           # a digest
TYPES = ("run", "build", "get", "put")
STATUSES = ("ok", "failed", "killed", "interrupted")
SET_ASIDE = ("the record is set aside (left out of the index, not deleted): fix or remove the file, "
             "then run `roar db rebuild`")

Validator = Callable[[Any, str], None]
PLAIN = {str, bytes, int, float, bool, type(None)}


class Invalid(Exception):
    def __init__(self, field: str, problem: str) -> None:
        shortened = field if len(field) <= 60 else field[:60] + "..."    # a path 32 levels deep
        super().__init__(f"field `{shortened}` {problem}")


def check(record: dict[str, Any], source: str = "record") -> None:
    """Raise CorruptStore naming `source` and the first bad field of a decoded record.
    When `source` is a record file (`<uid>.msgpack`) the uid must be its name."""
    try:
        RECORD(record, "")
        grouping = composites.problem(record)
        if grouping:
            raise Invalid(*grouping)
        name = source.rpartition("/")[2]
        if name.endswith(".msgpack") and name[:-8] != record["uid"]:
            raise Invalid("uid", f"is {record['uid']!r}, not the file's name {name[:-8]!r}")
    except Invalid as bad:
        raise CorruptStore(f"{shown(source)}: {bad}; {SET_ASIDE}") from None


def check_doc(doc: Any, kind: str, source: str) -> None:
    """The same for a session file or a label change (`kind`: "session" or "label"; docs/store.md):
    CorruptStore naming `source` and the bad field."""
    check_plain(doc, source)
    try:
        DOCS[kind](doc, "")
        name = source.rpartition("/")[2]
        if name.endswith(".msgpack") and name[:-8] != doc["id"]:
            raise Invalid("id", f"is {_value(doc['id'])}, not the file's name {_value(name[:-8])}")
    except Invalid as bad:
        raise CorruptStore(f"{shown(source)}: {bad}; the file is set aside (left out of the index, "
                           "not deleted): fix or remove it, then run `roar db rebuild`") from None


def check_plain(value: Any, source: str = "record") -> None:
    """Before anything walks the raw record: only msgpack's plain types (no extension
    types), map keys that are strings, nested at most MAX_DEPTH deep."""
    if _is_plain(value, 0):
        return
    try:
        _plain(value, "", 0)      # again, to name the field
    except Invalid as bad:
        raise CorruptStore(f"{shown(source)}: {bad}; {SET_ASIDE}") from None


def _is_plain(value: Any, depth: int) -> bool:
    """_plain without the field names: every record is read this way, and most are fine."""
    if type(value) is dict:
        return depth <= MAX_DEPTH and all(type(k) is str or type(k) is bytes for k in value) and all(
            _is_plain(v, depth + 1) for v in value.values())
    if type(value) is list:
        return depth <= MAX_DEPTH and all(_is_plain(v, depth + 1) for v in value)
    return type(value) in PLAIN


def shown(text: str) -> str:
    """A file name fit for a one-line message: control characters escaped."""
    return text if text.isprintable() else repr(text)[1:-1]


def _plain(value: Any, field: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise Invalid(field, f"is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, bytes)):
                raise Invalid(field or "(the record)", f"has a key that is {_kind(key)}, not a string")
            _plain(item, _key(field, key), depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _plain(item, f"{field}[{i}]", depth + 1)
    elif not isinstance(value, (str, bytes, int, float, type(None))):   # bool is an int
        raise Invalid(field, f"is {_kind(value)}, not plain data")


def _key(field: str, key: Any) -> str:
    if isinstance(key, bytes):
        key = key.decode("utf-8", "replace")
    if not (key.isidentifier() and key.isascii()):
        return f"{field}[{shown(repr(key))}]"
    return f"{field}.{key}" if field else key


def _kind(value: Any) -> str:
    """How a message names the type of a value, in msgpack's words."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "a bool"
    for types, name in ((int, "an int"), (float, "a float"), ((str, bytes), "a str"), (list, "a list"),
                        (dict, "a map")):
        if isinstance(value, types):
            return name
    return f"a {type(value).__name__}"


def _value(value: Any) -> str:
    text = repr(value)
    return shown(text if len(text) <= 40 else text[:37] + "...")


# the validators

def string(value: Any, field: str) -> None:
    if not isinstance(value, str):
        raise Invalid(field, f"is {_kind(value)}, not a str")


MAX_STEP = 2**31 - 1
"""Steps and session numbers stay far below SQLite's 64-bit limit, so the next one
(MAX + 1) can never overflow into a float, whatever a planted file holds."""


def integer(low: int = INT64_MIN, high: int = INT64_MAX) -> Validator:
    def check_int(value: Any, field: str) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise Invalid(field, f"is {_kind(value)}, not an int")
        if not low <= value <= high:
            raise Invalid(field, f"is {_value(value)}, out of range ({low} to {high})")
    return check_int


def number(low: float = -math.inf, high: float = math.inf, what: str = "a finite number") -> Validator:
    """An int or a finite float within [low, high] (`what` says so in a message)."""
    def check_number(value: Any, field: str) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise Invalid(field, f"is {_kind(value)}, not a number")
        if not (math.isfinite(value) and low <= value <= high):
            raise Invalid(field, f"is {_value(value)}, not {what}")
    return check_number


def boolean(value: Any, field: str) -> None:
    if not isinstance(value, bool):
        raise Invalid(field, f"is {_kind(value)}, not a bool")


def matching(pattern: re.Pattern[str], what: str) -> Validator:
    def check_match(value: Any, field: str) -> None:
        string(value, field)
        if not pattern.fullmatch(value):
            raise Invalid(field, f"is {_value(value)}, not {what}")
    return check_match


def one_of(*choices: str) -> Validator:
    def check_choice(value: Any, field: str) -> None:
        if value not in choices or not isinstance(value, str):
            raise Invalid(field, f"is {_value(value)}, not one of {', '.join(choices)}")
    return check_choice


def optional(inner: Validator) -> Validator:
    """nil or what `inner` accepts."""
    def check_optional(value: Any, field: str) -> None:
        if value is not None:
            inner(value, field)
    return check_optional


def list_of(item: Validator, length: int | None = None) -> Validator:
    def check_list(value: Any, field: str) -> None:
        if not isinstance(value, list):
            raise Invalid(field, f"is {_kind(value)}, not a list")
        if length is not None and len(value) != length:
            raise Invalid(field, f"has {len(value)} items, not {length}")
        for i, v in enumerate(value):
            item(v, f"{field}[{i}]")
    return check_list


def map_of(value_check: Validator) -> Validator:
    """A map of str keys (check_plain saw to that) to values `value_check` accepts."""
    def check_map(value: Any, field: str) -> None:
        if not isinstance(value, dict):
            raise Invalid(field, f"is {_kind(value)}, not a map")
        for k, v in value.items():
            value_check(v, _key(field, k))
    return check_map


def fields(spec: dict[str, Validator], required: tuple[str, ...] = ()) -> Validator:
    """A map whose named keys hold what their validators accept; `required` keys must be there."""
    def check_fields(value: Any, field: str) -> None:
        if not isinstance(value, dict):
            raise Invalid(field or "(the record)", f"is {_kind(value)}, not a map")
        for key in required:
            if key not in value:
                raise Invalid(_key(field, key), "is missing")
        for key, validate in spec.items():
            if key in value:
                validate(value[key], _key(field, key))
    return check_fields


def anything(value: Any, field: str) -> None:
    """Plain data of any shape (check_plain has seen it)."""


# the schema (docs/record-format.md)

STR, OPT_STR, INT, OPT_INT = string, optional(string), integer(), optional(integer())
COUNT = optional(integer(0))
STRS = list_of(string)
TIME = number(0, MAX_TIME, "a Unix time from 1970 to 9999")

MEMBER = fields({"name": string, "path": OPT_STR, "hash": matching(HEX, "a hex digest"),
                 "hashes": map_of(string), "size": COUNT}, required=("name", "hash"))
_FILE = fields({"path": string, "hash": optional(matching(HEX, "a hex digest")), "hashes": map_of(string),
                "size": COUNT, "pids": list_of(INT), "kind": one_of("file", "composite"),
                "members": list_of(MEMBER)}, required=("path",))


# record version 2: how the writer grouped the files into composites (roar.record.composites)
GROUPING = list_of(fields({"path": string, "hash": matching(HEX, "a hex digest"), "size": COUNT,
                           "members": list_of(string)}, required=("path", "hash", "members")))


def file_entry(value: Any, field: str) -> None:
    """An input or output; a composite (a directory) lists its members."""
    _FILE(value, field)
    if value.get("kind") == "composite" and "members" not in value:
        raise Invalid(f"{field}.members", "is missing (the entry is a composite)")


CONTEXT = fields({
    "version": OPT_INT,
    "machine": optional(fields({
        **dict.fromkeys(("hostname", "kernel", "kernel_version", "arch", "gpu_note", "container", "vm"),
                        OPT_STR),
        "os": optional(map_of(OPT_STR)),
        "cpu": optional(fields({"model": OPT_STR, "logical_cores": COUNT, "usable_cores": COUNT})),
        "memory_bytes": COUNT,
        "gpus": list_of(fields({**dict.fromkeys(("vendor", "model", "driver", "cuda", "uuid"), OPT_STR),
                                "memory_bytes": COUNT})),
    })),
    "git": optional(fields({**dict.fromkeys(("root", "remote", "branch", "commit", "note"), OPT_STR),
                            "dirty": optional(boolean), "dirty_paths": STRS, "dirty_paths_omitted": COUNT})),
    "environment": optional(fields({"scope": OPT_STR, "variables": map_of(string), "redacted": STRS})),
    "packages": optional(fields({
        "python": list_of(fields({"exe": OPT_STR, "version": OPT_STR, "note": OPT_STR,
                                  "distributions": list_of(fields({"name": OPT_STR, "version": OPT_STR,
                                                                   "site": OPT_STR, "files": COUNT}))})),
        "system": list_of(fields({**dict.fromkeys(("manager", "name", "version", "arch"), OPT_STR),
                                  "files": COUNT})),
    })),
    # context version 2: programs and libraries outside the lineage (docs/context.md)
    "programs": optional(list_of(fields({"path": string, "role": OPT_STR, "hash": OPT_STR,
                                          "hashes": optional(map_of(string)), "package": OPT_STR},
                                         required=("path",)))),
    "notes": STRS,
})

RECORD = fields({
    "version": integer(1),
    "uid": matching(ID, "16 hex digits"),
    "session": matching(ID, "16 hex digits"),
    "step": integer(1, MAX_STEP),
    "type": one_of(*TYPES),
    "command": string,
    "argv": STRS,
    "cwd": string,
    "started_at": TIME,
    "ended_at": TIME,
    "duration_s": number(),
    "exit": fields({"code": OPT_INT, "signal": OPT_INT, "status": one_of(*STATUSES)},
                   required=("code", "signal", "status")),
    "exit_code": OPT_INT,
    "processes": list_of(fields({"pid": INT, "ppid": OPT_INT, "exe": OPT_STR, "argv": optional(STRS),
                                 "cwd": OPT_STR, "exit_code": OPT_INT, "signal": OPT_INT,
                                 "argv_truncated": optional(boolean), "privileged": optional(boolean),
                                 "untracked": optional(boolean), "wrapper_helper": optional(boolean),
                                 "exec_chain": optional(list_of(fields({"exe": OPT_STR,
                                                                        "argv": optional(STRS)})))},
                                required=("pid", "ppid"))),
    "failed_execs": list_of(fields({"pid": INT, "path": OPT_STR, "errno": OPT_INT, "error": OPT_STR})),
    "inputs": list_of(file_entry),
    "outputs": list_of(file_entry),
    "read_and_written": STRS,
    "deleted": STRS,
    "renamed": list_of(list_of(string, length=2)),
    "system_reads": STRS,
    "other_writes": STRS,
    "tracer": fields({"backend": OPT_STR, "roar_version": OPT_STR,
                      **dict.fromkeys(("events", "dropped", "paths_truncated", "paths_unresolved",
                                       "dedup_map_full", "untracked", "ring_buffer_bytes"), COUNT)}),
    "warnings": STRS,
    "labels": map_of(string),
    "argv_redacted": optional(boolean),
    "env_read": optional(map_of(OPT_STR)),      # absent: not observed (older records, get, put)
    "context": optional(CONTEXT),
    "transfer": optional(fields({"sources": optional(list_of(anything))})),
    "composites": optional(fields({"inputs": GROUPING, "outputs": GROUPING}, required=("inputs", "outputs"))),
}, required=("version", "uid", "session", "step", "type", "command", "argv", "cwd", "started_at",
             "ended_at", "duration_s", "exit", "exit_code", "processes", "failed_execs", "inputs", "outputs",
             "read_and_written", "deleted", "renamed", "system_reads", "other_writes", "tracer",
             "warnings", "labels"))

SESSION = fields({"version": integer(1, 1), "id": matching(ID, "16 hex digits"), "seq": integer(1, MAX_STEP),
                  "started_at": TIME, "ended_at": optional(TIME)},
                 required=("version", "id", "seq", "started_at"))
LABEL_ID = re.compile(r"[0-9]{20}-[0-9a-f]{8}")   # time_ns, then random hex: they sort by time
LABEL = fields({"version": integer(1, 1), "id": matching(LABEL_ID, "a label change id"),
                "at": TIME, "target_kind": one_of("session", "job", "artifact"), "target": string,
                "key": string, "value": OPT_STR},
               required=("version", "id", "at", "target_kind", "target", "key", "value"))
DOCS = {"session": SESSION, "label": LABEL}
