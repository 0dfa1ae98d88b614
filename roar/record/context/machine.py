"""Machine facts: OS, kernel, architecture, hostname, CPU, memory, GPUs, container/VM.

The slow or stable facts (OS release, CPU model, memory, GPUs, container and VM
detection) are cached in `machine.json`, keyed by the boot id, the hostname and
the mtime of /etc/os-release: they cannot change without one of those changing
(a GPU hot-plugged without a reboot is the accepted exception). The kernel and
hostname come from uname(2) on every run, which costs nothing.

GPUs: NVML through ctypes when libnvidia-ml is loadable, else `nvidia-smi -q -x`
with a timeout; no NVIDIA GPU is an empty list, and a failing or hanging
`nvidia-smi` is an empty list plus a note, never an error.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from roar.record.context import cache

NVIDIA_SMI_TIMEOUT_S = 2.0
CACHE_FILE = "machine.json"

VM_PRODUCTS = (
    ("kvm", "kvm"), ("qemu", "qemu"), ("vmware", "vmware"), ("virtualbox", "virtualbox"),
    ("hvm domu", "xen"), ("xen", "xen"), ("virtual machine", "hyperv"),
    ("google compute engine", "gce"), ("amazon ec2", "amazon"), ("bochs", "bochs"),
    ("firecracker", "firecracker"), ("cloud hypervisor", "cloud-hypervisor"),
)
CONTAINER_CGROUP_MARKERS = (("docker", "docker"), ("kubepods", "kubernetes"), ("libpod", "podman"),
                            ("lxc", "lxc"), ("containerd", "containerd"))


def capture(cache_dir: Path) -> dict[str, Any]:
    uname = os.uname()
    key = [_read("/proc/sys/kernel/random/boot_id").strip(), uname.nodename, _mtime_ns("/etc/os-release")]
    path = cache_dir / CACHE_FILE
    stable = cache.load(path, key)
    if stable is None:
        stable = stable_facts()
        cache.store(path, key, stable)
    return {
        "hostname": uname.nodename,
        "kernel": uname.release,
        "kernel_version": uname.version,
        "arch": uname.machine,
        **stable,
    }


def stable_facts() -> dict[str, Any]:
    gpus, gpu_note = gpus_and_note()
    facts: dict[str, Any] = {
        "os": os_release(),
        "cpu": cpu(),
        "memory_bytes": memory_bytes(),
        "gpus": gpus,
        "container": container(),
        "vm": vm(),
    }
    if gpu_note:
        facts["gpu_note"] = gpu_note
    return facts


def os_release() -> dict[str, str | None]:
    fields: dict[str, str] = {}
    for line in (_read("/etc/os-release") or _read("/usr/lib/os-release")).splitlines():
        name, sep, value = line.partition("=")
        if sep:
            fields[name.strip()] = value.strip().strip('"').strip("'")
    return {"name": fields.get("NAME"), "id": fields.get("ID"), "version": fields.get("VERSION_ID"),
            "pretty_name": fields.get("PRETTY_NAME")}


def cpu() -> dict[str, Any]:
    model = None
    for line in _read("/proc/cpuinfo").splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("model name", "Model", "cpu model"):
            model = value.strip()
            break
    try:
        usable = len(os.sched_getaffinity(0))
    except OSError:
        usable = None
    return {"model": model, "logical_cores": os.cpu_count(), "usable_cores": usable}


def memory_bytes() -> int | None:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            return int(parts[1]) * 1024 if len(parts) >= 2 and parts[1].isdigit() else None
    return None


def container() -> str | None:
    """The container runtime when roar itself runs in one, else None."""
    if os.path.exists("/.dockerenv"):
        return "docker"
    if os.path.exists("/run/.containerenv"):
        return "podman"
    declared = _read("/run/systemd/container").strip()
    if declared:
        return declared
    cgroup = _read("/proc/1/cgroup")
    for marker, name in CONTAINER_CGROUP_MARKERS:
        if marker in cgroup:
            return name
    return None


def vm() -> str | None:
    """The hypervisor when the machine is a VM: its DMI product or vendor, Xen,
    or the CPU's `hypervisor` flag ("unknown" when only that says so)."""
    dmi = " ".join(_read(f"/sys/class/dmi/id/{f}").strip().lower() for f in ("product_name", "sys_vendor"))
    for marker, name in VM_PRODUCTS:
        if marker in dmi:
            return name
    hypervisor = _read("/sys/hypervisor/type").strip()
    if hypervisor:
        return hypervisor
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("flags"):
            return "unknown" if " hypervisor" in line else None
    return None


