"""What differs between the machine a recipe was recorded on and this one: OS, kernel,
CPU, GPUs, Python interpreters and system packages. Listed before a run, never ignored."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from typing import Any

from roar import privilege


def differences(recipe: dict[str, Any]) -> list[str]:
    from roar.record.context import machine as machine_ctx

    lines: list[str] = []
    recorded = recipe.get("machine") or {}
    if recorded:
        now_os = (machine_ctx.os_release() or {}).get("pretty_name")
        was_os = (recorded.get("os") or {}).get("pretty_name")
        _compare(lines, "OS", was_os, now_os)
        _compare(lines, "kernel", recorded.get("kernel"), platform.release())
        _compare(lines, "arch", recorded.get("arch"), platform.machine())
        _compare(lines, "CPU", (recorded.get("cpu") or {}).get("model"), machine_ctx.cpu().get("model"))
        was_gpus = sorted(g.get("model") or "?" for g in recorded.get("gpus") or [])
        if was_gpus:
            now_gpus = sorted(g.get("model") or "?" for g in machine_ctx.gpus_and_note()[0])
            _compare(lines, "GPUs", ", ".join(was_gpus), ", ".join(now_gpus) or "none")
    for interp in recipe["packages"]["interpreters"]:
        if not os.path.exists(interp["exe"]):
            lines.append(f"Python {interp['exe']} ({interp['version']}): not on this machine")
        else:
            _compare(lines, f"Python {interp['exe']}", interp["version"], _python_version(interp["exe"]))
    for pkg, now in zip(recipe["packages"]["system"], installed_versions(recipe["packages"]["system"]),
                        strict=True):
        if now != pkg["version"]:
            lines.append(f"system package {pkg['name']}: recorded {pkg['version']}, "
                         f"here {now or 'not installed'}")
    return lines


def missing_system(recipe: dict[str, Any]) -> list[dict[str, Any]]:
    pkgs = recipe["packages"]["system"]
    return [p for p, now in zip(pkgs, installed_versions(pkgs), strict=True) if now is None]


def installed_versions(pkgs: list[dict[str, Any]]) -> list[str | None]:
    """dpkg's installed version of each package (None: not installed or no dpkg)."""
    if not pkgs or not shutil.which("dpkg-query"):
        return [None] * len(pkgs)
    names = [p["name"] + (f":{p['arch']}" if p.get("arch") and p["arch"] != "all" else "") for p in pkgs]
    found: dict[str, str] = {}
    fmt = "${Package}:${Architecture} ${Version} ${db:Status-Abbrev}\\n"
    out = subprocess.run(["dpkg-query", "-W", "-f", fmt, *names], capture_output=True, text=True,
                         check=False, **privilege.child_ids()).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2].startswith("ii"):
            name, _, arch = parts[0].partition(":")
            found[name] = parts[1]
            found[f"{name}:{arch}"] = parts[1]
    return [found.get(n) or found.get(p["name"]) for n, p in zip(names, pkgs, strict=True)]


def _python_version(exe: str) -> str | None:
    try:
        out = subprocess.run([exe, "-I", "-S", "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True, timeout=5, check=False, **privilege.child_ids())
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def _compare(lines: list[str], what: str, was: Any, now: Any) -> None:
    if was is not None and was != now:
        lines.append(f"{what}: recorded {was}, here {now}")
