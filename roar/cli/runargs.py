"""`roar run` / `roar build` without the CLI framework.

Every job pays roar's start-up, and importing Typer and Click is a third of
it. So entry.py parses the common form here, `roar run [-q] [-v]
[--ring-buffer SIZE] [--hash ALG]... [--] CMD [ARGS]...`, and hands only
`--help` to the Typer app in run.py, which declares the same options from
OPTIONS. A test checks that both
parsers agree.

`roar run [OPTIONS] @N` (or a job uid) with no `--` re-runs a recorded job
(roar.reproduce.rerun).
"""

from __future__ import annotations

from typing import Any

from roar.errors import UsageError

# (names, parameter, takes a value, default, help): the one list of run's options
OPTIONS: list[tuple[tuple[str, ...], str, bool, Any, str]] = [
    (("--ring-buffer",), "ring_buffer", True, "16M",
     "Kernel ring buffer size, a power of two from 4K to 256M (64K, 16M, ...)."),
    (("--hash",), "hashes", True, [],
     "Also hash inputs and outputs with ALGORITHM (sha256, ...); repeatable."),
    (("--label", "-l"), "labels", True, [], "Label the job KEY=VALUE (as `roar label set`); repeatable."),
    (("--verbose", "-v"), "verbose", False, False, "Show libbpf's and the verifier's log."),
    (("--quiet", "-q"), "quiet", False, False, "Print nothing unless there are warnings."),
    (("--no-hold",), "no_hold", False, False,
     "Do not hold first reads for their hash: inputs are hashed by path afterwards, and a "
     "debugger can attach inside the job."),
]


def parse_fast(args: list[str]) -> dict[str, Any] | None:
    """The parameters of a run/build invocation, or None (help) to let Typer answer."""
    return _parse(args)[0]


def reruns(args: list[str]) -> bool:
    """The invocation names a recorded job to run again: one argument after the options,
    `@N`, `@BN` or a job uid, and no `--` before it (which makes it a command name)."""
    try:
        params, dashed = _parse(args)
    except UsageError:
        return False
    return (params is not None and not dashed and len(params["command"]) == 1
            and names_a_job(params["command"][0]))


def names_a_job(arg: str) -> bool:
    """`@N`, `@BN` or a whole job uid (16 hex digits, roar.record.job). Plain string tests:
    this runs before the BPF preload starts, so it imports nothing."""
    return arg.startswith("@") or (len(arg) == 16 and all(c in "0123456789abcdef" for c in arg))


def _parse(args: list[str]) -> tuple[dict[str, Any] | None, bool]:
    """(parameters or None for help, whether `--` ended the options)."""
    by_name = {name: spec for spec in OPTIONS for name in spec[0]}
    params: dict[str, Any] = {spec[1]: (list(spec[3]) if isinstance(spec[3], list) else spec[3])
                              for spec in OPTIONS}
    i = 0
    dashed = False
    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            dashed = True
            break
        if not arg.startswith("-") or arg == "-":
            break
        name, eq, value = arg.partition("=")
        spec = by_name.get(name)
        if name in ("-h", "--help"):
            return None, dashed
        if spec is None or (eq and not spec[2]):
            raise UsageError(f"unknown option {arg} for roar run; put `--` before a command "
                             "whose name starts with '-'")
        if spec[2]:
            if not eq:
                if i + 1 >= len(args):
                    return None, dashed
                i += 1
                value = args[i]
            if isinstance(params[spec[1]], list):
                params[spec[1]].append(value)
            else:
                params[spec[1]] = value
        else:
            params[spec[1]] = True
        i += 1
    params["command"] = args[i:]
    return params, dashed


