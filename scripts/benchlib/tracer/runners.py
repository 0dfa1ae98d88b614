"""The tracers compared, and how each runs a command: untraced ("u"), under
`roar run -q` ("t"), under `strace -f` ("s"), and with the floor's empty
programs attached ("f"). Also the copy of roar the whole bench runs, and the
interpreters (d) compares."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

from ..proc import BenchError

FLOOR_RUN = Path(__file__).with_name("floor_run.py")
LABELS = {"u": "untraced", "t": "roar", "s": "strace -f", "f": "floor"}


class Tracers:
    def __init__(self, roar: list[str], strace: str | None) -> None:
        self.roar = roar
        self.strace = strace
        self.floor: list[str] | None = None   # set by enable_floor()

    def wrap(self, kind: str, cmd: list[str], quiet: bool = True) -> list[str]:
        if kind == "t":
            return self.roar + ["run"] + (["-q"] if quiet else []) + ["--"] + cmd
        if kind == "s":
            return [self.strace, "-f", "-o", "/dev/null"] + cmd
        if kind == "f":
            return self.floor + ["--"] + cmd
        return cmd

    def enable_floor(self, obj: Path, cwd: Path, env: dict[str, str]) -> str | None:
        """Run the floor with the interpreter that runs roar (roar.tracer.libbpf
        must import); None when it works, else why not."""
        python = self.roar[0] if self.roar[1:3] == ["-m", "roar"] else shutil.which("python3")
        cmd = [python, str(FLOOR_RUN), str(obj)]
        p = subprocess.run(cmd + ["--", "true"], cwd=cwd, env=env, capture_output=True, text=True)
        if p.returncode != 0:
            return f"the floor did not run ({(p.stderr.strip().splitlines() or ['?'])[-1]}): not measured"
        self.floor = cmd
        return None


def snapshot_roar(python: str, dest: Path, env: dict[str, str]) -> tuple[str, str]:
    """Copy the roar package `python` imports to dest and byte-compile it; the
    bench then runs that copy (PYTHONPATH), so it measures one version even if
    the tree is edited meanwhile (a record index made by one version and read
    by the next fails). Returns (the package copied, the PYTHONPATH entry)."""
    p = subprocess.run([python, "-c", "import os, roar; print(os.path.dirname(roar.__file__))"],
                       cwd="/", env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise BenchError(f"`{python} -c 'import roar'` failed: {p.stderr.strip()[-300:]}")
    source = p.stdout.strip()
    shutil.copytree(source, dest / "roar", ignore=shutil.ignore_patterns("__pycache__"))
    # byte-compile it once: with PYTHONDONTWRITEBYTECODE set every run would compile it again
    subprocess.run([python, "-m", "compileall", "-q", str(dest)], env=env, capture_output=True, check=False)
    return source, str(dest)


def roar_flavours(roar: list[str], snapshot: str | None,
                  env: dict[str, str]) -> list[tuple[str, str, list[str], list[str] | None, dict[str, str]]]:
    """(key, label, roar command, its interpreter alone, env) for the roar
    under test and, to tell roar's own start-up from its environment's, for
    the same roar package run by the python of scripts/setup's entry point
    (/usr/local/bin/roar: a venv with the dependencies pyproject pins)."""
    main_interp = [roar[0], "-c", "pass"] if roar[1:2] == ["-m"] else None
    label = f"{Path(roar[0]).name} -m roar" if main_interp else shlex.join(roar)
    out = [("main", label, roar, main_interp, env)]
    if not snapshot:
        return out
    try:
        with open("/usr/local/bin/roar", "rb") as f:
            first = f.readline().decode(errors="replace").strip()
    except OSError:
        return out
    interp = first[2:].split()[:1] if first.startswith("#!") else []
    if (interp and "python" in Path(interp[0]).name and os.access(interp[0], os.X_OK)
            and not os.path.samefile(interp[0], roar[0])):
        out.append(("setup_python", f"{interp[0]} -m roar (scripts/setup's venv), same package",
                    interp + ["-m", "roar"], interp + ["-c", "pass"], env))
    return out
