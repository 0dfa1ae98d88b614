"""A file name cannot drive the terminal: control characters in names, commands and
warnings are escaped in every text output of show, status, log and dag (roar.cli.output);
--json keeps the exact name."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from roar.cli.output import printable, printable_data
from tests.security.conftest import roar

# the title-setting OSC sequence, a bell, a fake line, and a byte that is not UTF-8 (C1 CSI)
TITLE = "in\x1b]0;owned\x07put"
FAKE = "out\nroar: all clean"
CSI = b"csi\x9b31mred".decode("utf-8", "surrogateescape")
# any C0 control but the newline that ends a line, DEL, C1 (raw or UTF-8 encoded)
RAW_CONTROL = re.compile(rb"[\x00-\x09\x0b-\x1f\x7f\x80-\x9f]|\xc2[\x80-\x9f]")


@pytest.mark.parametrize("text, shown", [
    ("a\x1bb", "a\\x1bb"), ("bell\x07", "bell\\x07"), ("two\nlines", "two\\nlines"), ("t\tab\r", "t\\tab\\r"),
    ("del\x7f", "del\\x7f"), ("c1\x9b", "c1\\x9b"), ("raw" + b"\xff".decode("utf-8", "surrogateescape"),
                                                     "raw\\xff"),
    ("café 数据 ok/path.csv", "café 数据 ok/path.csv"),
])
def test_printable_escapes_control_characters(text, shown):
    assert printable(text) == shown


def test_printable_data_escapes_every_string_and_key():
    assert printable_data({"a\n": ["x\x1b", ("y\x07", 3)], "n": None}) == \
        {"a\\n": ["x\\x1b", ("y\\x07", 3)], "n": None}
    assert printable("a\nb\x1b", keep="\n") == "a\nb\\x1b"


@pytest.mark.root
def test_text_outputs_escape_hostile_file_names(tmp_path: Path):
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LC_ALL": "C.UTF-8"}
    (tmp_path / TITLE).write_text("data")
    # the non-UTF-8 name is made by the script: roar cannot index a non-UTF-8 command line yet
    script = 'cat "$1" > "$2"; cat "$1" > "$(printf \'csi\\23331mred\')"'
    args = ["run", "-q", "--", "sh", "-c", script, "sh", TITLE, FAKE]
    proc = roar(*args, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert (tmp_path / FAKE).exists() and (tmp_path / CSI).exists()

    commands = (["show", "@1"], ["status"], ["log"], ["dag"], ["dag", "-f", "dot"], ["dag", "-f", "mermaid"],
                ["show", str(tmp_path / FAKE)], ["show", "session"])
    for command in commands:
        out = roar(*command, cwd=tmp_path, env=env)
        assert out.returncode == 0, (command, out.stderr)
        assert not RAW_CONTROL.search(out.stdout), (command, out.stdout)
        assert not any(line.startswith(b"roar: all clean") for line in out.stdout.splitlines()), command
        text = out.stdout.decode()
        if command in (["show", "@1"], ["status"], ["log"], ["dag"]):
            assert "out\\nroar: all clean" in text, (command, text)
        if command in (["show", "@1"], ["status"], ["dag"]):
            assert "in\\x1b]0;owned\\x07put" in text and "csi\\x9b31mred" in text, (command, text)

    record = json.loads(roar("show", "@1", "--json", cwd=tmp_path, env=env).stdout)
    inputs = {Path(f["path"]).name for f in record["inputs"]}
    outputs = {Path(f["path"]).name for f in record["outputs"]}
    assert TITLE in inputs and FAKE in outputs, (inputs, outputs)
