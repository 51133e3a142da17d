"""A synthetic brain tumour cohort in the layouts of the Figshare dataset of Cheng et al. (doi 10.6084/m9.figshare.
1512427): contrast-enhanced T1 slices of gliomas, meningiomas and pituitary tumours, for the glioma study's
external pretraining source.

`layout="mat"`: the official release, MATLAB v7.3 files `<n>.mat` (HDF5 behind a 512-byte userblock that starts
"MATLAB 7.3 MAT-file") in folders brainTumorDataPublic_<a>-<b>/, each a struct `cjdata`: `image` int16, `label`
double 1 meningioma / 2 glioma / 3 pituitary, `PID` (a MATLAB char row), `tumorBorder` ([x1, y1, x2, y2, ...],
1-based, x = column) and `tumorMask`; every matrix stored as MATLAB stores it, column-major (so HDF5 holds its
transpose); plus cvind.mat (fold indices, no cjdata). `layout="jpeg"`: the public derivative, class folders `0`
pituitary, `1` meningioma, `2` glioma of 8-bit `<n>.jpg` slices with `<n>.txt` YOLO lines (`label x_center
y_center width height`, fractions of the side, 2 decimals, no newline), no patient ids.

Fake patient ids only. Each patient has 3-8 slices through one tumour, tumour types in the real slice proportions.
A head phantom with the T1 post-contrast look: meningioma against the brain's edge, homogeneous and bright; pituitary
small, central and anterior (the sella); glioma inside the brain. `signal=True`: the glioma enhances as a rim around
a darker centre, drawn as the synthetic LGG cohort draws COCCluster 2's rim (`synth.lgg`: the same profile in
units of the tumour radius and the same amplitude at its default effect), so that a network pretrained to tell the
tumour types apart learns the pattern that marks COCCluster 2 there; `signal=False`: no type has a rim (they differ
by place, size and homogeneous brightness). Same arguments, same bytes.

`planted=True` is a test device, not the release's look: every type drawn with one place and size law and told
apart only as the synthetic LGG cohort tells its subtypes apart (`signal=True`: glioma the COCCluster 2 rim,
pituitary the COCCluster 3 patches, meningioma diffuse enhancement only, at PLANTED_GAIN times the LGG cohort's
default amplitudes, so that the source task is learned), or only by size (`signal=False`: one diffuse enhancement
for all). A network pretrained on the first has learned what marks the LGG subtypes; on the second, nothing of it.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from PIL import Image

from ...core.cache import staging_dir
from ...core.frontend import tqdm
from .common import (
    check_cohort_args,
    check_replaceable,
    largest_remainder,
    read_manifest,
    stream,
    table_checksums,
    user_files,
    write_manifest,
)
from .lgg import _smooth_noise

GENERATOR = "radiolib.synth_figshare"
VERSION = "1.0"  # bump whenever the written bytes change, so cached patch sets are not reused
LAYOUTS = ("mat", "jpeg")
TABLE_NAMES = ("cvind.mat", "synthetic_truth.csv")
SLICE_SHARE = {"glioma": 1426, "meningioma": 708, "pituitary": 930}  # slices of each type in the release
OFFICIAL_LABEL = {"meningioma": 1, "glioma": 2, "pituitary": 3}  # cjdata.label
CLASS_FOLDER = {"pituitary": "0", "meningioma": "1", "glioma": "2"}  # the JPEG derivative's folders
SPACING_MM = 0.49  # at 512 x 512 (Cheng et al. 2015); a smaller `size` keeps the field of view
SLICE_GAP_MM = 7.0  # 6 mm slices, 1 mm gap
FILES_PER_FOLDER = 766  # brainTumorDataPublic_1-766, 767-1532, ...
LGG_RIM_AMPLITUDE = 0.15  # synth.lgg's COCCluster 2 rim at its default effect 1.5 (1.5 x 0.10), times U(0.4, 1.6)
LGG_PATCH_AMPLITUDE = 0.12  # synth.lgg's COCCluster 3 patches at its default effect (1.5 x 0.08), times U(0.4, 1.6)
PLANTED_GAIN = 2.0  # planted=True: the LGG patterns at twice their default amplitude in the source
PLANTED_RADIUS_MM = {"glioma": (22, 30), "meningioma": (14, 20), "pituitary": (6, 12)}  # planted, signal=False
# Post-contrast T1 levels by tissue: air, scalp and fat, skull, brain, CSF
LEVELS = np.array([0.0, 0.80, 0.10, 0.45, 0.15], np.float32)
MATLAB_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: synthetic (radiolib) HDF5 schema 1.00 ."


def synthesize_figshare(out: str | Path, patients: int = 12, seed: int = 0, signal: bool = True,
                        layout: str = "mat", size: int = 512, progress: bool = False, planted: bool = False) -> Path:
    """Write the cohort into `out/figshare-<layout>` (atomically; reused when already complete) and return that
    folder. `size` is the image side (512 as in the release; smaller for quick tests, same field of view);
    `planted`: the types differ only by the LGG subtypes' patterns (or only by size), see the module."""
    check_cohort_args(patients, seed, 0.0)
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if not isinstance(size, (int, np.integer)) or not 64 <= size <= 512:
        raise ValueError(f"size must be an integer between 64 and 512 pixels, got {size!r}")
    params = {"patients": patients, "seed": seed, "signal": bool(signal), "layout": layout, "size": int(size)}
    if planted:  # only then, so that the release-look cohorts keep their manifests (and the caches built on them)
        params["planted"] = True
    root = Path(out) / f"figshare-{layout}"
    manifest = read_manifest(root)
    if manifest.get("parameters") == params and manifest.get("version") == VERSION:
        return root
    _check_replaceable(root, layout)
    with staging_dir(root) as tmp:  # replaces an earlier cohort only once this one is complete
        _write_cohort(tmp, params, progress)
    return root


