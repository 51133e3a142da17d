"""Content-keyed caches written atomically, so an interrupted run never leaves a half entry that is reused.

An entry is a folder `<root>/<kind>/<key>/` holding a `COMPLETE` marker (the manifest of what made it). It is built
in a temporary sibling folder and renamed into place only when complete; a folder without the marker is ignored.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

MARKER = "COMPLETE"


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache folder: the argument, else $RADIOLIB_CACHE, else ~/.cache/radiolib."""
    root = cache_dir or os.environ.get("RADIOLIB_CACHE") or Path.home() / ".cache" / "radiolib"
    return Path(root).expanduser()


def key_of(**parts: Any) -> str:
    """A short stable hash of JSON-able parts (order of keyword arguments does not matter)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def is_complete(path: Path) -> bool:
    return (Path(path) / MARKER).is_file()


def manifest(path: Path) -> dict:
    return json.loads((Path(path) / MARKER).read_text())


@contextlib.contextmanager
def building(final: Path, meta: dict | None = None) -> Iterator[Path]:
    """Yield a temporary folder to fill; on success mark it complete and move it to `final`.

    On an exception (or a kill) the temporary folder is removed or left behind under a `.tmp-` name that is never
    read; `final` is untouched.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    try:
        yield tmp
        atomic_write_text(tmp / MARKER, json.dumps(meta or {}, indent=1, sort_keys=True, default=str))
        if final.exists():  # a concurrent or stale build: replace it only if it is not complete
            if is_complete(final):
                shutil.rmtree(tmp)
                return
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def clean_stale(parent: Path) -> int:
    """Remove temporary folders left by interrupted builds; return how many."""
    n = 0
    for p in Path(parent).glob(".tmp-*"):
        shutil.rmtree(p, ignore_errors=True)
        n += 1
    return n


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so readers see either the old content or the new one, never a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def memo(cache_dir, kind: str, parts: dict, compute):
    """compute() once per key: the result is pickled under `<root>/<kind>/<key>.pkl` (atomically) and reused.

    This is what makes a re-run with the same parameters fast and an interrupted run resumable: every finished
    cross-validation is on disk, an unfinished one is simply computed again.
    """
    import pickle
    path = cache_root(cache_dir) / kind / f"{key_of(**parts)}.pkl"
    if path.is_file():
        with open(path, "rb") as fh:
            return pickle.load(fh)
    result = compute()
    atomic_write_bytes(path, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    return result
