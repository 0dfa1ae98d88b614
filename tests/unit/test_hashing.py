"""Hashing, the hash cache and composite tree hashes."""

from __future__ import annotations

import hashlib
import os
import time

import blake3
import pytest

from roar.artifacts import composite, hashing


def old_file(path, content: bytes):
    path.write_bytes(content)
    past = time.time_ns() - 10_000_000_000
    os.utime(path, ns=(past, past))
    return str(path)


def test_hash_file_several_algorithms(tmp_path):
    f = old_file(tmp_path / "f", b"hello" * 1000)
    assert hashing.hash_file(f, ("blake3", "sha256")) == {
        "blake3": blake3.blake3(b"hello" * 1000).hexdigest(),
        "sha256": hashlib.sha256(b"hello" * 1000).hexdigest()}


def test_empty_file(tmp_path):
    f = old_file(tmp_path / "e", b"")
    assert hashing.hash_file(f) == {"blake3": blake3.blake3(b"").hexdigest()}


def test_progress_is_reported_per_slice(tmp_path, monkeypatch):
    monkeypatch.setattr(hashing, "MMAP_SLICE", 1000)
    f = old_file(tmp_path / "f", b"x" * 2500)
    seen = []
    hashing.hash_file(f, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1000, 2500), (2000, 2500), (2500, 2500)]


@pytest.fixture
def cache(ws):
    c = ws.hash_cache()
    yield c
    c.close()


def count_hashing(monkeypatch):
    calls = []
    real = hashing.hash_uncached
    monkeypatch.setattr(hashing, "hash_uncached", lambda p, a, pr=None: calls.append(p) or real(p, a, pr))
    return calls


def test_unchanged_file_is_hashed_once(cache, tmp_path, monkeypatch):
    calls = count_hashing(monkeypatch)
    f = old_file(tmp_path / "data", b"abc")
    first = hashing.hash_file(f, cache=cache)
    assert hashing.hash_file(f, cache=cache) == first
    assert calls == [f]
    assert (cache.hits, cache.misses) == (1, 1)


def test_new_algorithm_hashes_only_it(cache, tmp_path, monkeypatch):
    f = old_file(tmp_path / "data", b"abc")
    hashing.hash_file(f, cache=cache)
    calls = []
    real = hashing.hash_uncached
    monkeypatch.setattr(hashing, "hash_uncached", lambda p, a, pr=None: calls.append(a) or real(p, a, pr))
    assert set(hashing.hash_file(f, ("blake3", "sha256"), cache=cache)) == {"blake3", "sha256"}
    assert calls == [("sha256",)]


def test_changed_file_is_rehashed(cache, tmp_path):
    f = old_file(tmp_path / "data", b"abc")
    before = hashing.hash_file(f, cache=cache)
    old_file(tmp_path / "data", b"abd")     # same size; mtime differs by a few ns at most
    assert hashing.hash_file(f, cache=cache) != before


def test_racy_fresh_file_is_not_cached(cache, tmp_path, monkeypatch):
    calls = count_hashing(monkeypatch)
    f = tmp_path / "fresh"
    f.write_bytes(b"just written")
    hashing.hash_file(str(f), cache=cache)
    hashing.hash_file(str(f), cache=cache)
    assert len(calls) == 2


def test_cache_survives_reopening(ws, tmp_path, monkeypatch):
    f = old_file(tmp_path / "data", b"abc")
    c = ws.hash_cache()
    hashing.hash_file(f, cache=c)
    c.close()
    calls = count_hashing(monkeypatch)
    c = ws.hash_cache()
    hashing.hash_file(f, cache=c)
    c.close()
    assert calls == []


def test_tree_hash_definition():
    members = [("b.txt", "22" * 32, 2), ("a.txt", "11" * 32, 1)]
    expected = blake3.blake3(b"roar-tree-v1\n" + f"{'11' * 32} 1 a.txt\0{'22' * 32} 2 b.txt\0".encode())
    assert composite.tree_hash(members) == expected.hexdigest()
    assert composite.tree_hash(members[::-1]) == expected.hexdigest()


def test_directory_of_many_files_becomes_one_composite():
    entries = [{"path": f"/d/part-{i}", "hash": f"{i:064x}", "size": 1} for i in range(composite.MIN_MEMBERS)]
    entries.append({"path": "/other/x", "hash": "f" * 64, "size": 3})
    singles, composites = composite.group(entries)
    assert [e["path"] for e in singles] == ["/other/x"]
    [comp] = composites
    assert comp["path"] == "/d" and comp["size"] == composite.MIN_MEMBERS
    assert comp["hash"] == composite.tree_hash((f"part-{i}", f"{i:064x}", 1) for i in range(composite.MIN_MEMBERS))


def test_few_files_stay_single():
    entries = [{"path": f"/d/{i}", "hash": f"{i:064x}", "size": 1} for i in range(composite.MIN_MEMBERS - 1)]
    assert composite.group(entries) == (entries, [])