def gpus_and_note() -> tuple[list[dict[str, Any]], str | None]:
    """([gpu, ...], note): NVML first, then nvidia-smi; ([], None) when neither exists."""
    gpus = _nvml_gpus()
    if gpus is not None:
        return gpus, None
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return [], None
    try:
        out = subprocess.run([smi, "-q", "-x"], capture_output=True, timeout=NVIDIA_SMI_TIMEOUT_S,
                             stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return [], f"nvidia-smi did not answer within {NVIDIA_SMI_TIMEOUT_S:g} s: GPUs not recorded"
    except OSError as exc:
        return [], f"nvidia-smi could not run ({exc.strerror}): GPUs not recorded"
    if out.returncode != 0:
        return [], f"nvidia-smi failed (exit {out.returncode}): GPUs not recorded"
    try:
        return _parse_smi_xml(out.stdout), None
    except SyntaxError:   # xml.etree's ParseError
        return [], "nvidia-smi printed unreadable XML: GPUs not recorded"


def _parse_smi_xml(xml: bytes) -> list[dict[str, Any]]:
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml)
    driver = root.findtext("driver_version")
    cuda = root.findtext("cuda_version")
    gpus = []
    for gpu in root.findall("gpu"):
        total = (gpu.findtext("fb_memory_usage/total") or "").split()
        memory = int(total[0]) * 1024 * 1024 if total and total[0].isdigit() else None
        gpus.append({"vendor": "nvidia", "model": gpu.findtext("product_name"), "memory_bytes": memory,
                     "driver": driver, "cuda": cuda, "uuid": gpu.findtext("uuid")})
    return gpus


class _NvmlMemory(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]


def _nvml_gpus() -> list[dict[str, Any]] | None:
    """GPUs through NVML, or None when NVML is not installed or will not start."""
    try:
        nvml = ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return None
    if nvml.nvmlInit_v2() != 0:
        return None
    try:
        buf = ctypes.create_string_buffer(96)
        driver = buf.value.decode() if nvml.nvmlSystemGetDriverVersion(buf, 96) == 0 else None
        cuda_int = ctypes.c_int()
        cuda = None
        if nvml.nvmlSystemGetCudaDriverVersion_v2(ctypes.byref(cuda_int)) == 0:
            cuda = f"{cuda_int.value // 1000}.{cuda_int.value % 1000 // 10}"
        count = ctypes.c_uint()
        if nvml.nvmlDeviceGetCount_v2(ctypes.byref(count)) != 0:
            return None
        gpus = []
        for i in range(count.value):
            handle = ctypes.c_void_p()
            if nvml.nvmlDeviceGetHandleByIndex_v2(i, ctypes.byref(handle)) != 0:
                continue
            name = buf.value.decode() if nvml.nvmlDeviceGetName(handle, buf, 96) == 0 else None
            mem = _NvmlMemory()
            total = mem.total if nvml.nvmlDeviceGetMemoryInfo(handle, ctypes.byref(mem)) == 0 else None
            uuid = buf.value.decode() if nvml.nvmlDeviceGetUUID(handle, buf, 96) == 0 else None
            gpus.append({"vendor": "nvidia", "model": name, "memory_bytes": total, "driver": driver,
                         "cuda": cuda, "uuid": uuid})
        return gpus
    finally:
        nvml.nvmlShutdown()


def _read(path: str) -> str:
    from roar.record.context import readfile

    return readfile.read_text(path)


def _mtime_ns(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None
