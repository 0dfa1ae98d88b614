"""What the web pages show of a stored record, read defensively: every field was sent by a
client and may be missing, of the wrong type or hostile. Nothing here raises on odd input;
a part the record does not hold is None, and the page says "not recorded".

Two metadata shapes are understood (docs/web.md): roar-cli's (`runtime`, `packages.pip`,
`git.remote_url`, ...) and roar's own job record (`context.machine`, `context.packages`,
`context.git`, `env_read`, `processes`), at the top level of the metadata or under `context`.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from urllib.parse import quote

from roar.record.context.redact import REDACTED, is_secret_name, scrub_value

MAX_ITEMS = 500   # a list longer than this is cut, with a count of the rest
_SHA = re.compile(r"^[0-9a-f]{7,64}$")
# host -> how a commit is linked there (owner/repo is appended, then this, then the sha)
FORGES = {"github.com": "/commit/", "gitlab.com": "/-/commit/", "codeberg.org": "/commit/",
          "bitbucket.org": "/commits/"}
_REMOTE = re.compile(r"^(?:https?://(?:[^/@]*@)?|ssh://(?:[^/@]*@)?|git@)"
                     r"(?P<host>[A-Za-z0-9.-]+)(?::\d+)?[:/](?P<path>[A-Za-z0-9._-]+/[A-Za-z0-9._/-]+?)"
                     r"(?:\.git)?/?$")


def json_obj(text: str | None):
    """A stored JSON text as a value; None when absent or not JSON."""
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def d(value) -> dict:
    return value if isinstance(value, dict) else {}


def s(value) -> str | None:
    """A scalar as text; None for what is not one."""
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


def when(ts) -> str | None:
    try:
        return datetime.fromtimestamp(float(ts), timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def at(value) -> str | None:
    """A stored datetime (naive from SQLite: it was written in UTC)."""
    if not isinstance(value, datetime):
        return None
    value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso_when(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return text


def duration(seconds) -> str | None:
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.2f} s"
    minutes, sec = divmod(int(value), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {sec:02d} s"


def size(n) -> str | None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        return None
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        if value < 1024:
            return f"{value:.1f} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"


def commit_url(remote: str | None, commit: str | None) -> str | None:
    """A link to the commit on a known forge, else None (never a URL built from other input)."""
    if not remote or not commit or not _SHA.match(commit.lower()):
        return None
    found = _REMOTE.match(remote.strip())
    if not found or found.group("host").lower() not in FORGES:
        return None
    host = found.group("host").lower()
    return f"https://{host}/{quote(found.group('path'))}{FORGES[host]}{commit.lower()}"


def _context(meta: dict) -> dict:
    return d(meta.get("context"))


def machine(meta: dict) -> list[tuple[str, str]] | None:
    """(what, value) rows of the machine a job ran on: roar's `machine` (top level or under
    `context`) first, then `runtime` (roar-cli's, or roar's own register client's)."""
    rows: list[tuple[str, str | None]] = []
    for part in (d(_context(meta).get("machine") or meta.get("machine")), d(meta.get("runtime"))):
        if part:
            rows += _machine_rows(part)
    seen, out = set(), []
    for what, value in rows:
        if value and what not in seen:
            seen.add(what)
            out.append((what, value))
    return out or None


def _join(sep: str, *parts) -> str | None:
    return sep.join(x for x in (s(p) for p in parts) if x) or None


def _machine_rows(m: dict) -> list[tuple[str, str | None]]:
    os_, cpu, mem = d(m.get("os")), d(m.get("cpu")), d(m.get("memory"))
    memory = m.get("memory_bytes")
    gpus = m.get("gpus") if m.get("gpus") is not None else m.get("gpu")
    gpus = [gpus] if isinstance(gpus, dict) else _list(gpus)
    return [
        ("host", s(m.get("hostname"))),
        ("OS", s(os_.get("pretty_name")) or s(os_.get("name"))
         or _join(" ", os_.get("system"), os_.get("release"))),
        ("kernel", _join(" ", m.get("kernel"), m.get("arch") or os_.get("machine"))),
        ("CPU", _join(" \u00b7 ", cpu.get("model"), _cores(cpu.get("logical_cores", cpu.get("count"))))),
        ("memory", size(memory) if isinstance(memory, int) else
         (f"{s(mem.get('total_mb'))} MB" if s(mem.get("total_mb")) else None)),
        ("GPUs", ", ".join(filter(None, (s(d(g).get("model")) or s(d(g).get("name")) for g in gpus)))
         or None),
        ("Python", _python(m.get("python"))),
        ("CUDA", s(d(m.get("cuda")).get("cuda_version"))),
        ("container", s(m.get("container")) or s(d(m.get("container")).get("type"))),
        ("VM", s(m.get("vm")) or s(d(m.get("vm")).get("hypervisor"))),
    ]


def _python(value) -> str | None:
    if isinstance(value, dict):   # roar-cli: {implementation, version}
        return _join(" ", value.get("implementation"), value.get("version"))
    found = [_join(" ", d(p).get("version"), f"({s(d(p).get('exe'))})" if s(d(p).get("exe")) else None)
             for p in _list(value)]   # roar: one entry per interpreter the job ran
    return ", ".join(f for f in found if f) or None


def _cores(n) -> str | None:
    return f"{n} cores" if isinstance(n, int) and not isinstance(n, bool) else None


def _list(value) -> list:
    return value[:MAX_ITEMS] if isinstance(value, list) else []


def packages(meta: dict) -> list[tuple[str, str, str | None]] | None:
    """(manager, name, version) of the packages the job used."""
    pk = d(_context(meta).get("packages") or meta.get("packages"))
    out: list[tuple[str, str, str | None]] = []
    for manager in ("pip", "build_pip", "dpkg", "build_dpkg"):   # roar-cli: {name: version} or [..]
        group = pk.get(manager)
        if isinstance(group, dict):
            out += [(manager, str(k), s(v)) for k, v in list(group.items())[:MAX_ITEMS]]
        for item in _list(group):
            if isinstance(item, str):
                name, _, version = item.partition("==")
                out.append((manager, name, version or None))
            elif isinstance(item, dict) and s(item.get("name")):
                out.append((manager, s(item.get("name")), s(item.get("version"))))
    for interp in _list(pk.get("python")):   # roar's record
        for dist in _list(d(interp).get("distributions")):
            if s(d(dist).get("name")):
                out.append(("python", s(dist["name"]), s(dist.get("version"))))
    for pkg in _list(pk.get("system")):
        if s(d(pkg).get("name")):
            out.append((s(pkg.get("manager")) or "system", s(pkg["name"]), s(pkg.get("version"))))
    return sorted(set(out), key=lambda p: (p[0], p[1].lower()))[:MAX_ITEMS] or None


def git(meta: dict, job_commit: str | None, job_branch: str | None, dag_repo: str | None) -> dict | None:
    g = d(_context(meta).get("git") or meta.get("git"))
    remote = s(g.get("remote")) or s(g.get("remote_url")) or s(g.get("repo")) or dag_repo or None
    commit = s(g.get("commit")) or job_commit
    branch = s(g.get("branch")) or job_branch
    dirty = g.get("dirty") if isinstance(g.get("dirty"), bool) else (
        (not g["clean"]) if isinstance(g.get("clean"), bool) else None)
    if not (remote or commit or branch):
        return None
    return {"remote": remote, "commit": commit, "branch": branch, "dirty": dirty,
            "message": s(g.get("commit_message")), "url": commit_url(remote, commit)}


def env_read(meta: dict) -> tuple[list[tuple[str, str | None]] | None, str]:
    """The variables the job read, with their values redacted again here (a client may have
    sent them unredacted), and where they came from."""
    source, found = "", None
    if isinstance(meta.get("env_read"), dict):
        source, found = "read by the job (getenv)", meta["env_read"]
    elif isinstance(d(meta.get("runtime")).get("env_vars"), dict):
        source, found = "read by the job", meta["runtime"]["env_vars"]
    if found is None:
        return None, ""
    rows = []
    for name, value in list(found.items())[:MAX_ITEMS]:
        name = str(name)
        if value is None:
            rows.append((name, None))
        else:
            rows.append((name, REDACTED if is_secret_name(name, []) else scrub_value(str(value))))
    return sorted(rows), source


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def process_tree(meta: dict) -> list[dict] | None:
    """The stored processes as a list in tree order, each with its depth."""
    procs = [p for p in _list(meta.get("processes"))
             if isinstance(p, dict) and _int(p.get("pid")) is not None]
    if not procs:
        return None
    by_pid = {p["pid"]: p for p in procs}

    def parent(p: dict) -> int | None:
        ppid = _int(p.get("ppid"))
        return ppid if ppid in by_pid and ppid != p["pid"] else None

    children: dict[int | None, list[dict]] = {}
    for p in procs:
        children.setdefault(parent(p), []).append(p)
    out: list[dict] = []
    seen: set[int] = set()
    for root in children.get(None, []) + procs:   # then whatever a loop of ppids left unreached
        stack = [(root, 0)]
        while stack:
            p, depth = stack.pop()
            if p["pid"] in seen:
                continue
            seen.add(p["pid"])
            argv = p.get("argv") if isinstance(p.get("argv"), list) else None
            out.append({"pid": p["pid"], "depth": min(depth, 12), "exe": s(p.get("exe")),
                        "argv": " ".join(str(a) for a in argv[:64]) if argv else None,
                        "exit": s(p.get("exit_code")), "signal": s(p.get("signal"))})
            stack += [(c, depth + 1) for c in reversed(children.get(p["pid"], []))]
    return out


def exit_text(code, meta: dict) -> tuple[str, bool | None]:
    """The exit as words, and whether it succeeded (None: not recorded)."""
    signal = d(meta.get("roar")).get("signal")   # roar's register client sends the record's exit
    if isinstance(signal, int) and not isinstance(signal, bool):
        return f"killed by signal {signal}" + (f" (exit {code})" if code is not None else ""), False
    if code is None:
        return "not recorded", None
    return (f"{code} (success)" if code == 0 else f"{code} (failed)"), code == 0


def label_rows(body) -> list[tuple[str, str]]:
    """A label object flattened to (dotted key, value) rows."""
    rows: list[tuple[str, str]] = []

    def walk(prefix: str, value) -> None:
        if len(rows) >= MAX_ITEMS:
            return
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            rows.append((prefix or "(value)", value if isinstance(value, str) else _compact(value)))

    walk("", body)
    return rows


def _compact(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)[:2000]
