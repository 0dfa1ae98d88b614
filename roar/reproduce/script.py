"""`--script`: the recipe as a bash script that does what `--run` does, with `roar run`
(or build, get) per step; the directory to reproduce in is its first argument."""

from __future__ import annotations

import shlex
from typing import Any

from roar.reproduce.execute import HAS_DISTRIBUTION
from roar.reproduce.paths import RootMap

MARK = "/__ROAR_ROOT__"


def render(recipe: dict[str, Any]) -> str:
    git = recipe["git"]
    mapping = RootMap((git or {}).get("root") or recipe["root"], MARK)
    lines = ["#!/bin/bash", f"# roar reproduce {recipe['ref']['id']}", "set -euo pipefail",
             'ROOT="$(realpath -m "${1:-reproduced}")"']
    if git:
        origin = git.get("remote") or git["root"]
        lines += [f"git clone -q --no-checkout -- {shlex.quote(origin)} \"$ROOT\"",
                  f"git -C \"$ROOT\" checkout -q --detach {git['commit']}"]
    else:
        lines.append('mkdir -p "$ROOT"')
    for source in recipe["sources"]:
        new = mapping.path(source["path"])
        if new != source["path"]:
            lines.append(f"[ -e {_q(new)} ] || {{ mkdir -p \"$(dirname {_q(new)})\"; "
                         f"cp -p {shlex.quote(source['path'])} {_q(new)}; }}")
    if recipe["packages"]["python"]:
        lines += _venv(recipe["packages"]["python"])
    for step in recipe["steps"]:
        cwd = mapping.path(step["cwd"])
        if step["type"] == "get":
            cmd = f"roar get {shlex.quote(step['source'])} {_q(mapping.path(step['destination']))}"
        else:
            cmd = f"roar {step['type']} -q -- " + " ".join(_q(mapping.arg(a)) for a in step["argv"])
        lines.append(f"(cd {_q(cwd)} && {cmd})   # {step['step']}")
    return "\n".join(lines) + "\n"


HAVE = f"have() {{ \"$1\" -I -c '{HAS_DISTRIBUTION}' \"$2\" \"$3\" \"$4\"; }}"   # NAME VERSION SITE


def _venv(dists: list[dict[str, Any]]) -> list[str]:
    """As --run does: a venv that sees the interpreter's own site, with only the
    distributions it lacks at their recorded versions, and none when it lacks none."""
    exe = next((d["exe"] for d in dists if d.get("exe")), "python3")
    lines = [f"PY={shlex.quote(exe)}", '[ -x "$PY" ] || PY=python3', HAVE, "PINS=()"]
    for d in dists:
        pin = f"{d['name']}=={d['version']}" if d.get("version") else d["name"]
        have = " ".join(shlex.quote(d.get(k) or "") for k in ("name", "version", "site"))
        lines.append(f"have \"$PY\" {have} || PINS+=({shlex.quote(pin)})")
    lines += ['if [ ${#PINS[@]} -gt 0 ]; then',
              '  "$PY" -m venv --system-site-packages "$ROOT/.roar/venv"',
              '  "$ROOT/.roar/venv/bin/pip" install -q --disable-pip-version-check "${PINS[@]}"',
              '  export PATH="$ROOT/.roar/venv/bin:$PATH"',
              "fi"]
    return lines


def _q(text: str) -> str:
    """Quoted for bash, with the new root as "$ROOT"."""
    if MARK not in text:
        return shlex.quote(text)
    before, _, after = text.partition(MARK)
    return (shlex.quote(before) if before else "") + '"$ROOT"' + (shlex.quote(after) if after else "")
