"""`roar completion bash|zsh`: the scripts loaded into real shells. Most cases drive the bash
function the way readline does (COMP_LINE, COMP_POINT, COMP_WORDS, COMP_CWORD); one bash and
the zsh cases press TAB in an interactive shell on a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROAR = [sys.executable, "-m", "roar"]
ENV = {**os.environ, "LANG": "C.UTF-8"}

DRIVE_BASH = r"""
source "$1"
COMP_LINE=$2 COMP_POINT=${#2}
read -ra COMP_WORDS <<< "$2"
[[ $2 == *' ' ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
_roar roar
printf '%s\n' "${COMPREPLY[@]}"
"""


def roar(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*ROAR, *args], cwd=cwd, capture_output=True, text=True, env=ENV)


@pytest.fixture(scope="module")
def scripts(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("completion")
    out = {}
    for shell in ("bash", "zsh"):
        made = roar(d, "completion", shell)
        assert made.returncode == 0 and made.stderr == "", made.stderr
        (d / shell).write_text(made.stdout)
        out[shell] = d / shell
    return out


@pytest.fixture
def bin_dir(tmp_path) -> Path:
    """A `roar` on PATH: the checkout's, as the scripts call it for refs."""
    d = tmp_path / "bin"
    d.mkdir()
    (d / "roar").write_text(f'#!/bin/sh\nexec {sys.executable} -m roar "$@"\n')
    (d / "roar").chmod(0o755)
    return d


def complete(script: Path, line: str, cwd: Path, path: str | None = None) -> list[str]:
    env = {**ENV, "PATH": f"{path}:{ENV['PATH']}"} if path else ENV
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", DRIVE_BASH, "drive", str(script), line],
                          cwd=cwd, capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return [w for w in done.stdout.splitlines() if w]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A workspace with two sessions (real `roar get` jobs: no tracer needed)."""
    top = tmp_path_factory.mktemp("refs")
    work = top / "work"
    work.mkdir()
    src = str(top / "src.txt")
    (top / "src.txt").write_text("data\n")
    for args in (("get", "-q", src, "one.txt"), ("get", "-q", src, "two.txt"), ("reset",),
                 ("get", "-q", src, "three.txt")):
        done = roar(work, *args)
        assert done.returncode == 0, done.stderr
    return work


def test_bash_verbs_subcommands_and_options(scripts, tmp_path):
    bash = scripts["bash"]
    verbs = complete(bash, "roar ", tmp_path)
    assert {"run", "build", "show", "status", "dag", "log", "label", "db", "doctor", "completion",
            "reproduce", "glaas"} <= set(verbs)
    assert complete(bash, "roar st", tmp_path) == ["status"]
    assert complete(bash, "roar sh", tmp_path) == ["show"]
    assert complete(bash, "roar db ", tmp_path) == ["rebuild"]
    assert {"create", "revoke"} <= set(complete(bash, "roar glaas token ", tmp_path))
    assert {"set", "show", "unset"} <= set(complete(bash, "roar label ", tmp_path))
    assert complete(bash, "roar label un", tmp_path) == ["unset"]
    assert set(complete(bash, "roar run --", tmp_path)) >= {"--ring-buffer", "--hash", "--label", "--quiet",
                                                           "--verbose", "--help"}
    assert complete(bash, "roar reproduce --st", tmp_path) == ["--step-timeout"]
    assert complete(bash, "roar --v", tmp_path) == ["--version"]
    assert sorted(complete(bash, "roar completion ", tmp_path)) == ["bash", "zsh"]


def test_bash_option_values(scripts, tmp_path):
    bash = scripts["bash"]
    assert complete(bash, "roar dag --format ", tmp_path) == ["text", "json", "dot", "mermaid", "svg", "png"]
    assert complete(bash, "roar dag -f m", tmp_path) == ["mermaid"]
    assert complete(bash, "roar dag --format=d", tmp_path) == ["dot"]   # bash's word is after the =
    assert complete(bash, "roar run --hash sha2", tmp_path) == ["sha256"]
    (tmp_path / "out.svg").write_text("")
    assert complete(bash, "roar dag -o ou", tmp_path) == ["out.svg"]
    # a value is not taken for a verb: the option's value is skipped when walking the line
    assert complete(bash, "roar dag -f dot --js", tmp_path) == ["--json"]


def test_bash_traced_command_completes_as_its_own_command_line(scripts, tmp_path):
    bash = scripts["bash"]
    (tmp_path / "train.py").write_text("")
    assert complete(bash, "roar run -q -- ech", tmp_path) == ["echo"]
    assert complete(bash, "roar run ech", tmp_path) == ["echo"]
    assert complete(bash, "roar build -l k=v ech", tmp_path) == ["echo"]
    assert complete(bash, "roar run -- python3 tra", tmp_path) == ["train.py"]
    # options after the command are the command's, not roar's
    assert complete(bash, "roar run -- ls --hel", tmp_path) == []


def test_bash_refs_come_from_the_workspace(scripts, workspace, bin_dir):
    bash, path = scripts["bash"], str(bin_dir)
    # the current session is the second: one step; both sessions are offered
    assert complete(bash, "roar show @", workspace, path) == ["@1"]
    assert complete(bash, "roar show s", workspace, path) == ["session", "session:1", "session:2"]
    # bash splits words at ':' and replaces only what follows it
    assert complete(bash, "roar show session:", workspace, path) == ["1", "2"]
    assert complete(bash, "roar dag --session ", workspace, path) == ["session", "session:1", "session:2"]
    # a path is a ref too: files are offered beside the refs, and alone once the word is a path
    assert set(complete(bash, "roar show ", workspace, path)) >= {"@1", "session", "three.txt", "one.txt"}
    assert complete(bash, "roar label set th", workspace, path) == ["three.txt"]
    assert complete(bash, "roar reproduce t", workspace, path) == ["three.txt", "two.txt"]


def test_refs_outside_a_workspace_are_silent(tmp_path):
    done = roar(tmp_path, "completion", "--refs")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_refs_list_the_current_session_steps_then_the_sessions(workspace):
    done = roar(workspace, "completion", "--refs")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["@1", "session", "session:1", "session:2"]


@pytest.mark.parametrize("args, message", [
    ((), "roar: no shell given: use `roar completion bash` or `roar completion zsh`\n"),
    (("fish",), "roar: unknown shell 'fish': use `roar completion bash` or `roar completion zsh`\n"),
])
def test_unknown_or_missing_shell_is_a_usage_error(tmp_path, args, message):
    done = roar(tmp_path, "completion", *args)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", message)


def test_scripts_parse(scripts):
    subprocess.run(["bash", "-n", str(scripts["bash"])], check=True)
    if shutil.which("zsh"):
        subprocess.run(["zsh", "-n", str(scripts["zsh"])], check=True)


# TAB in interactive shells -------------------------------------------------------------

# `roar` is a function that prints its arguments (so pressing Enter shows the completed line
# without running it), except `roar completion --refs`, which the scripts call for refs.
ROAR_FUNCTION = (f'roar() {{ if [ "$1" = completion ]; then {sys.executable} -m roar "$@"; '
                 "else printf '%s%s<%s>\\n' AR GS \"$*\"; fi; }")   # the marker is not what is typed


class Terminal:
    """An interactive shell on a pseudo-terminal, typed at like a user would."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:   # the child: the shell
            os.chdir(cwd)
            os.execvpe(argv[0], argv, env)
        self.seen = b""

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def wait_for(self, pattern: str, timeout: float = 20) -> re.Match:
        end = time.monotonic() + timeout
        while (found := re.search(pattern, self.seen.decode(errors="replace"))) is None:
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if time.monotonic() > end:
                raise AssertionError(f"{pattern!r} not in the terminal's output:\n{self.seen!r}")
            if ready:
                self.seen += os.read(self.fd, 4096)
        return found

    def run(self, keys: str) -> str:
        """Type keys (TABs included) then Enter; the arguments the roar function got."""
        self.seen = b""
        self.type(keys + "\n")
        return self.wait_for(r"ARGS<(.*?)>\r?\n").group(1)

    def close(self) -> None:
        self.type("exit\n")
        try:
            os.waitpid(self.pid, 0)
        finally:
            os.close(self.fd)


@pytest.fixture
def terminal(workspace):
    opened: list[Terminal] = []

    def start(argv: list[str]) -> Terminal:
        env = {"PATH": ENV["PATH"], "HOME": str(workspace.parent), "TERM": "dumb", "LANG": "C.UTF-8",
               "PS1": "$ "}
        term = Terminal(argv, workspace, env)
        opened.append(term)
        return term

    yield start
    for term in opened:
        term.close()


def test_bash_tab_in_an_interactive_shell(scripts, terminal):
    term = terminal(["bash", "--norc", "--noprofile", "-i"])
    term.type(f"source {scripts['bash']}; {ROAR_FUNCTION}; echo RE""ADY\n")
    term.wait_for("READY\r\n")
    assert term.run("roar sta\t") == "status"
    assert term.run("roar glaas to\tcr\t--us\t") == "glaas token create --user"
    assert term.run("roar show @\t") == "show @1"
    assert term.run("roar dag -f merm\t") == "dag -f mermaid"


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (scripts/setup installs it)")
@pytest.mark.parametrize("load", ["source", "fpath"])
def test_zsh_tab_in_an_interactive_shell(scripts, terminal, load, tmp_path):
    term = terminal(["zsh", "-f", "-i"])
    if load == "fpath":   # installed as _roar in $fpath, autoloaded by compinit
        functions = tmp_path / "functions"
        functions.mkdir()
        shutil.copy(scripts["zsh"], functions / "_roar")
        setup = f"fpath=({functions} $fpath); autoload -Uz compinit; compinit -u -D"
    else:
        setup = f"autoload -Uz compinit; compinit -u -D; source {scripts['zsh']}"
    term.type(f"{setup}; {ROAR_FUNCTION}; echo RE""ADY\n")
    term.wait_for("READY")
    assert term.run("roar sta\t") == "status"
    assert term.run("roar glaas to\tcr\t--us\t") == "glaas token create --user"
    assert term.run("roar show @\t") == "show @1"
    assert term.run("roar dag -f merm\t") == "dag -f mermaid"
    assert term.run("roar run -- ech\t") == "run -- echo"
