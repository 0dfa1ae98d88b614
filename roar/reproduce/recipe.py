"""The recipe: what a reproduction needs, from the job records alone.

The git repository and commit, the Python distributions and system packages the jobs
used, the steps (build steps first, then get and run steps in the order they ran, which
is a topological order: a job only reads what was made before it) and the source inputs:
files a job read that no job of the recipe made, with their recorded hashes.
"""

from __future__ import annotations

from typing import Any

from roar.reproduce.source import Found


def build(found: Found) -> dict[str, Any]:
    records = found.records
    steps = [_step(r) for r in records if r["type"] == "build"]
    steps += [_step(r) for r in records if r["type"] != "build"]
    sources: dict[str, dict[str, Any]] = {}
    made: set[str] = set()   # made by an earlier job: a copy's source is still a source
    for r in records:
        for entry in r["inputs"]:
            if entry.get("external") or not entry.get("hash") or entry["hash"] in made:
                continue
            sources.setdefault(entry["path"], {"path": entry["path"], "hash": entry["hash"],
                                               "size": entry.get("size")})
        made |= {o["hash"] for o in r["outputs"] if o.get("hash")}
    return {
        "ref": {"kind": found.kind, "id": found.id, "path": found.target_path},
        "target": found.target_hash,
        "origin": found.origin,
        "root": found.root,
        "git": _git(records),
        "packages": _packages(records),
        "machine": _machine(records),
        "steps": steps,
        "sources": sorted(sources.values(), key=lambda s: s["path"]),
    }


def _step(record: dict[str, Any]) -> dict[str, Any]:
    from roar.lineage.refs import step_name

    step = {"uid": record["uid"], "step": step_name(record["step"], record["type"]), "type": record["type"],
            "command": record["command"], "argv": record["argv"], "cwd": record["cwd"],
            "argv_redacted": record.get("argv_redacted", False),
            "outputs": [{"path": o["path"], "hash": o.get("hash"), "size": o.get("size")}
                        for o in record["outputs"]]}
    if record["type"] == "get":
        transfer = record.get("transfer") or {}
        step["source"] = transfer.get("source")
        step["destination"] = transfer.get("destination")
    return step


def _git(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The repository of the latest job that had one (its commit is the one to check out)."""
    for r in reversed(records):
        git = (r.get("context") or {}).get("git")
        if git and git.get("commit"):
            return {"root": git.get("root"), "remote": git.get("remote"), "commit": git["commit"],
                    "branch": git.get("branch"), "dirty": git.get("dirty")}
    return None


def _packages(records: list[dict[str, Any]]) -> dict[str, Any]:
    python: dict[str, tuple[str | None, str | None, str | None]] = {}
    interpreters: dict[str, str | None] = {}
    system: dict[str, dict[str, Any]] = {}
    for r in records:
        packages = (r.get("context") or {}).get("packages") or {}
        for interp in packages.get("python") or []:
            if interp.get("exe"):
                interpreters[interp["exe"]] = interp.get("version")
            for dist in interp.get("distributions") or []:
                if dist["name"] != "roar":   # roar's own start-up hook, not the job's
                    python[dist["name"]] = (dist.get("version"), interp.get("exe"), dist.get("site"))
        for pkg in packages.get("system") or []:
            system[pkg["name"]] = {"name": pkg["name"], "version": pkg.get("version"),
                                   "arch": pkg.get("arch"), "manager": pkg.get("manager")}
    return {"interpreters": [{"exe": e, "version": v} for e, v in sorted(interpreters.items())],
            "python": [{"name": n, "version": v, "exe": e, "site": site}
                       for n, (v, e, site) in sorted(python.items())],
            "system": [system[n] for n in sorted(system)]}


def _machine(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    for r in reversed(records):
        machine = (r.get("context") or {}).get("machine")
        if machine:
            return machine
    return None
