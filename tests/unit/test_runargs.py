"""The fast run/build parser (roar.cli.runargs) must read every command line
exactly as the Typer app would."""

from __future__ import annotations

import pytest
from typer.main import get_command

from roar.cli import runargs
from roar.cli.main import app
from roar.errors import UsageError

CASES = [
    ["true"],
    ["--", "sh", "-c", "exit 3"],
    ["-q", "python", "train.py", "--epochs", "3"],
    ["--ring-buffer", "64K", "-v", "--", "make", "-j2"],
    ["--ring-buffer=1M", "--hash", "sha256", "--hash=md5", "cp", "a", "b"],
    ["--quiet", "--verbose", "ls", "-q"],
    ["cmd", "--", "x"],
    [],
]


@pytest.mark.parametrize("args", CASES, ids=lambda a: " ".join(a) or "empty")
@pytest.mark.parametrize("verb", ["run", "build"])
def test_fast_parser_agrees_with_typer(verb: str, args: list[str]) -> None:
    command = get_command(app).commands[verb]
    ctx = command.make_context(verb, list(args))
    typer_params = {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in ctx.params.items()}
    typer_params["command"] = typer_params["command"] or []
    assert runargs.parse_fast(list(args)) == typer_params


def test_help_goes_to_typer() -> None:
    assert runargs.parse_fast(["--help"]) is None
    assert runargs.parse_fast(["-q", "-h"]) is None


def test_unknown_option_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown option --bogus"):
        runargs.parse_fast(["--bogus", "true"])


@pytest.mark.parametrize("text,size", [("4K", 4096), ("16M", 16 << 20), ("256m", 256 << 20), ("8192", 8192)])
def test_sizes(text: str, size: int) -> None:
    assert runargs.parse_size(text) == size


@pytest.mark.parametrize("text", ["3K", "2K", "x", "16Q", ""])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(UsageError):
        runargs.parse_size(text)


@pytest.mark.parametrize("text", ["512M", "1G", "2G", "4G", "8G", str(1 << 32)])
def test_sizes_over_the_cap(text: str) -> None:
    """The kernel's max_entries is 32 bits (4G wraps to 0) and every byte costs
    two of memory: sizes above 256M are refused before anything is loaded."""
    with pytest.raises(UsageError, match="over the limit of 256M"):
        runargs.parse_size(text)
