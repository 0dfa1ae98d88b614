"""Hashing, the hash cache and composite tree hashes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
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


def count_hashing(monkeypatch, what=lambda path, algorithms: path):
    calls = []
    real = hashing.hash_uncached

    def counted(path, algorithms, *args, **kw):
        calls.append(what(path, algorithms))
        return real(path, algorithms, *args, **kw)

    monkeypatch.setattr(hashing, "hash_uncached", counted)
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
    calls = count_hashing(monkeypatch, what=lambda path, algorithms: algorithms)
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
    # the definition written out, not tree_hash itself: members sorted by name
    listing = "".join(f"{i:064x} 1 part-{i}\0" for i in sorted(range(composite.MIN_MEMBERS), key=str))
    assert comp["hash"] == blake3.blake3(b"roar-tree-v1\n" + listing.encode()).hexdigest()


def test_few_files_stay_single():
    entries = [{"path": f"/d/{i}", "hash": f"{i:064x}", "size": 1} for i in range(composite.MIN_MEMBERS - 1)]
    assert composite.group(entries) == (entries, [])


# Files that change while they are hashed. The digest must be of one content or not be given:
# FileChanged. A file truncated under a memory map raised SIGBUS and killed the process, so the
# truncations run in a child process, where a crash fails the test instead of ending the run.

def hash_in_child(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                          timeout=120)


TRUNCATE_WHILE_HASHING = """
import os, sys, threading, time
from roar.artifacts import hashing
path, delay, mode = sys.argv[1], float(sys.argv[2]), sys.argv[3]
if mode == "read":
    hashing.MMAP_MIN = 1 << 62
writer = os.open(path, os.O_WRONLY) if mode == "writer" else None   # no lease while open for writing
with open(path, "wb") as f:
    f.truncate(4 << 30)      # sparse: slow to hash, nothing on disk
threading.Thread(target=lambda: (time.sleep(delay), os.truncate(path, 0)), daemon=True).start()
try:
    print(hashing.hash_file(path)["blake3"])
except hashing.FileChanged as e:
    print("changed:", e)
"""


@pytest.mark.parametrize("mode", ["lease", "read", "writer"])
@pytest.mark.parametrize("delay", [0.0, 0.01, 0.1])
def test_file_truncated_while_hashed_is_reported_not_fatal(tmp_path, mode, delay):
    path = tmp_path / "sparse"
    path.touch()
    proc = hash_in_child(TRUNCATE_WHILE_HASHING, str(path), str(delay), mode)
    assert proc.returncode == 0, f"hashing died (exit {proc.returncode}): {proc.stderr}"
    # or, truncated before it was opened, the digest of what it then was: nothing
    assert proc.stdout.startswith("changed: ") or proc.stdout.strip() == blake3.blake3(b"").hexdigest()


def test_writer_blocked_by_the_lease_does_not_wait_long(tmp_path, monkeypatch):
    """A job's truncate waits only until the lease is seen broken, between two slices."""
    path = tmp_path / "sparse"
    with open(path, "wb") as f:
        f.truncate(2 << 30)
    waited = []

    def cut():
        time.sleep(0.05)
        start = time.monotonic()
        os.truncate(path, 0)
        waited.append(time.monotonic() - start)

    t = threading.Thread(target=cut)
    t.start()
    with pytest.raises(hashing.FileChanged):
        hashing.hash_file(str(path))
    t.join()
    assert waited[0] < 5


def test_opened_for_writing_but_unchanged_is_hashed(tmp_path, monkeypatch):
    """A broken lease is not a change: the rest is read and the digest is right."""
    monkeypatch.setattr(hashing, "MMAP_SLICE", 1 << 20)
    data = os.urandom(8 << 20)
    f = old_file(tmp_path / "f", data)
    opened = []

    def open_for_writing(done, total):
        if done == 1 << 20:     # the lease is held: this open waits until hashing lets go
            t = threading.Thread(target=lambda: opened.append(os.open(f, os.O_WRONLY)))
            t.start()
            time.sleep(0.1)
            opened.append(t)

    assert hashing.hash_file(f, progress=open_for_writing) == {"blake3": blake3.blake3(data).hexdigest()}
    opened[0].join()
    os.close(opened[1])


@pytest.mark.parametrize("path", ["map", "read"])
@pytest.mark.parametrize("change", ["rewrite", "truncate", "grow", "replace", "chmod"])
def test_change_during_hash_raises(tmp_path, monkeypatch, path, change):
    monkeypatch.setattr(hashing, "MMAP_SLICE", 1 << 20)
    if path == "read":
        monkeypatch.setattr(hashing, "MMAP_MIN", 1 << 62)
    f = old_file(tmp_path / "f", os.urandom(4 << 20))

    def act():
        if change == "rewrite":        # same size, other bytes
            with open(f, "r+b") as w:
                w.write(b"x" * 4096)
        elif change == "truncate":
            os.truncate(f, 1000)
        elif change == "grow":
            with open(f, "ab") as w:
                w.write(b"more")
        elif change == "replace":      # the open file loses its name: its ctime changes
            old_file(tmp_path / "g", b"other")
            os.replace(tmp_path / "g", f)
        else:
            os.chmod(f, 0o600)

    # from a thread, because under a lease a writer waits until the hash lets go; the hash
    # waits for it a slice later, so the change lands before the hash ends
    meddler = threading.Thread(target=act)

    def meddle(done, total):
        if done == 1 << 20:
            meddler.start()
        elif done == 2 << 20:
            meddler.join()

    with pytest.raises(hashing.FileChanged):
        hashing.hash_file(f, progress=meddle)


def test_changed_between_stat_and_hash(tmp_path):
    f = old_file(tmp_path / "f", b"first")
    st = os.stat(f)
    old_file(tmp_path / "f", b"second, longer")
    with pytest.raises(hashing.FileChanged):
        hashing.hash_file(f, expect=st)


def test_changed_while_hashed_is_not_cached(cache, tmp_path, monkeypatch):
    monkeypatch.setattr(hashing, "MMAP_SLICE", 1 << 20)
    monkeypatch.setattr(hashing, "MMAP_MIN", 1 << 62)
    f = old_file(tmp_path / "f", os.urandom(3 << 20))
    st = os.stat(f)

    def rewrite_then_restore_times(done, total):
        if done == 1 << 20:
            with open(f, "r+b") as w:
                w.write(b"x" * 4096)
            os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))   # the key is as before, ctime is not

    with pytest.raises(hashing.FileChanged):
        hashing.hash_file(f, cache=cache, progress=rewrite_then_restore_times)
    assert cache.lookup(os.stat(f), ("blake3",)) == {}


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(hashing.NotRegularFile):
        hashing.hash_file(str(fifo))


def test_directory_is_refused(tmp_path):
    with pytest.raises(hashing.NotRegularFile):
        hashing.hash_file(str(tmp_path))


@pytest.mark.parametrize("size", [0, 1, hashing.MMAP_MIN - 1, hashing.MMAP_MIN, 3 * hashing.MAP_STEP + 5])
def test_read_and_map_give_the_same_digests(tmp_path, size):
    data = os.urandom(size)
    f = old_file(tmp_path / "f", data)
    assert hashing.hash_file(f, ("blake3", "sha256")) == {
        "blake3": blake3.blake3(data).hexdigest(), "sha256": hashlib.sha256(data).hexdigest()}
