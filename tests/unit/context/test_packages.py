"""Packages used: Python distributions from site-packages, system packages from dpkg."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import metadata

import msgpack
import pytest

from roar.record.context import packages, python_dists, system_packages

HAS_DPKG = os.path.exists("/var/lib/dpkg/status")


def test_a_read_module_maps_to_its_distribution_and_version(tmp_path):
    procs = [{"exe": os.path.realpath(sys.executable), "argv": ["python3"]}]
    got = python_dists.capture(procs, [msgpack.__file__], tmp_path)
    dists = [d for interp in got for d in interp["distributions"]]
    assert {"name": "msgpack", "version": metadata.version("msgpack")}.items() <= dists[0].items()
    assert got[0]["version"] == "%d.%d.%d" % sys.version_info[:3]


def test_dist_info_reads_and_unknown_files_are_not_distributions(tmp_path):
    site = os.path.dirname(os.path.dirname(msgpack.__file__))
    meta = next(p for p in os.listdir(site) if p.startswith("msgpack-") and p.endswith(".dist-info"))
    reads = [os.path.join(site, meta, "METADATA"), os.path.join(site, "no-such-module", "x.py")]
    assert python_dists.distributions_used(site, [os.path.relpath(r, site) for r in reads], tmp_path) == []


def test_site_index_is_cached_by_directory_mtime(tmp_path):
    site = tmp_path / "lib" / "python3.99" / "site-packages"
    (site / "demo").mkdir(parents=True)
    (site / "demo-1.2.dist-info").mkdir()
    (site / "demo-1.2.dist-info" / "METADATA").write_text("Name: Demo\nVersion: 1.2\n\nbody\n")
    (site / "demo-1.2.dist-info" / "RECORD").write_text("demo/__init__.py,,\ndemo-1.2.dist-info/RECORD,,\n")
    cache = tmp_path / "cache"
    cache.mkdir()
    used = python_dists.distributions_used(str(site), ["demo/__init__.py"], cache)
    assert used == [{"name": "Demo", "version": "1.2", "site": str(site), "files": 1}]
    assert len(list(cache.glob("python-site-*.json"))) == 1


@pytest.mark.skipif(not HAS_DPKG or not shutil.which("dpkg-query"), reason="not a dpkg system")
def test_usr_bin_sort_is_owned_by_coreutils_with_its_version(tmp_path):
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "coreutils"], capture_output=True,
                             text=True, check=True).stdout
    got = system_packages.capture(["/usr/bin/sort"], tmp_path)
    assert [(p["manager"], p["name"], p["version"]) for p in got] == [("dpkg", "coreutils", version)]
    assert (tmp_path / system_packages.DPKG_INDEX).exists()


def test_usr_merge_paths_match_dpkg_lists_that_say_bin(tmp_path):
    dpkg = tmp_path / "dpkg"
    (dpkg / "info").mkdir(parents=True)
    (dpkg / "info" / "demo:amd64.list").write_text("/.\n/bin\n/bin/demo\n")
    (dpkg / "status").write_text("Package: demo\nStatus: install ok installed\nArchitecture: amd64\n"
                                 "Version: 1.0-1\n\nPackage: gone\nStatus: deinstall ok config-files\n")
    merge = {"/bin/": "/usr/bin/"}
    found, unowned = system_packages.dpkg_owners(["/usr/bin/demo", "/usr/bin/other"], tmp_path, dpkg, merge)
    assert found == {"/usr/bin/demo": ("demo", "1.0-1", "amd64")}
    assert unowned == ["/usr/bin/other"]


def test_only_packages_owning_used_files_are_listed(tmp_path):
    notes: list[str] = []
    got = packages.capture([{"exe": "/usr/bin/sort", "argv": ["sort"]}], [], tmp_path, notes)
    assert notes == []
    assert len(got["system"]) <= 1 and got["python"] == []
