"""`roar reproduce --run`: the recipe carried out in a fresh directory, each step under
roar itself (the steps form the new directory's first session), and with `--verify`
every output compared with its recorded hash.

Nothing starts until the directory is set up and every source input is there with its
recorded hash: a reproduction from other inputs proves nothing (--allow-changed-inputs
goes on anyway, and says so)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from roar import privilege
from roar.errors import ReproduceRefused, StepFailed
from roar.reproduce.acting import Acting
from roar.reproduce.paths import RootMap

Say = Callable[[str], None]
MAX_LISTED = 5


@dataclass
class Options:
    directory: str
    step_timeout: float | None = None
    keep_going: bool = False
    allow_changed_inputs: bool = False
    verify: bool = False
    acting: Acting = field(default_factory=lambda: Acting(None))   # root only to start a run/build step


@dataclass
class Outcome:
    directory: str
    steps: list[dict[str, Any]] = field(default_factory=list)   # step, status, exit_code, outputs


def prepare(recipe: dict[str, Any], options: Options, say: Say) -> tuple[RootMap, dict[str, str]]:
    """The fresh directory with the code and the source inputs in place, and the steps'
    environment. ReproduceRefused when something the recipe needs cannot be had."""
    target = os.path.abspath(options.directory)
    if os.path.islink(target) or (os.path.lexists(target) and (not os.path.isdir(target)
                                                                or os.listdir(target))):
        raise ReproduceRefused(f"{target} exists and is not an empty directory: give a new --dir")
    git = recipe["git"]
    root = (git or {}).get("root") or recipe["root"]
    mapping = RootMap(root, target)
    if git:
        _checkout(git, target, say)
    else:
        os.makedirs(target, exist_ok=True)
    _place_sources(recipe, mapping, options.allow_changed_inputs, say)
    env = dict(os.environ)
    venv_bin = _venv(recipe["packages"]["python"], target, say) if recipe["packages"]["python"] else None
    if venv_bin:
        env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    return mapping, env


def _run(argv: list[str], what: str, cwd: str | None = None) -> None:
    try:   # as the user for real under sudo: a hook or setup.py cannot take root back
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False,
                              **privilege.child_ids())
    except OSError as exc:
        raise ReproduceRefused(f"{what}: {argv[0]}: {exc.strerror}") from None
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["exit status %d" % done.returncode])[-1]
        raise ReproduceRefused(f"{what}: {last}")


def _checkout(git: dict[str, Any], target: str, say: Say) -> None:
    origin = git.get("remote") or git["root"]
    say(f"clone {origin} at {git['commit'][:12]} into {target}")
    # no hooks, no local config from the origin: the clone is someone else's repository
    _run(["git", "-c", "core.hooksPath=/dev/null", "clone", "-q", "--no-checkout", "--", origin, target],
         f"cannot clone {origin}; check the URL or clone it yourself and pass --dir")
    _run(["git", "-c", "core.hooksPath=/dev/null", "-C", target, "checkout", "-q", "--detach", git["commit"]],
         f"commit {git['commit']} cannot be checked out from {origin} (push it, or fetch it there)")
    if git.get("dirty"):
        say("warning: the recorded work tree had uncommitted changes; the source inputs carry them")


def _place_sources(recipe: dict[str, Any], mapping: RootMap, allow: bool, say: Say) -> None:
    """Each source input at its mapped path, copied from the workspace when the checkout
    lacks it (an untracked data file), and checked against its recorded hash."""
    from roar.artifacts.hashing import hash_file

    problems = []
    for source in recipe["sources"]:
        path = mapping.path(source["path"])
        if path != source["path"] and not os.path.lexists(path) and os.path.isfile(source["path"]):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            shutil.copy2(source["path"], path, follow_symlinks=False)
        try:
            now = hash_file(path)["blake3"]
        except OSError:
            problems.append(f"{path} is missing (recorded {source['hash'][:16]})")
            continue
        if now != source["hash"]:
            problems.append(f"{path} has other content (recorded {source['hash'][:16]}, now {now[:16]})")
    if problems and not allow:
        more = f" and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise ReproduceRefused(f"source input {'; '.join(problems[:MAX_LISTED])}{more}: restore it, "
                               "or pass --allow-changed-inputs to go on")
    for problem in problems:
        say(f"warning: source input {problem} (--allow-changed-inputs)")


def _venv(dists: list[dict[str, Any]], target: str, say: Say) -> str | None:
    """A venv (seeing the interpreter's own site) with the distributions the recorded
    interpreter lacks at their recorded versions; None when it lacks none."""
    exe = next((d["exe"] for d in dists if d.get("exe") and os.path.exists(d["exe"])), sys.executable)
    dists = [d for d in dists if not _has(exe, d)]
    if not dists:
        return None
    venv = os.path.join(target, ".roar", "venv")
    os.makedirs(os.path.dirname(venv), exist_ok=True)
    pins = [f"{d['name']}=={d['version']}" if d.get("version") else d["name"] for d in dists]
    say(f"venv {venv}: {' '.join(pins)}")
    _run([exe, "-m", "venv", "--system-site-packages", venv], f"cannot create a venv at {venv}")
    _run([os.path.join(venv, "bin", "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
          *pins], "cannot install the recorded Python distributions (" + " ".join(pins) + ")")
    return os.path.join(venv, "bin")


# `python -I -c HAS_DISTRIBUTION NAME VERSION SITE` exits 0 when the distribution is there at
# VERSION (any, when empty): in SITE, the recorded site directory (a venv's, which the base
# interpreter the record names does not see), else on the interpreter's own path. No single
# quotes: --script puts it in a bash word.
HAS_DISTRIBUTION = """import importlib.metadata as m, os, sys
name, want, site = sys.argv[1:4]
found = [d.version for d in m.distributions(name=name, path=[site])] if os.path.isdir(site) else []
found = found or [d.version for d in m.distributions(name=name)]
sys.exit(not found or (bool(want) and want not in found))"""


def _has(exe: str, dist: dict[str, Any]) -> bool:
    argv = [exe, "-I", "-c", HAS_DISTRIBUTION, dist["name"], dist.get("version") or "",
            dist.get("site") or ""]
    try:
        return subprocess.run(argv, capture_output=True, timeout=30, check=False,
                              **privilege.child_ids()).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run_steps(recipe: dict[str, Any], mapping: RootMap, env: dict[str, str], options: Options,
              say: Say) -> Outcome:
    outcome = Outcome(mapping.new)
    for step in recipe["steps"]:
        if step["argv_redacted"]:
            raise StepFailed(f"step {step['step']} ({step['command']}) has credentials replaced by "
                             "<redacted> in its record: run it yourself, then the rest")
        argv, cwd = command_of(step, mapping)
        say(f"{step['step']}: {step['command']}")
        start_as = options.acting.root() if step["type"] != "get" else contextlib.nullcontext()
        with start_as:   # a get needs no root: it would drop to the user at once
            proc = _start(argv, cwd, env, step)
        status, code = _wait(proc, options.step_timeout)
        result = {"step": step["step"], "uid": step["uid"], "status": status, "exit_code": code}
        outcome.steps.append(result)
        if status != "ok":
            why = (f"ran past --step-timeout {options.step_timeout:g}s" if status == "timeout"
                   else f"exited with {code}")
            if not options.keep_going:
                raise StepFailed(f"step {step['step']} ({step['command']}) {why}: fix it and rerun, "
                                 "or pass --keep-going", outcome=outcome)
            say(f"warning: step {step['step']} {why}; going on (--keep-going)")
    return outcome


def command_of(step: dict[str, Any], mapping: RootMap) -> tuple[list[str], str]:
    """The roar command line that remakes a step, and where it runs."""
    cwd = mapping.path(step["cwd"])
    roar = [sys.executable, "-I", "-m", "roar"]   # -I: not a roar/ of the checkout, nor PYTHON* variables
    if step["type"] == "get":
        return [*roar, "get", step["source"], mapping.path(step["destination"])], cwd
    return [*roar, step["type"], "-q", "--", *[mapping.arg(a) for a in step["argv"]]], cwd


def _start(argv: list[str], cwd: str, env: dict[str, str], step: dict[str, Any]) -> subprocess.Popen:
    try:
        return subprocess.Popen(argv, cwd=cwd, env=env, start_new_session=True, **privilege.child_ids())
    except OSError as exc:
        raise StepFailed(f"cannot start step {step['step']} in {cwd}: {exc.strerror}") from None


def _wait(proc: subprocess.Popen, timeout: float | None) -> tuple[str, int | None]:
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)   # roar passes it to the step's tree
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        return "timeout", None
    return ("ok" if code == 0 else "failed"), code
