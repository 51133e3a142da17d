"""Patch geometry (Zhu et al. 2019, preprocessing): training patches per lesion region with 4 augmented copies, and
the 25 test patches per patient (5 consecutive slices with the largest lesion area x 4 corners + middle).

Patch sizes are given in the paper's pixels (80 to 120 px at 0.97 mm, its most frequent spacing) and converted to
the data's target spacing, so a patch always covers the same field in millimetres.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

PAPER_SPACING_MM = 340 / 350  # Signa HDx 3T, 34 cm FOV, 350 px: the paper's most frequent in-plane spacing
TEST_SLICES = 5
MAX_SHIFT = 0.1  # augmentation translation, as a fraction of the patch side (the paper gives no figure)
# The patches a patient is scored from (`test_patches`), by their role in the patch index: "largest", Zhu et al.'s 25
# test-layout patches on the 5 consecutive slices with the largest lesion area; "tumour", every tumour slice (one
# centred, unaugmented patch per lesion region and slice), as Buda et al. 2020 scored a patient from its tumour slices.
SCORING_ROLES = {"largest": "test", "tumour": "train"}


def patch_pixels(patch_size: int, spacing_mm: float) -> int:
    """Side in voxels of a patch of `patch_size` paper pixels on a grid of `spacing_mm`."""
    return max(8, int(round(patch_size * PAPER_SPACING_MM / spacing_mm)))


def _half_extent(px: int, angle_deg: float) -> float:
    a = np.deg2rad(angle_deg)
    return (px - 1) / 2 * (abs(np.cos(a)) + abs(np.sin(a)))


def clamp_centre(c: float, n: int, half: float) -> float:
    """Move a centre so that [c - half, c + half] lies inside 0..n-1 (centre of the axis if it cannot fit)."""
    if n - 1 < 2 * half:
        return (n - 1) / 2
    return float(np.clip(c, half, n - 1 - half))


def sample_patch(channels: np.ndarray, z: int, cy: float, cx: float, px: int, angle: float = 0.0) -> tuple:
    """Bilinear (C, px, px) patch of slice z centred at (cy, cx), rotated by `angle` degrees.

    The centre is moved inward if needed so that every sampled point lies inside the slice; returns
    (patch, cy_used, cx_used).
    """
    _, _, ny, nx = channels.shape
    half = _half_extent(px, angle)
    cy, cx = clamp_centre(cy, ny, half), clamp_centre(cx, nx, half)
    offs = np.arange(px) - (px - 1) / 2
    gy, gx = np.meshgrid(offs, offs, indexing="ij")
    a = np.deg2rad(angle)
    yy = cy + gy * np.cos(a) - gx * np.sin(a)
    xx = cx + gy * np.sin(a) + gx * np.cos(a)
    out = np.stack([ndimage.map_coordinates(channels[c, z], [yy, xx], order=1, mode="nearest")
                    for c in range(channels.shape[0])])
    return out.astype(np.float32), cy, cx


def training_layout(regions: pd.DataFrame, px_max: int, n_augment: int, rng: np.random.Generator) -> pd.DataFrame:
    """One original and `n_augment` randomly translated and rotated patch centres per lesion region."""
    rows = []
    for r in regions.itertuples(index=False):
        rows.append({"lesion": r.lesion, "slice": r.slice, "cy": r.cy, "cx": r.cx, "angle": 0.0, "role": "train"})
        for _ in range(n_augment):
            dy, dx = rng.uniform(-MAX_SHIFT, MAX_SHIFT, 2) * px_max
            rows.append({"lesion": r.lesion, "slice": r.slice, "cy": r.cy + dy, "cx": r.cx + dx,
                         "angle": float(rng.uniform(0, 360)), "role": "augmented"})
    return pd.DataFrame(rows, columns=["lesion", "slice", "cy", "cx", "angle", "role"])


def scoring_role(test_patches: str) -> str:
    """The patch-index role whose patches score a patient under `test_patches` (SCORING_ROLES)."""
    if test_patches not in SCORING_ROLES:
        raise ValueError(f"test_patches must be one of {list(SCORING_ROLES)}, got {test_patches!r}")
    return SCORING_ROLES[test_patches]


def test_slices(regions: pd.DataFrame, n_slices_volume: int, k: int = TEST_SLICES) -> list[int]:
    """The k consecutive slices with the largest total lesion area (ties: the window nearest the lesion centre)."""
    area = np.zeros(n_slices_volume)
    sizes = regions["area"] if "area" in regions else regions.h * regions.w  # a mask's area when known
    np.add.at(area, regions.slice.to_numpy(int), sizes.to_numpy(float))
    k = min(k, n_slices_volume)
    sums = np.convolve(area, np.ones(k), mode="valid")
    best = np.flatnonzero(sums >= sums.max() - 1e-9)
    centre = np.average(np.arange(n_slices_volume), weights=area) if area.sum() else n_slices_volume / 2
    start = int(best[np.argmin(np.abs(best + (k - 1) / 2 - centre))])
    return list(range(start, start + k))


def test_layout(regions: pd.DataFrame, n_slices_volume: int) -> pd.DataFrame:
    """25 test centres: on each of the 5 slices, the 4 corners and the middle of the largest lesion region there.

    A slice of the window without a lesion region (a lesion thinner than 5 slices) uses the nearest slice's region.
    """
    slices = test_slices(regions, n_slices_volume)
    if "area" not in regions:
        regions = regions.assign(area=regions.h * regions.w)
    biggest = (regions.sort_values(["slice", "area"], ascending=[True, False])
               .drop_duplicates("slice").set_index("slice"))
    rows = []
    for z in slices:
        nearest = biggest.index[np.argmin(np.abs(biggest.index - z))]
        r = biggest.loc[nearest]
        hy, hx = (r.h - 1) / 2, (r.w - 1) / 2
        spots = [("middle", 0, 0), ("top-left", -hy, -hx), ("top-right", -hy, hx),
                 ("bottom-left", hy, -hx), ("bottom-right", hy, hx)]
        for name, dy, dx in spots:
            rows.append({"lesion": int(r.lesion), "slice": z, "cy": r.cy + dy, "cx": r.cx + dx, "angle": 0.0,
                         "role": "test", "spot": name})
    return pd.DataFrame(rows)


def extract(channels: np.ndarray, layout: pd.DataFrame, px: int) -> np.ndarray:
    """Cut every patch of a layout: (N, C, px, px) float16 (memory: the demo cohort is ~30k patches per size)."""
    out = np.empty((len(layout), channels.shape[0], px, px), np.float16)
    for i, r in enumerate(layout.itertuples(index=False)):
        out[i] = sample_patch(channels, int(r.slice), r.cy, r.cx, px, r.angle)[0]
    return out


def normal_layout(regions: pd.DataFrame, shape_yx: tuple[int, int], px: int, n: int,
                  rng: np.random.Generator, tries: int = 200, inside: np.ndarray | None = None) -> pd.DataFrame:
    """Up to n normal-tissue centres on lesion slices, each patch clear of every lesion box on its slice.

    `inside`, a (Z, Y, X) boolean body mask, keeps centres on tissue (not in the air around the body).
    For the in-domain pretraining task (lesion vs normal tissue), which never uses the subtype labels.
    """
    ny, nx = shape_yx
    half = (px - 1) / 2
    if ny - 1 < 2 * half or nx - 1 < 2 * half or regions.empty:
        return pd.DataFrame(columns=["lesion", "slice", "cy", "cx", "angle", "role"])
    rows = []
    slices = regions.slice.to_numpy()
    for _ in range(tries):
        if len(rows) >= n:
            break
        z = int(rng.choice(slices))
        cy, cx = rng.uniform(half, ny - 1 - half), rng.uniform(half, nx - 1 - half)
        here = regions[regions.slice == z]
        clear = ((np.abs(here.cy - cy) > here.h / 2 + half) | (np.abs(here.cx - cx) > here.w / 2 + half)).all()
        if clear and (inside is None or inside[z, int(round(cy)), int(round(cx))]):
            rows.append({"lesion": 0, "slice": z, "cy": cy, "cx": cx, "angle": 0.0, "role": "normal"})
    return pd.DataFrame(rows, columns=["lesion", "slice", "cy", "cx", "angle", "role"])