def parse_size(text: str) -> int:
    """'16M', '64K' or bytes: a power of two of at least 4 KiB (the kernel's rule) and at most
    MAX_RING_BYTES (roar's: the buffer is mapped twice, so it costs twice its size in memory)."""
    from roar.tracer.loader import MAX_RING_BYTES

    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    number, unit = (text[:-1], units.get(text[-1:].upper())) if text[-1:].isalpha() else (text, 1)
    if unit is None or not number.isdigit():
        raise UsageError(f"bad size {text!r}: use a power of two like 64K, 16M or 256M")
    size = int(number) * unit
    if size < 4096 or size & (size - 1):
        raise UsageError(f"ring buffer size {text} must be a power of two of at least 4K, e.g. 16M")
    if size > MAX_RING_BYTES:
        raise UsageError(f"ring buffer size {text} is over the limit of {MAX_RING_BYTES >> 20}M "
                         "(it costs twice its size in memory): use a smaller one")
    return size


def _available() -> set[str]:
    # imported here: loading OpenSSL costs ~4 ms, which a plain `roar run` need not pay
    import hashlib

    return hashlib.algorithms_available


def hash_algorithms(extra: list[str]) -> tuple[str, ...]:
    """blake3 always, plus each --hash algorithm hashlib knows."""
    names = [name.lower() for name in extra]
    for name in names:
        if name != "blake3" and name not in _available():
            raise UsageError(f"unknown hash algorithm {name!r}: use one of blake3, sha256, sha1, md5, sha512")
    return tuple(dict.fromkeys(["blake3", *names]))


def _again(ref: str, options: Any, quiet: bool) -> Any:
    """The recorded job (roar.reproduce.rerun.Rerun), with options and the process's cwd
    set for it."""
    import shlex

    from roar.cli.entry import say
    from roar.cli.printable import printable
    from roar.reproduce import rerun
    from roar.tracer.loader import preflight

    preflight()   # as a plain run: without the privileges nothing else matters
    again = rerun.prepare(ref)
    options.kind = again.kind
    options.labels[rerun.LABEL] = again.uid
    for note in again.notes:
        say(f"roar: {printable(note)}\n")
    if not quiet:
        say(f"roar: re-running {again.step} {again.uid} in {printable(again.cwd)}: "
            f"{printable(shlex.join(again.argv))}\n")
    return again


def summary(record: dict[str, Any]) -> str:
    from roar.cli.printable import printable
    from roar.lineage.refs import step_name

    step = step_name(record["step"], record["type"])
    exit_ = record["exit"]
    how = f"exit {exit_['code']}" if exit_["signal"] is None else f"killed by signal {exit_['signal']}"
    if exit_["status"] == "interrupted":
        how += ", interrupted"
    lines = [f"roar: {step} {record['uid']}  {len(record['inputs'])} inputs, "
             f"{len(record['outputs'])} outputs, {how}"]
    lines += [f"roar: warning: {printable(w)}" for w in record["warnings"]]   # warnings name files
    return "\n".join(lines)


def execute(kind: str, command: list[str], ring_buffer: str, hashes: list[str], verbose: bool,
            quiet: bool, labels: list[str] | None = None, rerun: bool = False, no_hold: bool = False) -> int:
    """Trace and record; print the summary; the command's exit status. With `rerun`,
    command is the one ref of the job to run again."""
    from roar.cli.entry import say
    from roar.runner import RunOptions, run_job
    from roar.store.labels import parse_assignments

    options = RunOptions(kind=kind, ring_bytes=parse_size(ring_buffer), verbose=verbose,
                         hash_algorithms=hash_algorithms(hashes),
                         labels=parse_assignments(labels) if labels else {}, hold_reads=not no_hold)
    again = _again(command[0], options, quiet) if rerun else None
    result = run_job(list(again.argv if again else command), options)
    if not quiet or result.record["warnings"]:
        say(summary(result.record) + "\n")    # a closed or broken stderr must not change the status
    if again and not quiet:
        old, new = _name_now(again, result.record), _step(result.record)
        say(f"roar: `roar diff {old} {new}` shows what changed\n")
    return result.exit_code


def _step(record: dict[str, Any]) -> str:
    from roar.lineage.refs import step_name

    return step_name(record["step"], record["type"])


def _name_now(again: Any, record: dict[str, Any]) -> str:
    """The re-run job as the current session names it: its step, or its uid when it is of
    another session."""
    return again.step if again.session == record["session"] else again.uid