def _check_replaceable(root: Path, layout: str) -> None:
    """Refuse to replace `root` unless it is absent or an earlier cohort of this generator holding only its files
    (the JPEG layout's .txt box files count as its images, like the .jpg beside them)."""
    if layout == "mat" or not root.exists() or read_manifest(root).get("generator") != GENERATOR:
        check_replaceable(root, GENERATOR, ".mat" if layout == "mat" else ".jpg", TABLE_NAMES, empty_ok=False)
        return
    manifest = read_manifest(root)
    theirs = sorted(set(user_files(root, manifest, ".jpg", TABLE_NAMES)) & set(user_files(root, manifest, ".txt",
                                                                                             TABLE_NAMES)))
    if theirs:
        raise FileExistsError(f"{root} holds files the generator did not write ({', '.join(theirs[:5])}); refusing "
                              "to replace it: move them elsewhere or choose another output folder")


# ----------------------------------------------------------------------------------------------------------------
# The plan: patients, tumour types, slices


def _plan(patients: int, seed: int) -> pd.DataFrame:
    """One row per patient: fake PID, tumour type, number of slices, first file number."""
    rng = stream(seed, 0)
    kinds = rng.permutation(np.repeat(list(SLICE_SHARE), largest_remainder(list(SLICE_SHARE.values()), patients)))
    n_slices = rng.integers(3, 9, patients)
    ids = rng.choice(np.arange(10000, 100000), patients, replace=False)
    first = np.concatenate([[1], 1 + np.cumsum(n_slices)[:-1]])
    return pd.DataFrame({"pid": [f"SYN{i}" for i in ids], "tumour_type": kinds, "slices": n_slices, "first": first})


# ----------------------------------------------------------------------------------------------------------------
# Rendering


