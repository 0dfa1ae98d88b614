"""What differs between the machine a recipe was recorded on and this one: OS, kernel,
CPU, GPUs, Python interpreters and system packages. Listed before a run, never ignored."""

from __future__ import annotations

import os
import platform
import re
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


# What Debian allows in a package name, an architecture and a version. Anything else on
# apt-get's command line means more than a package: a path ("./x.deb", installed as root with
# its maintainer scripts), a release ("name/unstable"), a removal ("name-"), a pattern, an option.
_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]*[a-z0-9+.]")
_ARCH = re.compile(r"[a-z0-9][a-z0-9-]*")
_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+~:-]*")


def apt_arguments(pkgs: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """`name[:arch][=version]` for apt-get install, for each package whose fields are a plain
    Debian name, architecture and version; and the rest, refused, as they were recorded."""
    good, refused = [], []
    for p in pkgs:
        name, arch, version = p.get("name"), p.get("arch"), p.get("version")
        if not (_plain(_NAME, name) and (arch in (None, "", "all") or _plain(_ARCH, arch))
                and (version in (None, "") or _plain(_VERSION, version))):
            refused.append(f"{name}" + (f":{arch}" if arch else "") + (f"={version}" if version else ""))
            continue
        good.append(name + (f":{arch}" if arch not in (None, "", "all") else "")
                    + (f"={version}" if version else ""))
    return good, refused


def _plain(pattern: re.Pattern[str], value: Any) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def installed_versions(pkgs: list[dict[str, Any]]) -> list[str | None]:
    """dpkg's installed version of each package (None: not installed or no dpkg)."""
    if not pkgs or not shutil.which("dpkg-query"):
        return [None] * len(pkgs)
    names = [p["name"] + (f":{p['arch']}" if p.get("arch") and p["arch"] != "all" else "") for p in pkgs]
    found: dict[str, str] = {}
    fmt = "${Package}:${Architecture} ${Version} ${db:Status-Abbrev}\\n"
    out = subprocess.run(["dpkg-query", "-W", "-f", fmt, "--", *names], capture_output=True, text=True,
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
