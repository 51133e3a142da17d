"""What every synthetic generator shares: seeded random streams, argument checks, integer shares, and the
manifest `cohort.json` that lets a generator recognise (and only then replace) its own earlier cohort."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...core.cache import file_digest

MANIFEST = "cohort.json"


def check_cohort_args(patients, seed, effect) -> None:
    """The arguments every synthetic cohort takes: clear errors naming the bad one."""
    if not isinstance(patients, (int, np.integer)) or patients < 1:
        raise ValueError(f"patients must be a positive integer, got {patients!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not np.isfinite(effect) or effect < 0:
        raise ValueError(f"effect must be a finite number >= 0, got {effect!r}")


def fault_list(faults, names: Sequence[str], patients: int, clean: int) -> list[str]:
    """The faults to inject: True (all of `names`), False/None (none), one name or distinct names; `clean` patients
    must stay without a fault."""
    if faults is True:
        chosen = list(names)
    elif faults is False or faults is None:
        chosen = []
    else:
        chosen = [faults] if isinstance(faults, str) else list(faults)
    unknown = [f for f in chosen if f not in names]
    if unknown:
        raise ValueError(f"unknown faults {unknown}; valid names: {list(names)}")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"each fault may be injected once, got {chosen}")
    if chosen and patients < len(chosen) + clean:
        raise ValueError(f"{len(chosen)} faults need more than {len(chosen) + clean - 1} patients ({clean} without "
                         f"a fault), got patients={patients}")
    return chosen


def stream(seed: int, *key: int) -> np.random.Generator:
    """An independent stream per (purpose, patient, ...): results do not depend on order or n_jobs."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def largest_remainder(weights: Sequence[float], total: int) -> list[int]:
    """Integer counts summing to `total` in the proportions of `weights` (Hamilton's method)."""
    w = np.asarray(weights, float)
    exact = w / w.sum() * total
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts.tolist()


def read_manifest(root: Path) -> dict:
    """The manifest of a cohort folder ({} when absent or unreadable)."""
    try:
        return json.loads((Path(root) / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def write_manifest(root: Path, manifest: dict) -> None:
    """cohort.json, written last (the staging folder it is in becomes the cohort atomically)."""
    (Path(root) / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def check_replaceable(out: Path, generator: str, image_suffix: str, table_names: Sequence[str],
                      empty_ok: bool = True) -> None:
    """Refuse (FileExistsError) to replace `out` unless it is absent, empty (if `empty_ok`), or an earlier cohort of
    `generator` holding only files it wrote: its tables unedited (checksums in cohort.json) and `image_suffix` files
    in the patient folders. A user's notes, annotations or edited tables are never deleted."""
    if not out.exists() or (empty_ok and out.is_dir() and not any(out.iterdir())):
        return
    manifest = read_manifest(out) if out.is_dir() else {}
    if not manifest or manifest.get("generator") != generator:
        raise FileExistsError(f"{out} exists and is not a synthetic cohort of {generator}; refusing to overwrite it")
    theirs = user_files(out, manifest, image_suffix, table_names)
    if theirs:
        shown = ", ".join(theirs[:5]) + (f" and {len(theirs) - 5} more" if len(theirs) > 5 else "")
        raise FileExistsError(f"{out} holds files the generator did not write ({shown}); refusing to replace it: "
                              f"move them elsewhere or choose another output folder")


def user_files(root: Path, manifest: dict, image_suffix: str, table_names: Sequence[str]) -> list[str]:
    """Files of a cohort folder its generator did not write, or tables edited since (by their checksums)."""
    tables = manifest.get("tables") or dict.fromkeys(table_names)  # older manifests: names only
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if not path.is_file() or rel == MANIFEST:
            continue
        if rel in tables:
            if tables[rel] is not None and file_digest(path) != tables[rel]:
                out.append(f"{rel} (edited)")
        elif "/" not in rel or path.suffix != image_suffix:  # images are only written into patient folders
            out.append(rel)
    return out


def table_checksums(root: Path, table_names: Sequence[str]) -> dict[str, str]:
    """SHA-256 of each table written (kept in cohort.json, so edits by a user are recognised)."""
    return {name: file_digest(root / name) for name in table_names if (root / name).is_file()}