def _render(kind: str, n: int, signal: bool, rng: np.random.Generator, size: int,
            planted: bool = False) -> tuple[np.ndarray, np.ndarray, dict]:
    """(n, S, S) float32 post-contrast T1 slices in [0, 1], (n, S, S) bool tumour masks, the drawn parameters."""
    mm = SPACING_MM * 512 / size  # millimetres per pixel
    yy = np.arange(size, dtype=np.float32)[None, :, None]
    xx = np.arange(size, dtype=np.float32)[None, None, :]
    z_mm = ((np.arange(n) - (n - 1) / 2) * SLICE_GAP_MM).astype(np.float32)[:, None, None]
    # head: an ellipse, longer front (top rows) to back, a little smaller away from the middle slice
    cy, cx = (size / 2 + rng.normal(0, 0.02 * size, 2)).tolist()
    ay, ax = rng.uniform(88, 96) / mm, rng.uniform(70, 76) / mm
    section = 1 - 0.004 * np.abs(z_mm)
    r2 = ((yy - cy) / (ay * section)) ** 2 + ((xx - cx) / (ax * section)) ** 2
    vent = (((yy - cy + 0.03 * 2 * ay) / (0.22 * ay)) ** 2 + ((np.abs(xx - cx) - 0.13 * ax) / (0.07 * ax)) ** 2) < 1
    tissue = np.select([r2 < 0.88 ** 2, r2 < 0.94 ** 2, r2 < 1], [3, 2, 1], 0).astype(np.uint8)
    tissue[(tissue == 3) & vent & (np.abs(z_mm) < 12)] = 4
    cell = max(2, round(16 * size / 512))
    texture = 0.05 * _smooth_noise(rng, tissue.shape, cell) + 0.07 * (rng.random(tissue.shape, np.float32) - 0.5)

    # tumour: an ellipsoid cut by the slices (all of them pass through it), its place and size by type
    angle = rng.uniform(0, 2 * np.pi)
    if planted:  # inside the brain, one law for every type (without signal, a size by type)
        radius = rng.uniform(*PLANTED_RADIUS_MM[kind]) if not signal else rng.uniform(12, 30)
        place = rng.uniform(0.15, 0.5)
    elif kind == "meningioma":  # against the inner skull, pressing on the brain
        radius, place = rng.uniform(12, 25), 0.86
    elif kind == "pituitary":  # the sella: central, anterior
        radius, place, angle = rng.uniform(6, 12), 0.3, -np.pi / 2 + rng.normal(0, 0.05)
    else:
        radius, place = rng.uniform(15, 32), rng.uniform(0.15, 0.5)
    ty, tx = cy + place * 0.88 * ay * np.sin(angle), cx + place * 0.88 * ax * np.cos(angle)
    ry, rx = (radius * rng.uniform(0.8, 1.2, 2) / mm).tolist()
    rz = (n - 1) / 2 * SLICE_GAP_MM + rng.uniform(4, 10)
    across = np.sqrt(1 - (z_mm / rz) ** 2)
    d = np.sqrt(((yy - ty) / (ry * across)) ** 2 + ((xx - tx) / (rx * across)) ** 2)
    d = d + 0.12 * _smooth_noise(rng, d.shape, max(2, round(32 * size / 512)))
    inside = (d < 1) & (tissue >= 3)
    tissue[inside] = 3  # the tumour displaces the ventricles

    # enhancement: homogeneous for meningioma and pituitary; glioma a rim around a darker centre (signal) or not
    rim_amp = 0.0
    if planted:
        change, rim_amp = _planted_enhancement(kind, signal, d, rng)
    elif kind == "meningioma":
        change = np.full(d.shape, rng.uniform(0.30, 0.45), np.float32)
    elif kind == "pituitary":
        change = np.full(d.shape, rng.uniform(0.20, 0.35), np.float32)
    elif signal:
        rim_amp = LGG_RIM_AMPLITUDE * rng.uniform(0.4, 1.6)
        change = -rng.uniform(0.04, 0.10) + rim_amp * np.exp(-(((d - 0.8) / 0.12) ** 2))
    else:
        change = np.full(d.shape, rng.uniform(0.0, 0.12), np.float32)
    v = LEVELS[tissue] + texture + inside * change
    image = (np.clip(v * rng.uniform(0.85, 1.15), 0, 1) * (tissue > 0)).astype(np.float32)
    truth = {"radius_mm": round(float(radius), 2), "rim": round(float(rim_amp), 4),
             "tumour_pixels": int(inside.sum())}
    return image, inside, truth


def _planted_enhancement(kind: str, signal: bool, d: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray,
                                                                                                     float]:
    """planted=True: the LGG cohort's subtype patterns by type (signal) or one diffuse enhancement; and the rim."""
    diffuse = rng.uniform(0.0, 0.15)
    rim_amp = PLANTED_GAIN * LGG_RIM_AMPLITUDE * rng.uniform(0.4, 1.6) * (signal and kind == "glioma")
    patch_amp = PLANTED_GAIN * LGG_PATCH_AMPLITUDE * rng.uniform(0.4, 1.6) * (signal and kind == "pituitary")
    rim = np.exp(-(((d - 0.8) / 0.12) ** 2))
    cell = max(2, round(6 * d.shape[-1] / 256))  # synth.lgg's patches: 6 pixels at 256, the same field of view
    patchy = np.clip(_smooth_noise(rng, d.shape, cell), 0, None) if patch_amp else 0.0
    return (diffuse + rim_amp * rim + patch_amp * patchy).astype(np.float32), float(rim_amp)


def _border(mask: np.ndarray, points: int = 40) -> np.ndarray:
    """A tumorBorder row: [x1, y1, x2, y2, ...] (1-based, x = column) of up to `points` edge pixels by angle."""
    inner = mask.copy()
    inner[1:-1, 1:-1] = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    edge = mask & ~inner
    ys, xs = np.nonzero(edge)
    order = np.argsort(np.arctan2(ys - ys.mean(), xs - xs.mean()), kind="stable")
    keep = order[np.linspace(0, len(order) - 1, min(points, len(order))).astype(int)]
    return np.stack([xs[keep] + 1, ys[keep] + 1], axis=1).ravel().astype(np.float64)


# ----------------------------------------------------------------------------------------------------------------
# Writing


def _matlab_attrs(ds, matlab_class: str) -> None:
    ds.attrs["MATLAB_class"] = np.bytes_(matlab_class)


