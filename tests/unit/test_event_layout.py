"""The Python decoder must agree with bpf/events.h byte for byte: compile the
header with the host compiler and compare every struct size and field offset."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from roar.tracer import events

EVENTS_H = Path(__file__).resolve().parents[2] / "bpf" / "events.h"


def _c_layout(tmp_path: Path) -> dict[str, int]:
    lines = ['#include <stdio.h>', '#include <stddef.h>', f'#include "{EVENTS_H}"', "int main(void) {"]
    for name, fields in events.LAYOUTS.items():
        lines.append(f'printf("{name} %zu\\n", sizeof(struct {name}));')
        for field, _ in fields:
            lines.append(f'printf("{name}.{field} %zu\\n", offsetof(struct {name}, {field}));')
    for field, _ in events.HEADER:
        lines.append(f'printf("ev_header.{field} %zu\\n", offsetof(struct ev_header, {field}));')
    lines.append("return 0; }")
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    subprocess.run(["cc", "-o", str(tmp_path / "layout"), str(src)], check=True)
    out = subprocess.run([str(tmp_path / "layout")], capture_output=True, text=True, check=True).stdout
    return {k: int(v) for k, v in (line.split() for line in out.splitlines())}


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_decoder_matches_c_layout(tmp_path: Path) -> None:
    c = _c_layout(tmp_path)
    for name in events.LAYOUTS:
        assert events.struct_size(name) == c[name], f"sizeof(struct {name})"
        offsets = events.field_offsets(name)
        for field, _ in events.LAYOUTS[name]:
            assert offsets[field] == c[f"{name}.{field}"], f"{name}.{field}"
    for field, offset in events.field_offsets("ev_header").items():
        assert offset == c[f"ev_header.{field}"]


def test_python_constants_match_header() -> None:
    text = EVENTS_H.read_text()
    defined = {m.group(1): int(m.group(2)) for m in re.finditer(r"ROAR_(\w+) = (\d+)", text)}
    for name in ("EV_FORK", "EV_EXEC", "EV_FILE", "EV_PATHOP", "EV_EXIT", "ACC_READ", "ACC_WRITE",
                 "ACC_CREATE", "ACC_TRUNC", "ACC_MMAP_READ", "ACC_MMAP_WRITE", "OP_RENAME", "OP_LINK",
                 "OP_UNLINK", "OP_TRUNCATE", "OP_RMDIR", "STAT_DROPPED", "STAT_PATH_TRUNCATED",
                 "STAT_SEEN_FAILED", "STAT_UNTRACKED", "STAT_PIN_FAILED", "STAT_COUNT", "FORK_UNTRACKED"):
        assert getattr(events, name) == defined[name], name


def test_unknown_event_type_is_a_clear_error() -> None:
    from roar.errors import TracerError

    raw = bytes([99, 0]) + bytes(22)
    with pytest.raises(TracerError, match="unknown event type 99"):
        events.decode(raw)


def test_decode_file_event_roundtrip() -> None:
    import struct

    path = b"/tmp/caf\xe9\n.txt"
    fmt = "=" + "".join(f for _, f in events.HEADER + events.LAYOUTS["ev_file"])
    ctime_nsec = 3 | 1 << 31     # Linux 6.13+ flags a queried ctime in the top bit: not time
    fixed = struct.pack(fmt, events.EV_FILE, 0, 42, 43, 0, 7, events.ACC_READ, 0o100644, 5, 6, 10, 1, 2,
                        len(path) + 1, 0, 9, ctime_nsec, 4)
    e = events.decode(fixed + path + b"\0")
    assert (e.tgid, e.access, e.dev, e.ino, e.size, e.mtime_ns, e.path, e.generation, e.ctime_ns) == (
        42, events.ACC_READ, 5, 6, 10, 1_000_000_002, path, 9, 4_000_000_003)


def test_path_cut_marker_matches_header() -> None:
    m = re.search(r"#define ROAR_PATH_CUT '(.)'", EVENTS_H.read_text())
    assert m and events.PATH_CUT == m.group(1).encode()


def test_decode_fork_untracked_flag() -> None:
    import struct

    fmt = "=" + "".join(f for _, f in events.HEADER + events.LAYOUTS["ev_fork"])
    raw = struct.pack(fmt, events.EV_FORK, 0, 1, 1, 0, 7, 1, 2, events.FORK_UNTRACKED, 0)
    e = events.decode(raw)
    assert (e.tgid, e.child, e.untracked) == (1, 2, True)
