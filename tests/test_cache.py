"""Atomic caches: an interrupted build is never reused; a damaged one is named and rebuilt."""
import json
import os
import re
import stat
import subprocess
import sys

import pytest

from radiolib.core import cache


def test_key_is_stable_and_sensitive():
    assert cache.key_of(a=1, b=[1, 2]) == cache.key_of(b=[1, 2], a=1)
    assert cache.key_of(a=1) != cache.key_of(a=2)


def test_interrupted_build_leaves_nothing_usable(tmp_path):
    final = tmp_path / "patches" / "k1"
    with pytest.raises(KeyboardInterrupt):
        with cache.building(final, {"x": 1}) as tmp:
            (tmp / "half.npy").write_bytes(b"partial")
            raise KeyboardInterrupt
    assert not final.exists() and not cache.is_complete(final)
    assert list((tmp_path / "patches").iterdir()) == []


def test_killed_build_leftover_is_ignored_and_cleaned(tmp_path):
    parent = tmp_path / "patches"
    (parent / ".tmp-k1-abc").mkdir(parents=True)  # what a SIGKILL leaves behind
    (parent / ".tmp-k1-abc" / "index.csv").write_text("patient\n")
    assert not cache.is_complete(parent / "k1")
    assert cache.clean_stale(parent) == 1
    with cache.building(parent / "k1", {"v": 2}) as tmp:
        (tmp / "data.txt").write_text("ok")
    assert cache.is_complete(parent / "k1") and cache.manifest(parent / "k1") == {"v": 2}
    assert (parent / "k1" / "data.txt").read_text() == "ok"



def test_cleaning_spares_a_build_still_running_in_another_process(tmp_path):
    parent = tmp_path / "patches"
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(ended.stdout)
    with cache.building(parent / "k1") as mine:  # a live build (this process), named with its owner
        (mine / "index.csv").write_text("patient\n")
        dead = parent / mine.name.replace(f"pid{os.getpid()}.", f"pid{dead_pid}.")  # a killed run's leftover
        dead.mkdir()
        foreign = parent / f".tmp-k3-pid{os.getpid()}.{'0' * 8}-abcdef01"  # another machine's build, fresh
        foreign.mkdir()
        assert cache.clean_stale(parent) == 1  # what two runs sharing a cache did to each other: now only the dead
        assert mine.is_dir() and foreign.is_dir() and not dead.exists()
    assert cache.is_complete(parent / "k1")

def test_atomic_write_keeps_old_content_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    cache.atomic_write_text(path, json.dumps({"old": 1}))

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(cache.os, "replace", boom)
    with pytest.raises(OSError):
        cache.atomic_write_text(path, json.dumps({"new": 2}))
    assert json.loads(path.read_text()) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_atomic_write_gives_the_umask_mode_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        cache.atomic_write_text(tmp_path / "results.json", "{}")
        with cache.building(tmp_path / "kind" / "k", {}) as tmp:
            (tmp / "a.txt").write_text("a")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "results.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "kind" / "k").stat().st_mode) == 0o755
    (tmp_path / "results.json").chmod(0o640)  # a file that exists keeps its own mode, as with open()
    cache.atomic_write_text(tmp_path / "results.json", "{}")
    assert stat.S_IMODE((tmp_path / "results.json").stat().st_mode) == 0o640


def test_staging_dir_replaces_a_folder_only_when_complete_with_the_umask_mode(tmp_path):
    final = tmp_path / "cohort"
    final.mkdir(mode=0o700)
    (final / "old.txt").write_text("old")
    with pytest.raises(RuntimeError, match="render failed"):
        with cache.staging_dir(final) as tmp:
            (tmp / "new.txt").write_text("half")
            raise RuntimeError("render failed")
    assert [p.name for p in final.iterdir()] == ["old.txt"] and [p.name for p in tmp_path.iterdir()] == ["cohort"]
    old = os.umask(0o022)
    try:
        with cache.staging_dir(final) as tmp:
            (tmp / "new.txt").write_text("new")
            assert [p.name for p in final.iterdir()] == ["old.txt"]  # untouched until the new one is complete
    finally:
        os.umask(old)
    assert [p.name for p in final.iterdir()] == ["new.txt"] and [p.name for p in tmp_path.iterdir()] == ["cohort"]
    assert stat.S_IMODE(final.stat().st_mode) == 0o755


def test_atomic_write_with_a_writer_that_fails_leaves_the_old_file(tmp_path):
    path = tmp_path / "model.pt"
    cache.atomic_write(path, lambda fh: fh.write(b"old"))

    def half(fh):
        fh.write(b"ne")
        raise OSError("disk full")
    with pytest.raises(OSError, match="disk full"):
        cache.atomic_write(path, half)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def _entry(tmp_path, data: bytes):
    final = tmp_path / "patches" / "k"
    with cache.building(final, {}) as tmp:
        (tmp / "patches_80.bin").write_bytes(data)
        (tmp / "index.csv").write_text("patient\nA\n")
    return final


def test_a_truncated_file_of_an_entry_is_named_and_the_entry_removed(tmp_path):
    final = _entry(tmp_path, bytes(range(256)) * 64)
    assert cache.damaged(final) == [] and cache.usable(final)
    path = final / "patches_80.bin"
    path.write_bytes(path.read_bytes()[:1000])
    assert cache.damaged(final)[0].startswith("patches_80.bin: 1000 bytes, expected 16384")
    with pytest.warns(UserWarning, match=r"damaged patch cache .*patches_80\.bin: 1000 bytes"):
        assert not cache.usable(final, "patch cache")
    assert not final.exists()


def test_same_size_garbage_is_caught_by_the_checksum(tmp_path):
    final = _entry(tmp_path, bytes(range(256)) * 64)
    path = final / "patches_80.bin"
    path.write_bytes(bytes(reversed(path.read_bytes())))  # same size, other content
    assert cache.damaged(final) == ["patches_80.bin: content differs from the checksum written at build "
                                    "(overwritten or corrupted)"]


def test_damaged_memo_file_is_named_and_computed_again(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"auc": 0.75, "folds": list(range(100))}
    assert cache.memo(tmp_path, "cv", {"a": 1}, compute) == compute()
    (path,) = (tmp_path / "cv").glob("*.pkl")
    path.write_bytes(path.read_bytes()[:-40])  # truncated
    with pytest.warns(UserWarning, match=re.escape(str(path))):
        assert cache.memo(tmp_path, "cv", {"a": 1}, compute) == {"auc": 0.75, "folds": list(range(100))}
    assert len(calls) == 3
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # same size, one byte changed: a pickle that may still load, with wrong numbers
    path.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="checksum"):
        cache.memo(tmp_path, "cv", {"a": 1}, compute)
    assert len(calls) == 4 and cache.memo(tmp_path, "cv", {"a": 1}, compute)["folds"][-1] == 99
