"""Machine facts, the boot-id cache and GPU detection without a GPU."""

from __future__ import annotations

import os

from roar.record.context import machine


def _fake_smi(tmp_path, monkeypatch, body):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    smi = bindir / "nvidia-smi"
    smi.write_text("#!/bin/sh\n" + body)
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setattr(machine, "_nvml_gpus", lambda: None)


def test_facts_are_present_and_cached(tmp_path):
    first = machine.capture(tmp_path)
    assert first["kernel"] == os.uname().release and first["arch"] == os.uname().machine
    assert first["cpu"]["logical_cores"] == os.cpu_count()
    assert first["memory_bytes"] > 0
    assert isinstance(first["gpus"], list)
    assert (tmp_path / machine.CACHE_FILE).exists()
    assert machine.capture(tmp_path) == first


def test_hanging_nvidia_smi_is_timed_out_and_noted(tmp_path, monkeypatch):
    _fake_smi(tmp_path, monkeypatch, "exec sleep 30\n")
    monkeypatch.setattr(machine, "NVIDIA_SMI_TIMEOUT_S", 0.3)
    gpus, note = machine.gpus_and_note()
    assert gpus == []
    assert note == "nvidia-smi did not answer within 0.3 s: GPUs not recorded"


def test_nvidia_smi_xml_is_parsed(tmp_path, monkeypatch):
    xml = ("<nvidia_smi_log><driver_version>535.104</driver_version><cuda_version>12.2</cuda_version>"
           "<gpu><product_name>NVIDIA A100</product_name><uuid>GPU-1</uuid>"
           "<fb_memory_usage><total>40960 MiB</total></fb_memory_usage></gpu></nvidia_smi_log>")
    _fake_smi(tmp_path, monkeypatch, f"echo '{xml}'\n")
    gpus, note = machine.gpus_and_note()
    assert note is None
    assert gpus == [{"vendor": "nvidia", "model": "NVIDIA A100", "memory_bytes": 40960 << 20,
                     "driver": "535.104", "cuda": "12.2", "uuid": "GPU-1"}]


def test_no_gpu_tool_is_an_empty_list(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(machine, "_nvml_gpus", lambda: None)
    assert machine.gpus_and_note() == ([], None)
