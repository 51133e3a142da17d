"""Atomic caches: an interrupted build is never reused."""
import json

import pytest

from radiolib import cache


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
