"""The TCGA-LGG adapter: the public "lgg-mri-segmentation" release (Buda et al. 2020) as a study cohort.

Layout: `kaggle_3m/data.csv` (genomic clusters per patient) and one folder per patient `TCGA_XX_NNNN_YYYYMMDD/`
of 3-channel TIFF slices `<folder>_<k>.tif` (pre-contrast, FLAIR, post-contrast) with FLAIR tumour masks
`<folder>_<k>_mask.tif`, k = 1..n. `load_cohort` reads the table, the masks and the slice headers;
`LggCohort.volume` reads the pixels of one patient. The release has no pixel spacing: every grid is given the
nominal 1.0 mm (`NOMINAL_SPACING_MM`), so a patch of N paper pixels (0.97 mm each) is about 0.97 N voxels wide.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
from scipy import ndimage

from ..core.frontend import tqdm
from . import descriptor
from .descriptor import LGG_CHANNELS, LGG_DEFAULT, Descriptor, lgg_descriptor, target_labels
from .imaging import Volume
from .series import IMAGE_UNREADABLE, UnreadableImage, short_error
from .source import SourceTables, labels_of

DEFAULT_TARGET = LGG_DEFAULT  # Buda et al. 2020: cluster-of-clusters 2 vs the others
NOMINAL_SPACING_MM = 1.0  # not in the release; a nominal value so patch sizes have a meaning
CHANNELS = LGG_CHANNELS  # the TIFF channel order: pre-contrast, FLAIR, post-contrast
PATIENT_DIR = re.compile(r"^(TCGA_[A-Za-z0-9]+_[A-Za-z0-9]+)(?:_(\d{8}))?$")  # id, then the scan date
_SLICE_FILE = re.compile(r"^(?P<stem>.+)_(?P<k>\d+)(?P<mask>_mask)?\.tiff?$", re.I)
REGION_COLUMNS = ["lesion", "slice", "cy", "cx", "h", "w", "area"]
BOX_COLUMNS = ["patient", "Start Row", "End Row", "Start Column", "End Column", "Start Slice", "End Slice", "lesion"]

# Stable exclusion reasons; "no_label" is completed with the target column, e.g. "missing label (COCCluster blank)".
REASONS = {
    "no_label": "missing label",
    "not_in_table": "not in data.csv",
    "unreadable": IMAGE_UNREADABLE,
    "mismatch": "slice/mask mismatch",
    "no_tumour": "no tumour in the masks",
    "duplicate": "duplicate patient folder",
}


@dataclass
class LggCohort(SourceTables):
    """A kaggle_3m `DataSource`: `table`, `qc`, `boxes` (one row per tumour slice, 1-based like
    Annotation_Boxes.csv), the patient folders and data.csv (`clinical`, for the labels of any target)."""

    root: Path
    table: pd.DataFrame
    qc: pd.DataFrame
    boxes: pd.DataFrame
    descriptor: Descriptor = field(default_factory=lambda: lgg_descriptor(*DEFAULT_TARGET.split("==")))
    folders: dict[str, Path] = field(repr=False, default_factory=dict)
    clinical: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)

    @property
    def target(self) -> str:
        """The target as "<column>==<value>" (the descriptor's)."""
        return self.descriptor.target

    def labels(self, target: str | None = None) -> pd.Series:
        """Label per included patient for `target` ("<data.csv column>==<value>"; None: this cohort's)."""
        column, value = parse_target(self.target if target is None else target, list(self.clinical.columns))
        values = target_labels(self.clinical[column], column, value)
        return labels_of(values.set_axis(self.clinical.Patient.values), self.patients)

    def volume(self, patient: str, target_spacing: float = NOMINAL_SPACING_MM) -> Volume:
        """The patient's slices as a `Volume` on the nominal 1 mm grid (see `read_volume`)."""
        if abs(float(target_spacing) - NOMINAL_SPACING_MM) > 1e-6:
            raise ValueError(f"{patient}: LGG volumes are on the nominal {NOMINAL_SPACING_MM} mm grid (the release "
                             f"has no pixel spacing); got target_spacing={target_spacing}")
        if patient not in self.folders:
            raise KeyError(f"{patient} is not an included patient of this cohort")
        return read_volume(self.folders[patient], patient)


def parse_target(target: str | None, columns) -> tuple[str, str]:
    """Split "<column>==<value>" into (column, value); the column must be one of `columns` (data.csv's)."""
    return descriptor.parse_target(DEFAULT_TARGET if target is None else target, columns, "data.csv", DEFAULT_TARGET)


def _layout_candidates(root: Path):
    """`root` and the folders up to two levels below it that hold data.csv beside TCGA_* folders."""
    for d in [root] + [d for depth in ("*", "*/*") for d in sorted(root.glob(depth)) if d.is_dir()]:
        if (d / "data.csv").is_file() and any(p.is_dir() for p in d.glob("TCGA_*")):
            yield d


def is_lgg_layout(root: str | Path) -> bool:
    """Whether `root` is (or holds, up to two levels down) a kaggle_3m folder: for dispatching by layout."""
    return Path(root).is_dir() and next(_layout_candidates(Path(root)), None) is not None


def find_data_root(root: str | Path) -> Path:
    """The folder holding data.csv and the TCGA_* folders: `root` itself, or up to two levels below it."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {root.name!r} (expected the lgg-mri-segmentation "
                                "'kaggle_3m' folder with data.csv and TCGA_* patient folders, or a folder holding it)")
    found = next(_layout_candidates(root), None)
    if found is not None:
        return found
    if (root / "data.csv").is_file():
        raise FileNotFoundError(f"{root.name!r} has data.csv but no TCGA_* patient folders")
    raise FileNotFoundError(f"no data.csv in {root.name!r} or below it (expected the lgg-mri-segmentation 'kaggle_3m' "
                            "folder: data.csv and TCGA_* patient folders)")


def read_table(path: Path) -> pd.DataFrame:
    """data.csv: one row per patient id (column `Patient`), the genomic clusters and clinical codes."""
    try:
        table = pd.read_csv(path)
    except Exception as err:  # noqa: BLE001 - any parse failure is the same user error
        raise ValueError(f"cannot read {path.name}: {err}") from None
    if "Patient" not in table.columns:
        raise ValueError(f"{path.name} has no 'Patient' column; its columns are: {', '.join(map(str, table.columns))}")
    table["Patient"] = table["Patient"].astype(str).str.strip()
    dupes = sorted(table.Patient[table.Patient.duplicated()].unique())
    if dupes:
        raise ValueError(f"{path.name} lists these patients more than once: {', '.join(dupes)}")
    return table


def slice_files(folder: Path) -> tuple[dict[int, Path], dict[int, Path]]:
    """(slice number -> image file, slice number -> mask file) of a patient folder; other files are ignored."""
    images, masks = {}, {}
    for f in folder.iterdir():
        m = _SLICE_FILE.match(f.name)
        if m and m["stem"] == folder.name and f.is_file():
            (masks if m["mask"] else images)[int(m["k"])] = f
    return images, masks


def mask_regions(mask: np.ndarray) -> pd.DataFrame:
    """One row per tumour slice of a (Z, Y, X) bool mask: bounding-box centre and size, area in voxels, and the
    3D connected component (26-connected, numbered 1 = largest) holding most of that slice's tumour."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    order = np.argsort(-np.bincount(labels.ravel())[1:], kind="stable")
    rank = np.zeros(n + 1, int)
    rank[order + 1] = np.arange(1, n + 1)
    rows = []
    for z in np.flatnonzero(mask.any(axis=(1, 2))):
        ys, xs = np.flatnonzero(mask[z].any(axis=1)), np.flatnonzero(mask[z].any(axis=0))
        lesion = int(np.bincount(rank[labels[z][mask[z]]]).argmax())
        rows.append({"lesion": lesion, "slice": int(z), "cy": (ys[0] + ys[-1]) / 2, "cx": (xs[0] + xs[-1]) / 2,
                     "h": float(ys[-1] - ys[0] + 1), "w": float(xs[-1] - xs[0] + 1), "area": int(mask[z].sum())})
    return pd.DataFrame(rows, columns=REGION_COLUMNS)


def regions_to_boxes(patient: str, regions: pd.DataFrame) -> pd.DataFrame:
    """Regions as Annotation_Boxes.csv-style rows (1-based inclusive), one per tumour slice."""
    y0, x0 = regions.cy - (regions.h - 1) / 2, regions.cx - (regions.w - 1) / 2
    out = pd.DataFrame({"patient": patient, "Start Row": y0 + 1, "End Row": y0 + regions.h,
                        "Start Column": x0 + 1, "End Column": x0 + regions.w,
                        "Start Slice": regions.slice + 1, "End Slice": regions.slice + 1, "lesion": regions.lesion})
    return out.astype({c: int for c in BOX_COLUMNS[1:]})[BOX_COLUMNS]


def _header(path: Path) -> tuple[tuple, np.dtype]:
    """Shape and dtype of a TIFF's first page without decoding it; a truncated file is an error."""
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        end = max((o + c for o, c in zip(page.dataoffsets, page.databytecounts, strict=True)), default=0)
        if end > path.stat().st_size:
            raise ValueError(f"truncated ({path.stat().st_size} of {end} bytes)")
        return tuple(page.shape), page.dtype


def _read_mask(path: Path) -> np.ndarray:
    m = tifffile.imread(path)
    return (m.any(axis=-1) if m.ndim == 3 else m) > 0


def _ranges(ks: list[int]) -> str:
    return ", ".join(map(str, ks[:5])) + (f" (+{len(ks) - 5} more)" if len(ks) > 5 else "")


def scan_patient(folder: Path) -> tuple[str | None, dict]:
    """Check one patient folder (numbering, headers, mask shapes, tumour present): (reason or None, facts)."""
    images, masks = slice_files(folder)
    if not images:
        return f"{REASONS['mismatch']}: no image slices", {}
    if images.keys() != masks.keys():
        only_image, only_mask = sorted(images.keys() - masks.keys()), sorted(masks.keys() - images.keys())
        parts = ([f"slice {_ranges(only_image)} without mask"] if only_image else []) + \
                ([f"mask {_ranges(only_mask)} without slice"] if only_mask else [])
        return f"{REASONS['mismatch']}: {'; '.join(parts)}", {}
    ks = sorted(images)
    if ks != list(range(1, len(ks) + 1)):
        gaps = sorted(set(range(1, ks[-1] + 1)) - set(ks))
        return f"{REASONS['mismatch']}: slices numbered up to {ks[-1]}, missing {_ranges(gaps)}", {}
    shape = None
    for k in ks:
        try:
            s, _ = _header(images[k])
        except Exception as err:  # noqa: BLE001 - any failure to read is the same QC outcome
            return f"{REASONS['unreadable']}: {images[k].name}: {short_error(err)}", {}
        if len(s) != 3 or s[-1] != len(CHANNELS) or (shape and s != shape):
            expected = shape or f"(rows, columns, {len(CHANNELS)})"
            return f"{REASONS['unreadable']}: {images[k].name} has shape {s}, expected {expected}", {}
        shape = s
    mask = np.zeros((len(ks),) + shape[:2], bool)
    for i, k in enumerate(ks):
        try:
            m = _read_mask(masks[k])
        except Exception as err:  # noqa: BLE001
            return f"{REASONS['unreadable']}: {masks[k].name}: {short_error(err)}", {}
        if m.shape != shape[:2]:
            return f"{REASONS['mismatch']}: mask {k} is {m.shape[0]}x{m.shape[1]}, slice is {shape[0]}x{shape[1]}", {}
        mask[i] = m
    if not mask.any():
        return REASONS["no_tumour"], {}
    return None, {"slices": len(ks), "rows": shape[0], "columns": shape[1], "regions": mask_regions(mask),
                  "tumour_voxels": int(mask.sum())}


def read_volume(folder: Path, patient: str | None = None) -> Volume:
    """(3, Z, Y, X) float32 channels (pre-contrast, FLAIR, post-contrast), each divided by its 99th percentile
    inside the head (voxels nonzero in any channel), the tumour mask and its regions; spacing nominal 1 mm."""
    patient = patient or folder.name
    images, masks = slice_files(folder)
    ks = sorted(images)
    if not ks or ks != sorted(masks):
        raise UnreadableImage(f"{folder.name}: slices and masks changed since the cohort scan")
    try:
        stack = np.stack([tifffile.imread(images[k]) for k in ks])  # (Z, Y, X, C)
        mask = np.stack([_read_mask(masks[k]) for k in ks])
    except Exception as err:  # noqa: BLE001 - tifffile raises several types for a damaged file
        raise UnreadableImage(f"{folder.name}: {short_error(err)}") from None
    if stack.ndim != 4 or stack.shape[-1] != len(CHANNELS) or mask.shape != stack.shape[:3]:
        raise UnreadableImage(f"{folder.name}: slices {stack.shape} and masks {mask.shape} do not match")
    channels = np.moveaxis(stack, -1, 0).astype(np.float32)
    head = channels.any(axis=0)
    for c in channels:
        scale = float(np.percentile(c[head], 99)) if head.any() else 0.0
        c /= scale or 1.0
    spacing = (NOMINAL_SPACING_MM,) * 3
    return Volume(patient, channels, spacing, mask_regions(mask), mask=mask)


def load_cohort(root: str | Path, target: str | None = DEFAULT_TARGET, progress: bool = True) -> LggCohort:
    """Scan a kaggle_3m folder: labels from `target` ("<data.csv column>==<value>", label 1 when equal), masks
    and slice headers; every patient folder that cannot be used is excluded with a reason."""

    data_root = find_data_root(root)
    clinical = read_table(data_root / "data.csv")
    column, value = parse_target(target, list(clinical.columns))
    labels = target_labels(clinical[column], column, value)
    by_id = clinical.assign(_label=labels.values).set_index("Patient")
    folders = sorted(d for d in data_root.glob("TCGA_*") if d.is_dir() and PATIENT_DIR.match(d.name))

    rows, qc, kept, boxes, seen = [], [], {}, [], set()
    for folder in tqdm(folders, desc="scanning slices", disable=not progress):
        patient = PATIENT_DIR.match(folder.name).group(1)
        if patient in seen:
            qc.append({"patient": folder.name, "reason": f"{REASONS['duplicate']}: another folder of {patient}"})
            continue
        seen.add(patient)
        if patient not in by_id.index:
            qc.append({"patient": patient, "reason": REASONS["not_in_table"]})
            continue
        label = by_id.at[patient, "_label"]
        if pd.isna(label):
            qc.append({"patient": patient, "reason": f"{REASONS['no_label']} ({column} blank)"})
            continue
        reason, facts = scan_patient(folder)
        if reason:
            qc.append({"patient": patient, "reason": reason})
            continue
        kept[patient] = folder
        boxes.append(regions_to_boxes(patient, facts["regions"]))
        raw = by_id.at[patient, column]
        raw = int(raw) if isinstance(raw, float) and raw.is_integer() else raw  # 2, not 2.0
        rows.append({"patient": patient, "label": int(label), "target_value": raw,
                     "folder": folder.name, "slices": facts["slices"], "rows": facts["rows"],
                     "columns": facts["columns"], "pixel_spacing": NOMINAL_SPACING_MM,
                     "n_boxes": len(facts["regions"]), "tumour_voxels": facts["tumour_voxels"],
                     "manufacturer": "unknown", "model": "unknown", "field_strength": float("nan")})
    if not folders:
        raise FileNotFoundError(f"no TCGA_* patient folders in {data_root.name!r}")
    table = pd.DataFrame(rows, columns=["patient", "label", "target_value", "folder", "slices", "rows", "columns",
                                        "pixel_spacing", "n_boxes", "tumour_voxels", "manufacturer", "model",
                                        "field_strength"])
    qc_df = pd.DataFrame(qc, columns=["patient", "reason"]).sort_values("patient").reset_index(drop=True)
    box_df = pd.concat(boxes, ignore_index=True) if boxes else pd.DataFrame(columns=BOX_COLUMNS)
    return LggCohort(root=data_root, table=table, qc=qc_df, boxes=box_df, folders=kept, clinical=clinical,
                     descriptor=lgg_descriptor(column, value))
