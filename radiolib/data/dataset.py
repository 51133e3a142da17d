"""The patch set on disk: every patient's training and test patches for each patch size, with an index table.

Built once per (data, parameters) under the cache and reused by every later notebook; rebuilt when absent, so each
notebook also runs on its own. Written atomically (see `cache.building`).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from ..core import cache
from ..core.frontend import tqdm
from .cohort import load_cohort
from .descriptor import Descriptor, label_revision
from .figshare import is_figshare_layout
from .figshare import load_cohort as load_figshare
from .imaging import UnreadableSeries, unreadable_reason
from .lgg import is_lgg_layout
from .lgg import load_cohort as load_lgg
from .patches import extract, normal_layout, patch_pixels, test_layout, training_layout
from .source import DataSource

VERSION = 5  # bump when patch geometry changes, so old caches are not reused (4: box slices by InstanceNumber,
#              5: the target's descriptor in the meta)
MAX_NORMAL = 20  # normal-tissue patches per patient, for the label-free in-domain pretraining task


@dataclass
class PatchSet:
    """Index (one row per patch, same rows for every size), arrays per paper patch size, QC and cohort tables.

    Roles: `train` (one per lesion region), `augmented` (4 per region), `test` (25 per patient), `normal`
    (normal tissue, used only by the label-free pretraining task).
    """

    path: Path
    index: pd.DataFrame
    table: pd.DataFrame
    qc: pd.DataFrame
    meta: dict

    def patches(self, patch_size: int) -> np.ndarray:
        """(N, C, px, px) float16, memory-mapped, C the source's channels (3 for Duke and LGG, 1 for Figshare); row i
        belongs to index row i."""
        return np.load(self.path / f"patches_{patch_size}.npy", mmap_mode="r")

    @property
    def fingerprint(self) -> str:
        """The identity of the data folder the patches were cut from (see `data_identity`)."""
        return self.meta.get("data_fingerprint") or self.path.name

    @property
    def patients(self) -> pd.DataFrame:
        return self.table[["patient", "label"]]

    @property
    def descriptor(self) -> Descriptor:
        """What `label` means: class names, target definition, channels, the reference paper (descriptor.py)."""
        return Descriptor.from_dict(self.meta["descriptor"])

    def counts(self) -> dict:
        by_role = self.index.role.value_counts().to_dict()
        return {"patients": int(len(self.table)), "patches_per_size": int(len(self.index)),
                **{f"{k}_patches": int(v) for k, v in sorted(by_role.items())}}


TABLE_SUFFIXES = (".csv", ".tsv", ".xlsx", ".xls", ".json")  # read by the loaders: hashed byte for byte
TABLE_MAX_BYTES = 64 << 20


def _data_entries(root: Path) -> list[tuple]:
    """(relative path, size, SHA-256 of a table or None, mtime_ns) of every file of a data folder, sorted."""
    root = Path(root)
    entries = []
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            path = os.path.join(dirpath, f)
            st = os.stat(path)
            table = f.lower().endswith(TABLE_SUFFIXES) and st.st_size <= TABLE_MAX_BYTES
            entries.append((os.path.relpath(path, root), st.st_size,
                            cache.file_digest(Path(path)) if table else None, st.st_mtime_ns))
    return entries


def fingerprint(root: Path, entries: list[tuple] | None = None) -> str:
    """The cache key of a data folder, on what the loader reads (a synthetic cohort's manifest alone is not enough).

    Tables (Annotation_Boxes.csv, the clinical sheet, data.csv, ...): their bytes (SHA-256); every other file
    (DICOM, TIFF): its relative path, size and modification time. Reading the tables is cheap; hashing every image
    is not (a Duke download is ~370 GB), and an edited or replaced image changes its size or mtime.
    """
    entries = _data_entries(root) if entries is None else entries
    return cache.key_of(files=[(name, size, digest or mtime) for name, size, digest, mtime in entries])


def data_identity(entries: list[tuple]) -> str:
    """What results files record of their data: the fingerprint without modification times, so the same cohort
    regenerated (or copied) elsewhere gives the same identity and results files stay byte-identical."""
    return cache.key_of(files=[(name, size, digest) for name, size, digest, _ in entries])


def open_cohort(data_dir: Path, target: str | None = None, progress: bool = True) -> DataSource:
    """The data source of a folder, by its layout: lgg-mri-segmentation, the Figshare brain tumour cohort or
    Duke-Breast-Cancer-MRI; `target` as descriptor.py describes (None: luminal_like for Duke, COCCluster==2 for LGG,
    tumour_type==glioma for Figshare). Its `descriptor` names the classes. The patch set is built from the
    `DataSource` members alone (source.py)."""
    if is_lgg_layout(data_dir):
        return load_lgg(data_dir, **({"target": target} if target else {}), progress=progress)
    if is_figshare_layout(data_dir):
        return load_figshare(data_dir, target=target, progress=progress)
    return load_cohort(data_dir, progress=progress, target=target)


def _patient_patches(cohort: DataSource, patient: str, target: float, sizes, n_augment: int, seed: int):
    try:
        vol = cohort.volume(patient, target)
    except UnreadableSeries as err:
        return patient, getattr(err, "reason", None) or unreadable_reason(err), None, None
    rng = np.random.default_rng([seed, int(cache.key_of(patient=patient), 16)])
    pxs = {s: patch_pixels(s, target) for s in sizes}
    n_normal = min(len(vol.regions), MAX_NORMAL)
    layout = pd.concat([training_layout(vol.regions, max(pxs.values()), n_augment, rng),
                        test_layout(vol.regions, vol.channels.shape[1]),
                        normal_layout(vol.regions, vol.channels.shape[2:], max(pxs.values()), n_normal, rng,
                                      inside=vol.body if vol.body is not None else vol.channels.any(0))],
                       ignore_index=True)
    layout.insert(0, "patient", patient)
    arrays = {s: extract(vol.channels, layout, px) for s, px in pxs.items()}
    return patient, None, layout, arrays


def build_patch_set(data_dir: str | Path, patch_sizes=(80, 120), n_augment: int = 4, seed: int = 0,
                    cache_dir=None, n_jobs: int = 1, progress: bool = True, target: str | None = None) -> PatchSet:
    """Cohort scan + preprocessing + patches for every included patient, cached; returns the PatchSet."""
    data_dir = Path(data_dir)
    sizes = sorted(int(s) for s in patch_sizes)
    entries = _data_entries(data_dir)
    data_key = data_identity(entries)
    key = cache.key_of(data=fingerprint(data_dir, entries), sizes=sizes, n_augment=n_augment, seed=seed, target=target,
                       version=VERSION, **label_revision(target))
    final = cache.cache_root(cache_dir) / "patches" / key
    if not cache.usable(final, "patch cache"):  # absent, incomplete, or damaged (named in a warning, removed)
        cache.clean_stale(final.parent) if final.parent.exists() else None
        _build(final, data_dir, sizes, n_augment, seed, n_jobs, progress, target, data_key)
    return open_patch_set(final)


def _build(final: Path, data_dir: Path, sizes, n_augment, seed, n_jobs, progress, target, data_key) -> None:
    cohort = open_cohort(data_dir, target=target, progress=progress)
    target = cohort.target_spacing
    jobs = (delayed(_patient_patches)(cohort, p, target, sizes, n_augment, seed) for p in cohort.table.patient)
    results = Parallel(n_jobs=n_jobs, return_as="generator")(jobs)
    layouts, arrays = [], {s: [] for s in sizes}
    for patient, reason, layout, arr in tqdm(results, total=len(cohort.table), desc="preprocessing patients",
                                             disable=not progress):
        if reason:
            cohort.exclude(patient, reason)
            continue
        layouts.append(layout)
        for s in sizes:
            arrays[s].append(arr[s])
    index = pd.concat(layouts, ignore_index=True)
    index = index.merge(cohort.table[["patient", "label"]], on="patient", how="left")
    meta = {"target_spacing_mm": target, "patch_sizes": sizes, "data_fingerprint": data_key,
            "patch_pixels": {str(s): patch_pixels(s, target) for s in sizes},
            "n_augment": n_augment, "seed": seed, "version": VERSION, "descriptor": cohort.descriptor.to_dict()}
    with cache.building(final, meta) as tmp:
        for s in sizes:
            np.save(tmp / f"patches_{s}.npy", np.concatenate(arrays[s]))
        index.to_csv(tmp / "index.csv", index=False)
        cohort.table.to_csv(tmp / "cohort.csv", index=False)
        cohort.qc.to_csv(tmp / "qc.csv", index=False)
        cohort.boxes.to_csv(tmp / "boxes.csv", index=False)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))


def open_patch_set(path: Path) -> PatchSet:
    path = Path(path)
    if not cache.is_complete(path):
        raise FileNotFoundError(f"incomplete or missing patch cache {path.name}")
    return PatchSet(path=path, index=pd.read_csv(path / "index.csv"), table=pd.read_csv(path / "cohort.csv"),
                    qc=pd.read_csv(path / "qc.csv").fillna(""), meta=json.loads((path / "meta.json").read_text()))
