"""Will `roar run` work here, and if not, why: each check the tracer depends on, with
its fix (`roar doctor`).

The checks are the ones `roar run` makes anyway (loader.preflight and the load and
attach of the object), taken one by one so that each says what it found, and a few
that only explain (kernel version, lockdown, unprivileged BPF). The last one loads
the real object and attaches it for a moment: nothing short of that proves the
kernel accepts roar's programs.
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from roar.errors import RoarError


@dataclass
class Check:
    name: str
    ok: bool | None          # None: only informative
    found: str
    fix: str = ""
    exit_code: int = 0       # what `roar run` would exit with when this fails


def run_checks() -> list[Check]:
    checks = [_privileges(), _btf(), _libbpf(), _object(), _pid_namespace(), _lockdown(), _kernel(),
              _unprivileged_bpf()]
    if all(c.ok is not False for c in checks):
        checks.append(_load_and_attach())
    return checks


def as_dicts(checks: list[Check]) -> list[dict]:
    return [asdict(c) for c in checks]


def _guard(name: str, probe: Callable[[], Check]) -> Check:
    try:
        return probe()
    except RoarError as exc:
        return Check(name, False, exc.message, exit_code=exc.exit_code)


def _privileges() -> Check:
    from roar.tracer.loader import CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN, _effective_caps

    caps = _effective_caps()
    if os.geteuid() == 0 or caps & (1 << CAP_SYS_ADMIN):
        return Check("privileges", True, f"uid {os.geteuid()}, CAP_SYS_ADMIN")
    if caps & (1 << CAP_BPF) and caps & (1 << CAP_PERFMON):
        return Check("privileges", True, "CAP_BPF and CAP_PERFMON")
    return Check("privileges", False, f"uid {os.geteuid()} without CAP_BPF+CAP_PERFMON",
                 "run it as `sudo roar run ...`", 121)


def _btf() -> Check:
    from roar.tracer.loader import BTF_PATH

    if BTF_PATH.exists():
        return Check("kernel BTF", True, f"{BTF_PATH} ({BTF_PATH.stat().st_size >> 20} MiB)")
    return Check("kernel BTF", False, f"{BTF_PATH} is missing",
                 "use a kernel built with CONFIG_DEBUG_INFO_BTF=y (most distribution kernels since 5.8)", 122)


def _libbpf() -> Check:
    def probe() -> Check:
        from roar.tracer import libbpf

        major, minor = libbpf.lib().version
        return Check("libbpf", True, f"libbpf.so.1, version {major}.{minor}")

    check = _guard("libbpf", probe)
    if not check.ok:
        check.fix = "install libbpf 1.0 or newer (Debian/Ubuntu: apt install libbpf1)"
    return check


def _object() -> Check:
    from roar.tracer.loader import object_path

    path = object_path()
    if path.exists():
        return Check("BPF object", True, str(path))
    return Check("BPF object", False, f"{path} is missing", "reinstall roar (scripts/setup)", 124)


def _pid_namespace() -> Check:
    from roar.tracer.loader import INIT_PID_NS

    try:
        ns = os.readlink("/proc/self/ns/pid")
    except OSError as exc:
        return Check("PID namespace", False, f"cannot read /proc/self/ns/pid ({exc.strerror})",
                     "mount /proc", 122)
    if ns == f"pid:[{INIT_PID_NS}]":
        return Check("PID namespace", True, "the host's")
    return Check("PID namespace", False, f"{ns}, not the host's: the kernel reports host PIDs",
                 "run roar on the host, or in a container started with --pid=host", 122)


def _lockdown() -> Check:
    path = Path("/sys/kernel/security/lockdown")
    try:
        text = path.read_text().strip()
    except OSError:
        return Check("lockdown", None, "not reported by this kernel")
    mode = text[text.find("[") + 1:text.find("]")] if "[" in text else text
    if mode == "confidentiality":
        return Check("lockdown", False, "confidentiality: BPF may not read kernel memory",
                     "boot with lockdown=integrity or none", 122)
    return Check("lockdown", True, mode)


def _kernel() -> Check:
    release = platform.release()
    try:
        major, minor = (int(x) for x in release.split(".")[:2])
    except ValueError:
        return Check("kernel", None, release)
    if (major, minor) < (5, 17):
        return Check("kernel", False, f"Linux {release}", "roar needs Linux 5.17 or newer", 122)
    return Check("kernel", True, f"Linux {release} ({platform.machine()})")


def _unprivileged_bpf() -> Check:
    try:
        value = Path("/proc/sys/kernel/unprivileged_bpf_disabled").read_text().strip()
    except OSError:
        return Check("unprivileged BPF", None, "not reported")
    return Check("unprivileged BPF", None, f"kernel.unprivileged_bpf_disabled = {value} (roar needs root "
                 "or CAP_BPF either way)")


def _load_and_attach() -> Check:
    def probe() -> Check:
        import time

        from roar.tracer.loader import Tracer

        started = time.monotonic()
        tracer = Tracer(lambda _data: None)
        try:
            programs = tracer.attached
        finally:
            tracer.close()
        return Check("load and attach", True, f"{programs} programs loaded, attached and detached in "
                     f"{(time.monotonic() - started) * 1000:.0f} ms")

    check = _guard("load and attach", probe)
    if not check.ok:
        check.fix = "`roar run -v -- true` shows libbpf's and the verifier's log"
    return check
