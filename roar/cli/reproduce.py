"""`roar reproduce REF`: print the recipe (text, --json, --script), or carry it out
(--run) and prove the bytes (--verify). The work is in roar.reproduce."""

from __future__ import annotations

from typing import Any, Optional

import typer

from roar.cli.output import JSON, emit_json, emit_text, printable, printable_data

REF_HELP = "An artifact hash, prefix or path, @N, a job uid, or session[:N]."


def register(app: typer.Typer) -> None:
    @app.command("reproduce")
    def reproduce_cmd(
        ref: str = typer.Argument(..., help=REF_HELP),
        as_json: bool = JSON,
        script: Optional[str] = typer.Option(None, "--script", metavar="FILE",
                                             help="Write a bash script that does what --run does."),
        run: bool = typer.Option(False, "--run", help="Carry the recipe out in a fresh directory."),
        directory: Optional[str] = typer.Option(None, "--dir", help="Where --run reproduces (new or empty)."),
        verify: bool = typer.Option(False, "--verify", help="Compare every output with its recorded hash."),
        step_timeout: Optional[float] = typer.Option(None, "--step-timeout", metavar="SECONDS",
                                                     help="Stop a step that runs longer."),
        keep_going: bool = typer.Option(False, "--keep-going", help="Go on after a failing step."),
        allow_changed: bool = typer.Option(False, "--allow-changed-inputs",
                                           help="Run even when a source input is missing or differs."),
        install_system: bool = typer.Option(False, "--install-system",
                                            help="apt-get install the missing system packages."),
    ) -> None:
        """Print how to make REF again: repository and commit, packages, steps, source inputs.
        With --run, do it in a fresh directory; with --verify, check the bytes (docs/reproduce.md)."""
        from roar.errors import UsageError
        from roar.reproduce import recipe as recipe_mod
        from roar.reproduce import source
        from roar.reproduce.acting import Acting

        if (verify or directory or step_timeout or keep_going or allow_changed or install_system) and not run:
            raise UsageError("--verify, --dir, --step-timeout, --keep-going, --allow-changed-inputs and "
                             "--install-system go with --run")
        if step_timeout is not None and step_timeout <= 0:
            raise UsageError("--step-timeout must be a positive number of seconds")
        tracing = _tracing_problem() if run else None   # asked while roar still has its privileges
        acting = Acting.begin(keep_root=run)   # under sudo: the user from here on
        recipe = recipe_mod.build(source.find_records(ref))
        if script:
            _write_script(recipe, script)
        if run:
            if tracing and any(step["type"] != "get" for step in recipe["steps"]):
                raise tracing
            raise typer.Exit(_run(recipe, directory, verify, step_timeout, keep_going, allow_changed,
                                  install_system, as_json, acting))
        if as_json:
            emit_json(recipe)
        elif not script:
            emit_text(recipe_text(printable_data(recipe)))


def _write_script(recipe: dict[str, Any], path: str) -> None:
    import os

    from roar.errors import UsageError
    from roar.reproduce import script

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o755)
    except FileExistsError:
        raise UsageError(f"{path} exists: give a new file name for --script") from None
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w") as f:
        f.write(script.render(recipe))


def _tracing_problem():
    """Why the steps' `roar run` could not trace here (the error it would give), or None."""
    from roar.errors import NoPrivilege, RoarError
    from roar.tracer.loader import preflight

    try:
        preflight()
    except NoPrivilege:
        return NoPrivilege("reproduce --run traces each step with `roar run`, which needs root: "
                           "run it as `sudo roar reproduce ... --run`")
    except RoarError as error:
        return error
    return None


def _say(line: str) -> None:
    from roar.cli.entry import say

    say(f"roar: {printable(line)}\n")


