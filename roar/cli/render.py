"""Presenting jobs and artifacts for `roar show`: the JSON form (docs/json.md)
and the text form."""

from __future__ import annotations

import os
from typing import Any

from roar.record.job import json_path


def _file_json(entry: dict[str, Any]) -> dict[str, Any]:
    out = dict(entry)
    out.update(json_path(entry["path"]))
    return out


def job_json(record: dict[str, Any], links: dict[str, Any] | None = None,
             labels: dict[str, str] | None = None) -> dict[str, Any]:
    """The record; with `links` (roar.lineage.queries.job_links) each input gets
    `made_by` and each output `read_by`; with `labels`, the current labels."""
    out = {k: v for k, v in record.items() if k not in ("format",)}
    out["inputs"] = [_file_json(f) for f in record["inputs"]]
    out["outputs"] = [_file_json(f) for f in record["outputs"]]
    if links is not None:
        for f in out["inputs"]:
            f["made_by"] = links["made_by"].get(f.get("hash"))
        for f in out["outputs"]:
            f["read_by"] = links["read_by"].get(f.get("hash"), [])
    if labels is not None:
        out["labels"] = labels
    return _jsonable(out)


def _jsonable(value: Any) -> Any:
    """JSON is UTF-8: a name that is not (a surrogate-escaped str) is shown with
    replacement characters; files keep their exact bytes in `path_b64`."""
    if isinstance(value, dict):
        return {_jsonable(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return os.fsencode(value).decode("utf-8", "replace")
    return value


def step_name(record: dict[str, Any]) -> str:
    from roar.lineage.refs import step_name as name

    return name(record["step"], record["type"])


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _short(hash_: str | None) -> str:
    return (hash_ or "-").rpartition(":")[2][:12]


def job_text(record: dict[str, Any], links: dict[str, Any] | None = None,
             labels: dict[str, str] | None = None) -> str:
    exit_ = record["exit"]
    made_by = (links or {}).get("made_by", {})
    read_by = (links or {}).get("read_by", {})
    transfer = record["type"] in TRANSFER_TYPES
    redacted = "  (credentials redacted)" if record.get("argv_redacted") else ""
    lines = [
        f"job {record['uid']}  {step_name(record)}  ({record['type']})",
        f"  command: {record['command']}{redacted}",
        f"  cwd:     {record['cwd']}",
        f"  started: {_when(record.get('started_at'))}   ended: {_when(record.get('ended_at'))}",
        f"  exit:    {exit_['code'] if exit_['signal'] is None else 'signal ' + str(exit_['signal'])}"
        f" ({exit_['status']}), {record['duration_s']:.3f} s",
    ]
    if transfer:
        lines += _transfer_lines(record)
    lines.append(_tracer_line(record))
    lines.append(f"  inputs ({len(record['inputs'])}):")
    for f in record["inputs"]:
        producer = made_by.get(f.get("hash"))
        lines.append(f"    {_short(f.get('hash'))}  {f['path']}{_members(f)}"
                     + (f"  <- {producer['step']} {producer['uid']}" if producer else ""))
    lines.append(f"  outputs ({len(record['outputs'])}):")
    for f in record["outputs"]:
        readers = read_by.get(f.get("hash"), [])
        lines.append(f"    {_short(f.get('hash'))}  {f['path']}{_members(f)}"
                     + (f"  -> {', '.join(r['step'] for r in readers)}" if readers else ""))
    if record["processes"] or not transfer:
        lines.append(f"  processes ({len(record['processes'])}):")
        lines += _process_tree(record["processes"], record.get("argv"))
    lines += context_lines(record.get("context"), record["uid"], packages=not transfer)
    lines += env_read_lines(record.get("env_read"))
    shown = labels if labels is not None else record.get("labels") or {}
    if shown:
        lines.append("  labels:")
        lines += [f"    {k}={v}" for k, v in sorted(shown.items())]
    lines += [f"  warning: {w}" for w in record.get("warnings", [])]
    return "\n".join(lines) + "\n"


TRANSFER_TYPES = ("get", "put")

# How many items of a list `roar show` prints before "(+N more)"; --json has them all.
SHOWN_DISTRIBUTIONS = 8
SHOWN_SYSTEM_PACKAGES = 8
SHOWN_DIRTY_PATHS = 5
SHOWN_REDACTED = 8
SHOWN_PROGRAMS = 4
CONTEXT_PAD = " " * 17      # continuation lines line up after "    environment: "
WRAP_WIDTH = 100


def _members(entry: dict[str, Any]) -> str:
    if entry.get("kind") != "composite":
        return ""
    return f"/  (directory, {len(entry.get('members') or [])} files, {entry.get('size') or 0} bytes)"


def _transfer_lines(record: dict[str, Any]) -> list[str]:
    """Where a get or put moved data: `from:` and `to:`, then the transfer's other facts."""
    transfer = dict(record.get("transfer") or {})
    if not transfer:
        return []
    transfer.pop("scheme", None)          # the URL says it
    verified = transfer.pop("verified", None)
    sources = transfer.pop("sources", None)
    source = transfer.pop("source", None)
    destination = transfer.pop("destination", None)
    froms = sources if sources is not None else [source] if source is not None else []
    lines = [f"  from:    {', '.join(str(s) for s in froms) or '-'}"]
    to = str(destination) if destination is not None else "-"
    lines.append(f"  to:      {to}" + ("  (verified after the copy)" if verified else ""))
    for key, value in transfer.items():
        if value is None:
            continue
        shown = f"{len(value)} objects" if isinstance(value, list) else value
        lines.append(f"  {key.replace('_', ' ')}: {shown}")
    return lines


def _tracer_line(record: dict[str, Any]) -> str:
    tracer = record.get("tracer") or {}
    backend = tracer.get("backend") or "-"
    if backend == "none":
        return "  tracer:  none (roar moved the data itself; no process was traced)"
    if "events" not in tracer and "dropped" not in tracer:
        return f"  tracer:  {backend}"
    facts = [f"{tracer.get('events', '-')} events", f"{tracer.get('dropped', '-')} dropped"]
    if tracer.get("paths_truncated"):
        facts.append(f"{tracer['paths_truncated']} paths truncated")
    return f"  tracer:  {backend}, " + ", ".join(facts)


def _more(items: list[str], shown: int, omitted: int = 0) -> tuple[list[str], bool]:
    """At most `shown` of the items, then "(+N more)"; and whether any was left out."""
    extra = max(len(items) - shown, 0) + omitted
    return items[:shown] + ([f"(+{extra} more)"] if extra else []), bool(extra)


def _wrap(head: str, items: list[str], empty: str) -> list[str]:
    """`head` then the items joined by ", ", continued on lines indented like the first."""
    if not items:
        return [head + empty]
    pad = " " * len(head)
    lines = [head + items[0]]
    for item in items[1:]:
        if len(lines[-1]) + 2 + len(item) > WRAP_WIDTH:
            lines[-1] += ","
            lines.append(pad + item)
        else:
            lines[-1] += ", " + item
    return lines


def _gib(n: int | None) -> str:
    return "? GiB" if n is None else f"{n / 2**30:.1f} GiB"


def _machine_lines(m: dict[str, Any]) -> list[str]:
    os_ = m.get("os") or {}
    os_name = (os_.get("pretty_name") or " ".join(filter(None, (os_.get("name"), os_.get("version"))))
               or "unknown OS")
    first = [os_name, f"kernel {m.get('kernel') or '?'}", m.get("arch") or "?"]
    if m.get("hostname"):
        first.append(f"host {m['hostname']}")
    cpu = m.get("cpu") or {}
    cores = cpu.get("logical_cores")
    cores_text = f"{cores if cores is not None else '?'} cores"
    if cpu.get("usable_cores") is not None and cpu.get("usable_cores") != cores:
        cores_text += f" ({cpu['usable_cores']} usable)"
    gpus = m.get("gpus") or []
    if gpus:
        groups: dict[str, int] = {}
        for g in gpus:
            facts = ", ".join(filter(None, (
                _gib(g["memory_bytes"]) if g.get("memory_bytes") is not None else None,
                f"driver {g['driver']}" if g.get("driver") else None,
                f"CUDA {g['cuda']}" if g.get("cuda") else None)))
            name = f"{g.get('model') or g.get('vendor') or 'GPU'}" + (f" ({facts})" if facts else "")
            groups[name] = groups.get(name, 0) + 1
        gpu_text = "; ".join(f"{n} x {name}" if n > 1 else name for name, n in groups.items())
    else:
        gpu_text = "none" + (" (not recorded: see note)" if m.get("gpu_note") else "")
    second = (f"{cpu.get('model') or 'unknown CPU'} x {cores_text}, {_gib(m.get('memory_bytes'))} memory, "
              f"GPUs: {gpu_text}")
    third = f"container: {m.get('container') or 'none'}, VM: {m.get('vm') or 'none'}"
    return [f"    machine:     {', '.join(first)}", CONTEXT_PAD + second, CONTEXT_PAD + third]


def _git_lines(g: dict[str, Any] | None) -> tuple[list[str], bool]:
    if g is None:
        return ["    git:         none (not in a git repository)"], False
    branch = f"branch {g['branch']}" if g.get("branch") else "detached HEAD"
    commit = f"commit {g['commit'][:12]}" if g.get("commit") else "no commit yet"
    truncated = False
    if g.get("dirty") is None:
        state = "clean or dirty: unknown" + (f" ({g['note']})" if g.get("note") else "")
    elif g["dirty"]:
        paths = list(g.get("dirty_paths") or [])
        omitted = g.get("dirty_paths_omitted") or 0
        count = len(paths) + omitted
        shown, truncated = _more(paths, SHOWN_DIRTY_PATHS, omitted)
        state = f"dirty, {count} path{'s' if count != 1 else ''}: {', '.join(shown)}"
    else:
        state = "clean"
    lines = [f"    git:         {g.get('root') or '?'}, {branch}, {commit}, {state}",
             CONTEXT_PAD + f"remote {g['remote']}" if g.get("remote") else CONTEXT_PAD + "no remote"]
    return lines, truncated


def _package_lines(packages: dict[str, Any] | None) -> tuple[list[str], bool]:
    packages = packages or {}
    truncated = False
    lines: list[str] = []
    pythons = packages.get("python") or []
    for i, py in enumerate(pythons):
        head = "    python:      " if i == 0 else CONTEXT_PAD
        where = py.get("exe") or "site packages of no interpreter the job ran"
        lines.append(f"{head}{py.get('version') or '?'}  {where}")
        dists = [f"{d.get('name')}=={d.get('version')}" for d in py.get("distributions") or []]
        shown, more = _more(dists, SHOWN_DISTRIBUTIONS)
        truncated |= more
        lines += _wrap(CONTEXT_PAD + "  ", shown, "no distributions used")
    if not pythons:
        lines.append("    python:      none")
    system = [f"{p.get('name')} {p.get('version')}" for p in packages.get("system") or []]
    shown, more = _more(system, SHOWN_SYSTEM_PACKAGES)
    truncated |= more
    lines += _wrap("    system:      ", shown, "none")
    return lines, truncated


def _program_lines(programs: list[dict[str, Any]]) -> tuple[list[str], bool]:
    """context.programs: how many, and those no system package owns by path."""
    unpackaged = [p.get("path") or "?" for p in programs if not p.get("package")]
    head = f"    programs:    {len(programs)} ran or mapped, outside the lineage"
    if not unpackaged:
        return [head], False
    shown, more = _more(unpackaged, SHOWN_PROGRAMS)
    return [head + "; not from a package:"] + _wrap(CONTEXT_PAD + "  ", shown, ""), more


def _environment_lines(env: dict[str, Any] | None) -> tuple[list[str], bool]:
    if env is None:
        return ["    environment: not recorded"], False
    count = len(env.get("variables") or {})
    redacted, truncated = _more(sorted(env.get("redacted") or []), SHOWN_REDACTED)
    head = f"    environment: {count} variable{'s' if count != 1 else ''}, redacted: "
    return _wrap(head, redacted, "none"), truncated


def context_lines(context: dict[str, Any] | None, uid: str, packages: bool = True) -> list[str]:
    """The `context:` section of `roar show` (record["context"], docs/context.md),
    compact; long lists end in "(+N more)" and a hint points at --json."""
    if not context:
        return ["  context: not recorded"]
    lines = ["  context:"]
    truncated = False
    machine = context.get("machine")
    lines += _machine_lines(machine) if machine else ["    machine:     not recorded"]
    git_lines, more = _git_lines(context.get("git"))
    lines += git_lines
    truncated |= more
    if packages:
        package_lines, more = _package_lines(context.get("packages"))
        lines += package_lines
        truncated |= more
    if "programs" in context:    # records before context version 2 have none
        program_lines, more = _program_lines(context.get("programs") or [])
        lines += program_lines
        truncated |= more
    env_lines, more = _environment_lines(context.get("environment"))
    lines += env_lines
    truncated |= more
    lines += [f"    note:        {n}" for n in context.get("notes") or []]
    if truncated:
        lines.append(f"    (lists shortened: `roar show {uid} --json` has them all)")
    return lines


def env_read_lines(env_read: dict[str, str | None] | None) -> list[str]:
    """The variables the tree read (record["env_read"]): each one set with its value,
    redacted as recorded, then the names read while not set on one wrapped line."""
    if env_read is None:
        return []     # not observed: older records, get and put, no getenv probe attached
    unset = sorted(name for name, value in env_read.items() if value is None)
    lines = [f"  environment read ({len(env_read) - len(unset)} set, {len(unset)} not set):"]
    # a value may hold a newline or an escape sequence: shown escaped, on its line
    lines += [f"    {name}={value if value.isprintable() else repr(value)[1:-1]}"
              for name, value in sorted(env_read.items()) if value is not None]
    if unset:
        lines += _wrap("    not set: ", unset, "")
    return lines


def _process_tree(processes: list[dict[str, Any]], typed: list[str] | None = None) -> list[str]:
    """One line per process; a toolchain wrapper (a pyenv shim) collapses to the command as
    typed, its helper processes counted, not listed (docs/lineage-rules.md, "Programs")."""
    pids = {p["pid"] for p in processes}
    children: dict[Any, list[dict[str, Any]]] = {}
    for p in processes:
        children.setdefault(p["ppid"] if p["ppid"] in pids else None, []).append(p)
    lines: list[str] = []

    def helpers(pid: Any) -> int:
        return sum(1 + helpers(c["pid"]) for c in children.get(pid, []) if c.get("wrapper_helper"))

    def walk(parent: Any, depth: int) -> None:
        for p in children.get(parent, []):
            if p.get("wrapper_helper"):
                continue
            chain = p.get("exec_chain") or []
            # the root's command as typed; a "#!" wrapper's own argv names its interpreter first
            first = (typed if parent is None and typed else chain[0].get("argv")) if chain else None
            argv = " ".join(first or p.get("argv") or []) or p.get("exe") or "?"
            code = p.get("exit_code")
            end = f"signal {p['signal']}" if p.get("signal") else f"exit {code}"
            lines.append(f"    {'  ' * depth}{p['pid']} {argv[:100]}  ({end})")
            if chain:
                hidden = helpers(p["pid"])
                lines.append(f"    {'  ' * depth}  runs {p.get('exe')} through {len(chain)} wrapper "
                             f"program{'s' if len(chain) != 1 else ''}"
                             + (f", {hidden} helper process{'es' if hidden != 1 else ''} not shown"
                                if hidden else ""))
            walk(p["pid"], depth + 1)

    walk(None, 0)
    return lines


def artifact_text(info: dict[str, Any]) -> str:
    """`roar show` of an artifact (info from roar.lineage.queries.artifact)."""
    size = "-" if info["size"] is None else f"{info['size']} bytes"
    lines = [f"artifact {info['hash']}  ({info['kind']}, {size})"]
    disk = info.get("on_disk")
    if disk:
        lines.append("  on disk:   " + {
            "same": f"{disk['path']} still holds these bytes",
            "differs": f"{disk['path']} now differs: blake3 {disk['hash']} on disk, {info['hash']} recorded",
            "missing": f"{disk['path']} is gone",
            "unreadable": f"{disk['path']} cannot be read now",
        }.get(disk["state"], f"{disk['path']}: {disk['state']}"))
    lines.append("  hashes:")
    lines += [f"    {alg}: {digest}" for alg, digest in info["hashes"].items()]
    lines.append("  paths:")
    lines += [f"    {p}" for p in info["paths"]]
    if info.get("members") is not None:
        lines.append(f"  members ({len(info['members'])}):")
        lines += [f"    {_short(m['hash'])}  {m['name']}" for m in info["members"]]
    if info["member_of"]:
        lines.append("  member of: " + ", ".join(_short(c) for c in info["member_of"]))
    for title, jobs in (("produced by", info["produced_by"]), ("consumed by", info["consumed_by"])):
        lines.append(f"  {title}:" + ("" if jobs else " -"))
        lines += [f"    {_job_line(j)}" for j in jobs]
    if info["labels"]:
        lines.append("  labels:")
        lines += [f"    {k}={v}" for k, v in sorted(info["labels"].items())]
    lines.append("  lineage:")
    lines += lineage_lines(info["lineage"], info["paths"][-1] if info["paths"] else info["hash"])
    return "\n".join(lines) + "\n"


def _job_line(job: dict[str, Any]) -> str:
    return f"{job['step']:<5} {job['uid']}  session {job['session']}  [{job['status']}]  {job['command']}"


def lineage_lines(lineage: dict[str, Any], name: str) -> list[str]:
    """The lineage as an indented tree: each artifact, the job that made it, its inputs."""
    jobs = {j["uid"]: j for j in lineage["jobs"]}
    lines: list[str] = []
    shown: set[str] = set()

    def artifact(path: str, hash_: str, made_by: str | None, depth: int) -> None:
        pad = "    " + "  " * depth
        if made_by is None:
            lines.append(f"{pad}{path}  {_short(hash_)}  (source)")
            return
        job = jobs.get(made_by)
        if job is None:
            lines.append(f"{pad}{path}  {_short(hash_)}  <- {made_by} (lineage truncated)")
            return
        lines.append(f"{pad}{path}  {_short(hash_)}  <- {job['step']} {job['command']}"
                     f"  (session {job['session']})")
        if made_by in shown:
            lines.append(f"{pad}  (inputs of {job['step']} shown above)")
            return
        shown.add(made_by)
        for entry in job["inputs"]:
            artifact(entry["path"], entry["hash"], entry["made_by"], depth + 1)

    artifact(name, lineage["artifact"], lineage["made_by"], 0)
    if lineage.get("truncated"):
        lines.append("    ... (lineage truncated)")
    return lines


def session_text(summary: dict[str, Any]) -> str:
    state = "current" if summary["current"] else f"ended {_when(summary['ended_at'])}"
    lines = [f"session {summary['number']} ({summary['id']})  "
             f"started {_when(summary['started_at'])}, {state}"]
    lines += [f"  label {k}={v}" for k, v in sorted(summary["labels"].items())]
    lines.append(f"  jobs ({len(summary['jobs'])}):")
    lines += [f"    {j['step']:<5} {j['uid']}  [{j['status']}]  {j['command']}" for j in summary["jobs"]]
    return "\n".join(lines) + "\n"
