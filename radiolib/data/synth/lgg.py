"""A synthetic cohort in the layout of the public "lgg-mri-segmentation" release (Buda et al. 2020).

Writes `out/kaggle_3m/`: data.csv (the real columns, plausible codes), one folder per fake patient of
3-channel uint8 TIFF slices (pre-contrast, FLAIR, post-contrast) with FLAIR tumour masks, a ground-truth sidecar
and the manifest `cohort.json`. A head-shaped phantom holds one tumour, FLAIR hyperintense; its post-contrast
enhancement pattern depends on the genomic subtype (COCCluster 2: rim enhancement, 3: patchy, 1: none beyond the
shared diffuse enhancement), scaled by `effect` (0 = no link). Same arguments, same bytes.
"""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile

from ...core.cache import staging_dir
from ...core.frontend import tqdm
from .common import (
    check_cohort_args,
    check_replaceable,
    fault_list,
    largest_remainder,
    read_manifest,
    stream,
    table_checksums,
    write_manifest,
)

GENERATOR = "radiolib.synth_lgg"
VERSION = "1.0"  # bump whenever the written bytes change, so cached patch sets are not reused
TABLE_NAMES = ("data.csv", "synthetic_truth.csv")  # what _write_cohort writes beside cohort.json
FAULTS = ("missing_label", "empty_mask", "unreadable_tiff")
COC_SHARE = {1: 0.30, 2: 0.45, 3: 0.25}  # roughly TCGA-LGG's IDH-mut codeleted / IDH-mut / IDH-wild-type split
SITES = ("ZA", "ZB", "ZC", "ZD", "ZE")  # fake tissue-source-site codes (no real TCGA-LGG site)
COLUMNS = ["Patient", "RNASeqCluster", "MethylationCluster", "miRNACluster", "CNCluster", "RPPACluster",
           "OncosignCluster", "COCCluster", "histological_type", "neoplasm_histologic_grade", "tumor_tissue_site",
           "laterality", "tumor_location", "gender", "age_at_initial_pathologic", "race", "ethnicity", "death01"]


def synthesize_lgg(out: str | Path, patients: int = 30, seed: int = 0, effect: float = 1.5,
                   faults: bool | list[str] = False, progress: bool = False, size: int = 256) -> Path:
    """Write the cohort into `out/kaggle_3m` (atomically; reused when already complete) and return that folder.

    `faults=True` (or a list of FAULTS names) gives one patient each a blank COCCluster, an empty mask, a
    truncated TIFF slice; `size` is the image side in pixels (256 as in the release; smaller for quick tests).
    """
    fault_list = _check_args(patients, seed, effect, faults, size)
    params = {"patients": patients, "seed": seed, "effect": float(effect), "faults": fault_list, "size": size}
    root = Path(out) / "kaggle_3m"
    manifest = read_manifest(root)
    if manifest.get("parameters") == params and manifest.get("version") == VERSION:
        return root
    check_replaceable(root, GENERATOR, ".tif", TABLE_NAMES, empty_ok=False)
    with staging_dir(root) as tmp:  # replaces an earlier cohort only once this one is complete
        _write_cohort(tmp, params, progress)
    return root


def _check_args(patients, seed, effect, faults, size) -> list[str]:
    check_cohort_args(patients, seed, effect)
    if not isinstance(size, (int, np.integer)) or not 64 <= size <= 512:
        raise ValueError(f"size must be an integer between 64 and 512 pixels, got {size!r}")
    return fault_list(faults, FAULTS, patients, clean=2)


# ----------------------------------------------------------------------------------------------------------------
# The cohort plan: identities, subtypes, faults, clinical codes


def _plan(patients: int, seed: int, faults: list[str]) -> pd.DataFrame:
    """One row per patient: id, folder, COCCluster, fault (the last patients carry the faults)."""
    rng = stream(seed, 0)
    coc = rng.permutation(np.repeat(list(COC_SHARE), largest_remainder(list(COC_SHARE.values()), patients)))
    numbers = rng.choice(np.arange(1000, 10000), patients, replace=False)
    sites = rng.choice(SITES, patients)
    days = rng.integers(0, 6 * 365, patients)
    ids = [f"TCGA_{s}_{n:04d}" for s, n in zip(sites, numbers, strict=True)]
    dates = [(date(1995, 1, 1) + timedelta(days=int(d))).strftime("%Y%m%d") for d in days]
    fault = [""] * (patients - len(faults)) + list(faults)
    return pd.DataFrame({"patient": ids, "folder": [f"{i}_{d}" for i, d in zip(ids, dates, strict=True)], "coc": coc,
                         "fault": fault})