def _run(recipe, directory, verify, step_timeout, keep_going, allow_changed, install_system, as_json,
         acting) -> int:
    import os
    import tempfile

    from roar.errors import NotReproduced, StepFailed
    from roar.reproduce import environment, execute
    from roar.reproduce import verify as verify_mod

    for line in environment.differences(recipe):
        _say(f"environment: {line}")
    _system_packages(environment.missing_system(recipe), install_system, acting)
    directory = directory or tempfile.mkdtemp(prefix="roar-reproduce-")
    options = execute.Options(os.path.abspath(directory), step_timeout, keep_going, allow_changed, verify,
                              acting)
    mapping, env = execute.prepare(recipe, options, _say)
    try:
        outcome = execute.run_steps(recipe, mapping, env, options, _say)
    except StepFailed:
        acting.end()
        if verify:
            _report(verify_mod.compare(recipe, mapping), as_json, options.directory)
        raise
    acting.end()   # the steps are done: nothing more needs root
    if not verify:
        _say(f"reproduced {len(outcome.steps)} steps in {options.directory}")
        return 0
    results = verify_mod.compare(recipe, mapping)
    _report(results, as_json, options.directory)
    if any(s["status"] != "ok" for s in outcome.steps) or not verify_mod.target_reproduced(recipe, results):
        raise NotReproduced(f"{recipe['ref']['path'] or recipe['ref']['id']} was not reproduced bit for bit "
                            f"(see the steps above; the reproduction is in {options.directory})")
    return 0


def _system_packages(missing: list[dict[str, Any]], install: bool, acting) -> None:
    import subprocess

    from roar.errors import ReproduceRefused
    from roar.reproduce.environment import apt_arguments

    if not missing:
        return
    names, refused = apt_arguments(missing)
    _say("system packages the jobs used and this machine lacks: " + " ".join(printable_data(names + refused)))
    if install and refused:
        raise ReproduceRefused(f"will not apt-get install {' '.join(printable_data(refused))}: not a Debian "
                               "package name, architecture and version; install what you trust yourself, "
                               "or rerun without --install-system")
    if install:
        with acting.root():   # it installs for the whole machine: root's part, as the user asked for
            done = subprocess.run(["apt-get", "install", "-y", "--", *names], check=False)
        if done.returncode:
            raise ReproduceRefused(f"apt-get install {' '.join(names)} failed (exit {done.returncode}): "
                                   "install them yourself, or rerun without --install-system")


def _report(results: list[dict[str, Any]], as_json: bool, directory: str) -> None:
    if as_json:
        emit_json({"directory": directory, "steps": results})
        return
    lines = []
    for step in results:
        lines.append(f"{step['step']}: {step['state']}")
        for out in step["outputs"]:
            if out["state"] == "identical":
                continue
            line = f"  {out['state']}: {out['path']}  recorded {out['recorded']}  now {out['now']}"
            if out["first_difference"] is not None:
                line += f"  first difference at byte {out['first_difference']}"
            lines.append(line)
    emit_text("\n".join(printable_data(lines)))


def recipe_text(recipe: dict[str, Any]) -> str:
    lines = [f"recipe for {recipe['ref']['kind']} {recipe['ref']['path'] or recipe['ref']['id']}"]
    git = recipe["git"]
    if git:
        lines.append(f"git: {git.get('remote') or git['root']} at {git['commit']}"
                     + ("  (the work tree was dirty)" if git.get("dirty") else ""))
    else:
        lines.append(f"no git repository: the source inputs are copied from {recipe['root']}")
    pkgs = recipe["packages"]
    for interp in pkgs["interpreters"]:
        lines.append(f"python: {interp['exe']} {interp['version'] or ''}".rstrip())
    if pkgs["python"]:
        lines.append("python distributions: "
                     + " ".join(f"{d['name']}=={d['version']}" for d in pkgs["python"]))
    if pkgs["system"]:
        lines.append("system packages: " + " ".join(f"{p['name']}={p['version']}" for p in pkgs["system"]))
    lines.append("steps:")
    for step in recipe["steps"]:
        if step["type"] == "get":
            lines.append(f"  {step['step']} get {step['source']} -> {step['destination']}")
        else:
            lines.append(f"  {step['step']} {step['type']} {step['command']}  (in {step['cwd']})")
    if recipe["sources"]:
        lines.append("source inputs (no recorded job made them):")
        lines += [f"  {s['path']}  {s['hash']}" for s in recipe["sources"]]
    lines.append(f"reproduce: sudo roar reproduce {recipe['target'] or recipe['ref']['id']} --run --verify")
    return "\n".join(lines)
