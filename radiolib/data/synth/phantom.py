"""The image model of the synthetic Duke cohort: a breast phantom (breasts, fibroglandular tissue, thorax, heart)
with its DCE signal, each lesion blended in with its kinetics, coil shading and Rician noise."""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from .common import stream
from .plan import Lesion, PatientSpec, box_by_number, breast_profile, kinetic, sigmoid
from .scanners import PHASE_MINUTES


def _smooth_noise(rng: np.random.Generator, shape, sigma) -> np.ndarray:
    """A smooth Gaussian random field with unit standard deviation (sigma in voxels per axis)."""
    f = gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="reflect")
    return f / max(float(f.std()), 1e-6)


def render(spec: PatientSpec, seed: int, lesion_mask: np.ndarray | None = None
           ) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """The five DCE phases as uint16 (5, Z, Y, X), Z in increasing patient z, and each lesion's 1-based inclusive
    box (rows, cols, slices), its slices counted by InstanceNumber (`box_by_number`) as in Annotation_Boxes.csv.
    `lesion_mask`, a (Z, Y, X) bool array, receives the lesions' true extent (no random draw: same images)."""
    rng = stream(seed, 2, spec.index)
    Z, R, C = spec.shape
    dz, dx = spec.protocol.slice_mm, spec.protocol.pixel_mm
    fov = spec.protocol.fov_cm * 10.0
    a = spec.anatomy
    z = ((np.arange(Z) - (Z - 1) / 2) * dz)[:, None, None]
    y = (-fov / 2 + dx / 2 + dx * np.arange(R))[None, :, None]
    x = (-fov / 2 + dx / 2 + dx * np.arange(C))[None, None, :]
    prof = breast_profile(z, a["half_length"])

    rho = np.full((Z, R, C), np.inf, np.float32)  # normalised radius in the nearest breast (<= 1 inside)
    for xc, hw, depth in a["breasts"]:
        r = np.sqrt(((x - xc) / (hw * prof)) ** 2 + ((y - a["chest_y"]) / (depth * prof)) ** 2)
        rho = np.minimum(rho, np.where(y <= a["chest_y"], r, np.inf))
    breast = rho <= 1.0
    thorax = ((x / (0.47 * fov)) ** 2 + ((y - a["chest_y"] - 0.35 * fov) / (0.37 * fov)) ** 2 <= 1.0) \
        & (y > a["chest_y"] - 2) & np.ones((Z, 1, 1), bool)
    inside = (x / (0.41 * fov)) ** 2 + ((y - a["chest_y"] - 0.35 * fov) / (0.31 * fov)) ** 2 <= 1.0
    muscle = thorax & (y < a["chest_y"] + 14)
    hx, hy, hrx, hry = a["heart"]
    heart = thorax & ~muscle & (((x - hx) / (hrx * prof)) ** 2 + ((y - hy) / (hry * prof)) ** 2 <= 1.0)
    lung = thorax & inside & ~muscle & ~heart
    body_fat = thorax & ~inside & ~muscle & ~heart

    # fibroglandular tissue: a smooth random field, denser centrally, thresholded at the patient's density
    score = _smooth_noise(rng, (Z, R, C), (5 / dz, 5 / dx, 5 / dx)) + 1.5 * (1 - np.minimum(rho, 1.0))
    thr = np.quantile(score[breast], 1 - a["fgt_density"]) if breast.any() else np.inf
    fgt = np.where(breast & (rho < 0.93), sigmoid((score - thr) / 0.15), 0.0)
    skin = breast & (rho >= 0.93)

    s0 = np.zeros((Z, R, C), np.float32)
    amp = np.zeros_like(s0)
    k_map = np.ones_like(s0)
    w_map = np.zeros_like(s0)
    for mask, tissue_s0, tissue_amp, k, w in ((body_fat, 85, 0.03, 0.5, 0.0), (lung, 25, 0.05, 1.0, 0.0),
                                             (muscle, 170, 0.25, 1.0, -0.1),
                                             (heart, 230, 2.2, 4.0, 0.35), (skin, 150, 0.1, 0.8, 0.0)):
        s0[mask], amp[mask], k_map[mask], w_map[mask] = tissue_s0, tissue_amp, k, w
    inner = breast & ~skin
    s0[inner] = (80 * (1 - fgt) + 290 * fgt)[inner]
    amp[inner] = (0.03 * (1 - fgt) + a["bpe"] * fgt)[inner]
    k_map[inner], w_map[inner] = 0.4, -0.4  # background parenchymal enhancement: slow and progressive
    s0 *= 1 + 0.05 * _smooth_noise(rng, (Z, R, C), (1.0, 1.0, 1.0))

    t = np.asarray(PHASE_MINUTES, np.float32)[:, None, None, None]
    signal = s0[None] * (1 + amp[None] * kinetic(t, k_map[None], w_map[None]))
    boxes = [_render_lesion(signal, les, spec, rng, lesion_mask) for les in spec.lesions]

    coil = a["gain"] * (0.8 + 0.35 * np.exp(-((y - a["chest_y"] + 60) / a["coil_falloff"]) ** 2)) \
        * (1 + a["coil_lr"] * x / (fov / 2))
    signal = signal * coil[None]
    n1 = rng.standard_normal(signal.shape, np.float32)
    n2 = rng.standard_normal(signal.shape, np.float32)
    signal = np.sqrt((signal + a["noise"] * n1) ** 2 + (a["noise"] * n2) ** 2)  # Rician magnitude noise
    return np.clip(np.rint(signal), 0, 4095).astype(np.uint16), [box_by_number(spec, b) for b in boxes]