def _clinical(plan: pd.DataFrame, seed: int) -> pd.DataFrame:
    """data.csv: cluster codes that agree with COCCluster more often than chance, clinical codes, some blanks."""
    rows = [_clinical_row(p, stream(seed, 2, i)) for i, p in enumerate(plan.itertuples())]
    return pd.DataFrame(rows, columns=COLUMNS).astype({c: "Int64" for c in COLUMNS[1:]})


def _clinical_row(p, rng: np.random.Generator) -> dict:
    def near(k: int, n: int) -> int:  # a code in 1..n that mostly equals k
        return int(np.clip(k + rng.choice([-1, 0, 0, 0, 1]), 1, n))

    def code(n: int, blank: float = 0.0):  # a code in 1..n, missing with probability `blank`
        value = int(rng.integers(1, n + 1))
        return pd.NA if rng.random() < blank else value

    return {"Patient": p.patient, "RNASeqCluster": near(p.coc, 4), "MethylationCluster": near(p.coc + 1, 5),
            "miRNACluster": code(4), "CNCluster": near(p.coc, 3), "RPPACluster": code(4, 0.15),
            "OncosignCluster": near(p.coc, 4), "COCCluster": pd.NA if p.fault == "missing_label" else int(p.coc),
            "histological_type": code(3), "neoplasm_histologic_grade": code(2), "tumor_tissue_site": 1,
            "laterality": code(3), "tumor_location": code(6), "gender": code(2),
            "age_at_initial_pathologic": int(rng.integers(20, 76)), "race": code(3, 0.05),
            "ethnicity": code(2, 0.3), "death01": int(rng.random() < 0.3)}