def _write_matlab(path: Path, variables: dict[str, tuple[np.ndarray, str]], group: str | None) -> None:
    """A MATLAB v7.3 file: each variable (MATLAB array, class) stored column-major as MATLAB does (HDF5 holds the
    transpose), inside struct `group` when given; then the 512-byte MATLAB header in the userblock."""
    with h5py.File(path, "w", userblock_size=512) as f:
        parent = f
        if group:
            parent = f.create_group(group)
            _matlab_attrs(parent, "struct")
        for name, (array, matlab_class) in variables.items():
            big = array.size > 1000
            ds = parent.create_dataset(name, data=np.asarray(array).T, track_times=False,
                                       **({"compression": "gzip", "compression_opts": 4} if big else {}))
            _matlab_attrs(ds, matlab_class)
            if matlab_class == "char":
                ds.attrs["MATLAB_int_decode"] = np.int32(2)
    header = MATLAB_HEADER.ljust(116) + b"\0" * 8 + b"\x00\x02" + b"IM"
    with open(path, "r+b") as f:
        f.write(header.ljust(512, b"\0"))


def _folder(number: int, total: int) -> str:
    """The release's folder of file `number`: brainTumorDataPublic_1-766, 767-1532, ..."""
    a = (number - 1) // FILES_PER_FOLDER * FILES_PER_FOLDER + 1
    return f"brainTumorDataPublic_{a}-{min(a + FILES_PER_FOLDER - 1, total)}"


def _write_mat_slice(root: Path, number: int, total: int, image: np.ndarray, mask: np.ndarray, kind: str,
                     pid: str) -> None:
    folder = root / _folder(number, total)
    folder.mkdir(exist_ok=True)
    codes = np.array([[ord(c) for c in pid]], np.uint16)  # a 1 x n char row
    _write_matlab(folder / f"{number}.mat", {
        "PID": (codes, "char"),
        "image": (np.round(image * 1000).astype(np.int16), "int16"),
        "label": (np.array([[float(OFFICIAL_LABEL[kind])]]), "double"),
        "tumorBorder": (_border(mask)[None, :], "double"),
        "tumorMask": (mask.astype(np.uint8), "logical"),
    }, "cjdata")


def _write_jpeg_slice(root: Path, number: int, image: np.ndarray, mask: np.ndarray, kind: str) -> None:
    folder = root / CLASS_FOLDER[kind]
    folder.mkdir(exist_ok=True)
    Image.fromarray(np.round(image * 255).astype(np.uint8), mode="L").save(folder / f"{number}.jpg", quality=92)
    ys, xs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    rows, cols = mask.shape
    box = ((xs[0] + xs[-1] + 1) / 2 / cols, (ys[0] + ys[-1] + 1) / 2 / rows, (xs[-1] - xs[0] + 1) / cols,
           (ys[-1] - ys[0] + 1) / rows)
    (folder / f"{number}.txt").write_text(f"{CLASS_FOLDER[kind]} " + " ".join(f"{v:.2f}" for v in box))


def _write_cohort(root: Path, params: dict, progress: bool) -> None:
    seed, layout, size = params["seed"], params["layout"], params["size"]
    plan = _plan(params["patients"], seed)
    total = int(plan.slices.sum())
    truth = []
    for i, p in enumerate(tqdm(list(plan.itertuples()), desc="synthesising Figshare patients", disable=not progress)):
        images, masks, t = _render(p.tumour_type, int(p.slices), params["signal"], stream(seed, 1, i), size,
                                   params.get("planted", False))
        for k in range(int(p.slices)):
            number = int(p.first) + k
            if layout == "mat":
                _write_mat_slice(root, number, total, images[k], masks[k], p.tumour_type, p.pid)
            else:
                _write_jpeg_slice(root, number, images[k], masks[k], p.tumour_type)
        truth.append({"pid": p.pid, "tumour_type": p.tumour_type, "first_file": int(p.first),
                      "slices": int(p.slices), **t})
    folds = (np.arange(total) % 5 + 1).astype(np.float64)[:, None]  # a column of fold numbers 1..5
    if layout == "mat":
        _write_matlab(root / "cvind.mat", {"cvind": (folds, "double")}, None)
    pd.DataFrame(truth).to_csv(root / "synthetic_truth.csv", index=False, lineterminator="\n")
    write_manifest(root, {"generator": GENERATOR, "version": VERSION, "parameters": params, "layout": layout,
                          "patients": params["patients"], "slices": total,
                          "slices_by_type": plan.groupby("tumour_type").slices.sum().astype(int).to_dict(),
                          "pixel_spacing_mm": f"none stored (as in the release); {SPACING_MM * 512 / size:g} mm drawn",
                          "patient_ids": "fake (SYN<number>)", "tables": table_checksums(root, TABLE_NAMES)})
