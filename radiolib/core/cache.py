"""Content-keyed caches written atomically, so an interrupted run never leaves a half entry that is reused, and the
package's one set of atomic-write helpers (a file: `atomic_write`, `atomic_write_bytes`, `atomic_write_text`; a
folder: `staging_dir`, `replace_dir`).

An entry is a folder `<root>/<kind>/<key>/` holding a `COMPLETE` marker (the manifest of what made it). It is built
in a temporary sibling folder and renamed into place only when complete; a folder without the marker is ignored.
At build, the size and SHA-256 of every file of the entry go to `CHECKSUMS.json`; `damaged()` checks them (sizes on
every call, contents once per process), so a truncated or overwritten file is named and rebuilt, never used.
Files are created with the mode a plain open() gives under the user's umask (not mkstemp's 0600).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import re
import secrets
import shutil
import socket
import time
import warnings
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import numpy as np

MARKER = "COMPLETE"
CHECKSUMS = "CHECKSUMS.json"
_CHUNK = 1 << 22
_VERIFIED: set[tuple] = set()  # (path, size, mtime_ns, digest) of files whose content was checked in this process


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
    tmp = _fresh_dir(final.parent, f".tmp-{final.name}-{_owner()}-")
    try:
        yield tmp
        atomic_write_text(tmp / CHECKSUMS, json.dumps(_checksums(tmp), indent=1, sort_keys=True))
        atomic_write_text(tmp / MARKER, json.dumps(meta or {}, indent=1, sort_keys=True, default=str))
        if is_complete(final):  # a concurrent build finished first: keep it
            shutil.rmtree(tmp)
            return
        replace_dir(tmp, final)  # a stale incomplete folder is replaced
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def staging_dir(final: Path) -> Iterator[Path]:
    """Yield a new empty folder beside `final` to fill; on success it replaces `final` (`replace_dir`).

    On an exception the folder is removed and `final` is untouched. The folder gets the umask's mode.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _fresh_dir(final.parent, f".tmp-{final.name}-{_owner()}-")
    try:
        yield tmp
        replace_dir(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_dir(tmp: Path, final: Path) -> None:
    """Move the finished folder `tmp` to its sibling `final`. An existing `final` is renamed away first and deleted
    only after the move, so `final` is the old folder or the new one, never a mix (and missing only between two
    renames)."""
    final = Path(final)
    if not final.exists():
        os.replace(tmp, final)
        return
    trash = _move_away(final)
    os.replace(tmp, final)
    shutil.rmtree(trash, ignore_errors=True)


_OWNED = re.compile(r"-pid(\d+)\.([0-9a-f]{8})-[0-9a-f]{8}$")  # a build folder's owner, as `_owner` names it
FOREIGN_STALE_S = 7 * 24 * 3600  # another machine's build folder counts as left behind after a week


def _host() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _owner() -> str:
    """The process building a folder, in the folder's name (pid and host), so that cleaning spares live builds."""
    return f"pid{os.getpid()}.{_host()}"


def _alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would end the process there: count it as alive (the folder stays)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _left_behind(p: Path) -> bool:
    """Whether a `.tmp-` folder is no build in progress: its owner (named in it) has ended, or it names none."""
    owned = _OWNED.search(p.name)
    if owned is None:  # a discarded entry, or a build folder of older code
        return True
    if owned.group(2) != _host():  # another machine sharing the cache: its process cannot be asked
        try:
            return time.time() - p.stat().st_mtime > FOREIGN_STALE_S
        except FileNotFoundError:
            return False
    return not _alive(int(owned.group(1)))


def clean_stale(parent: Path) -> int:
    """Remove temporary folders left by interrupted builds (never those of a build still running, in this process or
    another sharing the cache); return how many."""
    n = 0
    for p in Path(parent).glob(".tmp-*"):
        if _left_behind(p):
            shutil.rmtree(p, ignore_errors=True)
            n += 1
    return n


def _fresh(parent: Path, prefix: str, create) -> tuple[Any, Path]:
    """`create(path)` for a new unique `<parent>/<prefix><random>` (it raises FileExistsError if taken)."""
    while True:
        path = Path(parent) / f"{prefix}{secrets.token_hex(4)}"
        try:
            return create(path), path
        except FileExistsError:
            continue


def _fresh_dir(parent: Path, prefix: str) -> Path:
    """A new empty folder with the umask's mode (mkdtemp would give 0700)."""
    return _fresh(parent, prefix, lambda p: os.mkdir(p, 0o777))[1]


def _fresh_file(parent: Path, prefix: str) -> tuple[int, Path]:
    """A new empty file opened for writing, with the mode a plain open() gives under the umask (not 0600)."""
    return _fresh(parent, prefix, lambda p: os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


def atomic_write(path: Path, write: Callable[[BinaryIO], Any]) -> None:
    """Write a file so readers see either the old content or the new one, never a partial file: `write(fh)` fills
    a temporary binary file beside `path`, which then replaces `path`.

    The file gets the mode open() would give: an existing file's own mode, else 0666 minus the umask.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _fresh_file(path.parent, f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            with contextlib.suppress(FileNotFoundError):
                os.fchmod(fh.fileno(), path.stat().st_mode & 0o7777)
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """`data` written atomically (see `atomic_write`)."""
    atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    """`text` written atomically as UTF-8 (see `atomic_write`)."""
    atomic_write_bytes(path, text.encode())


def memo(cache_dir, kind: str, parts: dict, compute):
    """compute() once per key: the result is pickled under `<root>/<kind>/<key>.pkl` (atomically) and reused.

    This is what makes a re-run with the same parameters fast and an interrupted run resumable: every finished
    cross-validation is on disk, an unfinished one is simply computed again.
    A file is written as a header (magic, SHA-256 of the pickle) and the pickle; a file that is truncated, altered
    or unreadable is named in a warning and computed again.
    """
    path = cache_root(cache_dir) / kind / f"{key_of(**parts)}.pkl"
    if path.is_file():
        try:
            return _read_memo(path)
        except Exception as err:  # noqa: BLE001 - any damage means: compute it again
            warnings.warn(f"damaged cache file {path} ({type(err).__name__}: {err}); computing it again",
                          stacklevel=2)
    result = compute()
    payload = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    atomic_write_bytes(path, _MEMO_MAGIC + hashlib.sha256(payload).digest() + payload)
    return result


_MEMO_MAGIC = b"radiolib-memo-1\n"


def _read_memo(path: Path):
    """The object of a memo file, after checking its checksum (files of older versions: plain pickles)."""
    data = path.read_bytes()
    if not data.startswith(_MEMO_MAGIC):
        return pickle.loads(data)
    start = len(_MEMO_MAGIC)
    digest, payload = data[start:start + 32], data[start + 32:]
    if hashlib.sha256(payload).digest() != digest:
        raise ValueError("checksum mismatch (truncated or overwritten)")
    return pickle.loads(payload)


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, read in chunks (about 1.3 GB/s on one core)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _checksums(folder: Path) -> dict:
    """Size and SHA-256 of every file of an entry being built (the marker and this table excluded)."""
    out = {}
    for p in sorted(Path(folder).rglob("*")):
        name = p.relative_to(folder).as_posix()
        if p.is_file() and name not in (MARKER, CHECKSUMS):
            out[name] = {"size": p.stat().st_size, "sha256": file_digest(p)}
    return out


def damaged(path: Path) -> list[str]:
    """Problems of a complete entry, one per damaged file ("patches_80.npy: 12 bytes, expected 96"); [] if sound.

    Sizes are checked on every call, contents (SHA-256) once per process and file version. Entries built before
    checksums were written: the sizes of their .npy files are checked against their headers.
    """
    path = Path(path)
    table = path / CHECKSUMS
    if not table.is_file():
        return [p for f in sorted(path.glob("*.npy")) if (p := _npy_problem(f))]
    problems = []
    for name, want in json.loads(table.read_text()).items():
        problem = _file_problem(path / name, want)
        if problem:
            problems.append(f"{name}: {problem}")
    return problems


def _file_problem(file: Path, want: dict) -> str | None:
    if not file.is_file():
        return "missing"
    st = file.stat()
    if st.st_size != want["size"]:
        return f"{st.st_size} bytes, expected {want['size']} (truncated or overwritten)"
    stamp = (str(file), st.st_size, st.st_mtime_ns, st.st_ino, want["sha256"])
    if stamp not in _VERIFIED:
        if file_digest(file) != want["sha256"]:
            return "content differs from the checksum written at build (overwritten or corrupted)"
        _VERIFIED.add(stamp)
    return None


def _npy_problem(file: Path) -> str | None:
    """A size check of a .npy file against its own header (for entries without checksums)."""
    try:
        with open(file, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read = {(1, 0): np.lib.format.read_array_header_1_0,
                    (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            shape, _, dtype = read(fh) if read else np.lib.format._read_array_header(fh, version)
            expected = fh.tell() + int(np.prod(shape)) * dtype.itemsize
    except Exception as err:  # noqa: BLE001 - an unreadable header is damage too
        return f"{file.name}: unreadable header ({err})"
    size = file.stat().st_size
    return None if size == expected else f"{file.name}: {size} bytes, expected {expected} (truncated)"


def usable(path: Path, what: str = "cache entry") -> bool:
    """True if `path` is a complete, undamaged entry; a damaged one is named in a warning and removed."""
    path = Path(path)
    if not is_complete(path):
        return False
    problems = damaged(path)
    if not problems:
        return True
    warnings.warn(f"damaged {what} {path}: {'; '.join(problems)}; rebuilding it", stacklevel=2)
    discard(path)
    return False


def discard(path: Path) -> None:
    """Remove an entry: renamed away first (never half-removed under its own name), then deleted."""
    shutil.rmtree(_move_away(Path(path)), ignore_errors=True)


def _move_away(path: Path) -> Path:
    """Rename a folder into a new temporary sibling (a `.tmp-` name, never read) and return that sibling."""
    trash = _fresh_dir(path.parent, f".tmp-{path.name}-discarded-")
    os.replace(path, trash / "entry")
    return trash