def _render_lesion(signal: np.ndarray, les: Lesion, spec: PatientSpec, rng: np.random.Generator,
                   lesion_mask: np.ndarray | None = None) -> tuple[int, int, int, int, int, int]:
    """Blend one lesion into the DCE signal (in place) and return its padded bounding box, 1-based inclusive; its
    extent (where it outweighs the tissue, r_eff < 1) is added to `lesion_mask` when given."""
    _, Z, R, C = signal.shape
    spacing = np.array([spec.protocol.slice_mm, spec.protocol.pixel_mm, spec.protocol.pixel_mm])
    centre, radii = np.array(les.centre), np.array(les.radii_mm)
    half = np.ceil(1.5 * radii / spacing).astype(int) + 1
    lo = np.maximum(np.floor(centre).astype(int) - half, 0)
    hi = np.minimum(np.ceil(centre).astype(int) + half + 1, [Z, R, C])
    sub = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    grids = np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij")
    r_norm = np.sqrt(sum(((g - c) * s / r) ** 2 for g, c, s, r in zip(grids, centre, spacing, radii)))
    shape = r_norm.shape
    margin = np.clip(_smooth_noise(rng, shape, 1.0), -1.5, 1.5)
    r_eff = r_norm / (1 + les.irregularity * margin)
    weight = np.clip((1.0 - r_eff) / 0.25 + 0.5, 0.0, 1.0)
    mask = r_eff < 1.0
    mask[tuple(np.clip(np.rint(centre).astype(int) - lo, 0, np.array(shape) - 1))] = True
    if lesion_mask is not None:
        lesion_mask[sub] |= mask

    h1, h2 = _smooth_noise(rng, shape, 0.8), _smooth_noise(rng, shape, 0.8)
    s0 = 250 * (1 + 0.08 * h1)
    amp = les.peak * ((1 - les.rim) + les.rim * np.minimum(r_eff, 1.0) ** 2)  # rim: the core enhances less
    amp = amp * np.clip(1 + 0.6 * les.heterogeneity * h2, 0.05, None)
    k = les.wash_in * np.exp(0.3 * les.heterogeneity * h1)
    for p, t in enumerate(PHASE_MINUTES):
        lesion_signal = s0 * (1 + amp * kinetic(t, k, les.washout))
        signal[(p, *sub)] = (1 - weight) * signal[(p, *sub)] + weight * lesion_signal

    idx = np.argwhere(mask) + lo
    first = np.maximum(idx.min(0) - 1, 0) + 1  # pad one voxel, then to 1-based
    last = np.minimum(idx.max(0) + 1, [Z - 1, R - 1, C - 1]) + 1
    return int(first[1]), int(last[1]), int(first[2]), int(last[2]), int(first[0]), int(last[0])