# ----------------------------------------------------------------------------------------------------------------
# Rendering: a head phantom with one tumour


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int, int], cell: int) -> np.ndarray:
    """float32 noise of about unit amplitude varying over `cell` pixels in-plane (bilinear upsampling of a grid)."""
    z, ny, nx = shape
    coarse = rng.standard_normal((z, ny // cell + 2, nx // cell + 2)).astype(np.float32)
    rows = coarse @ _linear_weights(nx, coarse.shape[2]).T  # (z, gy, nx)
    return np.ascontiguousarray(np.tensordot(rows, _linear_weights(ny, coarse.shape[1]), ([1], [1])).swapaxes(1, 2))


def _linear_weights(n: int, m: int) -> np.ndarray:
    """(n, m) matrix that linearly interpolates m grid values onto n points spanning the same interval."""
    pos = np.linspace(0, m - 1, n)
    lo = np.minimum(pos.astype(int), m - 2)
    w = np.zeros((n, m), np.float32)
    w[np.arange(n), lo] = 1 - (pos - lo)
    w[np.arange(n), lo + 1] = pos - lo
    return w


def _render(coc: int, effect: float, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """(Z, S, S, 3) uint8 slices (pre, FLAIR, post), (Z, S, S) bool tumour mask and the drawn parameters."""
    z_n = int(rng.integers(20, 41))
    zz = np.arange(z_n, dtype=np.float32)[:, None, None]
    yy = np.arange(size, dtype=np.float32)[None, :, None]
    xx = np.arange(size, dtype=np.float32)[None, None, :]
    # head: an ellipsoid, longer front to back, whose section shrinks towards the first and last slices
    cy, cx = (size / 2 + rng.normal(0, 0.02 * size, 2)).tolist()  # Python floats keep the arrays float32
    ay, ax = rng.uniform(0.36, 0.41) * size, rng.uniform(0.29, 0.33) * size
    section = np.sqrt(np.clip(1 - ((zz - 0.45 * z_n) / (0.62 * z_n)) ** 2, 0.05, 1))
    r2 = ((yy - cy) / (ay * section)) ** 2 + ((xx - cx) / (ax * section)) ** 2
    vent = ((((yy - cy + 0.03 * size) / (0.11 * size)) ** 2 + ((np.abs(xx - cx) - 0.05 * size) / (0.025 * size)) ** 2)
            < 1) & (np.abs(zz - 0.5 * z_n) < 0.2 * z_n)
    tissue = (r2 < 1).astype(np.uint8) + (r2 < 0.88 ** 2) + ((r2 < 0.88 ** 2) & vent)  # 0 air 1 scalp 2 brain 3 CSF
    texture = 0.05 * _smooth_noise(rng, tissue.shape, 8) + 0.07 * (rng.random(tissue.shape, np.float32) - 0.5)

    # tumour: an irregular ellipsoid inside the brain, drawn in its bounding box only
    angle, offset = rng.uniform(0, 2 * np.pi), rng.uniform(0.15, 0.5)
    tz = rng.uniform(0.35, 0.6) * z_n
    ty, tx = cy + offset * 0.8 * ay * np.sin(angle), cx + offset * 0.8 * ax * np.cos(angle)
    ry, rx = (rng.uniform(0.06, 0.13, 2) * size).tolist()
    rz = rng.uniform(2.5, 6.0)
    box = tuple(slice(max(0, int(c - 1.3 * h)), min(n, int(c + 1.3 * h) + 2))
                for c, h, n in ((tz, rz, z_n), (ty, ry, size), (tx, rx, size)))
    d = np.sqrt(((zz[box[0]] - tz) / rz) ** 2 + ((yy[:, box[1]] - ty) / ry) ** 2 + ((xx[..., box[2]] - tx) / rx) ** 2)
    d = d + 0.12 * _smooth_noise(rng, d.shape, 16)
    inside = (d < 1) & (tissue[box] >= 2)
    tissue[box][inside] = 2  # the tumour displaces the ventricles

    # subtype-dependent post-contrast pattern (amplitudes scaled by effect), diffuse part shared by all subtypes
    diffuse = rng.uniform(0.0, 0.15)
    rim_amp = effect * 0.10 * rng.uniform(0.4, 1.6) * (coc == 2)
    patch_amp = effect * 0.08 * rng.uniform(0.4, 1.6) * (coc == 3)
    rim = np.exp(-(((d - 0.8) / 0.12) ** 2))
    patchy = np.clip(_smooth_noise(rng, d.shape, 6), 0, None)
    change = (-0.12, 0.38 - 0.1 * np.clip(d, 0, 1), diffuse + rim_amp * rim + patch_amp * patchy)  # pre, FLAIR, post

    gains = rng.uniform(0.85, 1.15, 3).tolist()
    levels = np.array([[0, 0.75, 0.45, 0.15], [0, 0.35, 0.40, 0.08], [0, 0.80, 0.47, 0.17]], np.float32)  # by tissue
    head = tissue > 0
    out = np.empty(tissue.shape + (3,), np.uint8)
    for c in range(3):
        v = levels[c][tissue] + texture
        v[box] += inside * change[c]
        out[..., c] = np.round(np.clip(v * gains[c], 1 / 255, 1) * head * 255)
    tumour = np.zeros(tissue.shape, bool)
    tumour[box] = inside
    truth = {"slices": z_n, "tumour_voxels": int(tumour.sum()), "diffuse": round(float(diffuse), 4),
             "rim": round(float(rim_amp), 4), "patchy": round(float(patch_amp), 4)}
    return out, tumour, truth


# ----------------------------------------------------------------------------------------------------------------
# Writing


def _write_patient(folder: Path, slices: np.ndarray, mask: np.ndarray, fault: str) -> dict:
    """The TIFF pair of every slice (k = 1..Z); applies an image fault; returns the fault's details."""
    folder.mkdir()
    if fault == "empty_mask":
        mask = np.zeros_like(mask)
    for k in range(1, len(slices) + 1):
        tifffile.imwrite(folder / f"{folder.name}_{k}.tif", slices[k - 1], photometric="rgb", metadata=None)
        tifffile.imwrite(folder / f"{folder.name}_{k}_mask.tif", mask[k - 1].astype(np.uint8) * 255,
                         photometric="minisblack", metadata=None)
    if fault == "unreadable_tiff":  # a partial download: the slice with the most tumour, cut in half
        k = int(np.argmax(mask.sum(axis=(1, 2)))) + 1
        path = folder / f"{folder.name}_{k}.tif"
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        return {"file": path.name}
    return {}


def _write_cohort(root: Path, params: dict, progress: bool) -> None:
    seed, effect = params["seed"], params["effect"]
    plan = _plan(params["patients"], seed, params["faults"])
    truth, details = [], {}
    for i, p in enumerate(tqdm(list(plan.itertuples()), desc="synthesising LGG patients", disable=not progress)):
        slices, mask, t = _render(int(p.coc), effect, stream(seed, 1, i), params["size"])
        detail = _write_patient(root / p.folder, slices, mask, p.fault)
        if p.fault:
            details[p.patient] = {"fault": p.fault, **detail}
        truth.append({"patient": p.patient, "folder": p.folder, "coc_cluster": int(p.coc), "fault": p.fault, **t})
    _clinical(plan, seed).to_csv(root / "data.csv", index=False, lineterminator="\n")
    pd.DataFrame(truth).to_csv(root / "synthetic_truth.csv", index=False, lineterminator="\n")
    manifest = {"generator": GENERATOR, "version": VERSION, "parameters": params,
                "patients": params["patients"], "seed": seed, "effect": effect,
                "faults": {pat: d["fault"] for pat, d in details.items()}, "fault_details": details,
                "pixel_spacing_mm": "none (the release has none; radiolib.data.lgg uses a nominal 1.0 mm)",
                "channels": ["pre-contrast", "FLAIR", "post-contrast"], "coc_share": COC_SHARE,
                "tables": table_checksums(root, TABLE_NAMES)}
    write_manifest(root, manifest)
