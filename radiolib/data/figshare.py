"""The Figshare brain tumour cohort (Cheng et al. 2015/2017) as a data source: an external brain-tumour cohort for
the glioma study's pretraining. 3,064 contrast-enhanced T1 slices of 233 patients (glioma, meningioma, pituitary
tumour), one tumour per slice, in either of two layouts (searched below `root`):

- the official release (`LAYOUT_MAT`): MATLAB v7.3 files `<n>.mat`, n = 1..3064, usually in folders such as
  brainTumorDataPublic_1-766/, each a struct `cjdata` with `image` (int16), `label` (1 meningioma, 2 glioma,
  3 pituitary), `PID` (patient id, MATLAB chars), `tumorBorder` and `tumorMask`. Read with h5py, which returns
  MATLAB's column-major arrays transposed: they are transposed back. Files without `cjdata` (cvind.mat, the
  cross-validation indices) are not slices and are skipped. A patient is a PID; its slices, in file-number order,
  are its volume; one region per slice, the tumour mask's bounding box.
- the public JPEG derivative (`LAYOUT_JPEG`): class folders `0` pituitary, `1` meningioma, `2` glioma (a coding
  other than the official `label`), each slice `<n>.jpg` (8-bit) with `<n>.txt` holding one YOLO-style line
  `label x_center y_center width height` (fractions of the image side). It has no patient ids: every slice is its
  own unit ("slice-0001"), so held-out evaluation on it is by slice; the table's `unit` says which.

The slices are of three planes (axial, coronal and sagittal, as the JPEG copy shows; its README says axial), so a
patient's "volume" is a stack of 2D slices in file order, not a 3D scan: patches are cut slice by slice as
everywhere, and the test layout's "5 consecutive slices" are 5 slices in file order.
Neither layout stores the pixel spacing: Cheng et al. 2015 give 0.49 mm for the 512x512 images
(`NOMINAL_SPACING_MM`); the few 256x256 images are assumed to cover the same field of view (0.98 mm pixels).
Volumes are cut on a 1 mm grid (`GRID_MM`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage

from ..core.frontend import tqdm
from .descriptor import FIGSHARE_DEFAULT, Descriptor, figshare_descriptor, figshare_target
from .imaging import Volume
from .series import IMAGE_UNREADABLE, UnreadableImage, short_error
from .source import SourceTables, labels_of

# Cheng et al. 2015 (PLoS ONE 10:e0140381), the dataset's description: 512x512 pixels of 0.49 x 0.49 mm.
NOMINAL_SPACING_MM = 0.49
NOMINAL_SIDE = 512  # the side those 0.49 mm are given for; other sides are assumed to cover the same field of view
SLICE_SPACING_MM = 7.0  # ibid.: 6 mm slices with a 1 mm gap (a patient's slices need not be adjacent ones)
# Patches are cut on a 1 mm grid, the LGG release's nominal grid, so a source patch of N paper pixels covers the same
# millimetres as the study's; it also keeps the patch arrays of 3,064 slices small.
GRID_MM = 1.0
DEFAULT_TARGET = FIGSHARE_DEFAULT
LAYOUT_MAT, LAYOUT_JPEG = "mat", "jpeg"
OFFICIAL_LABELS = {1: "meningioma", 2: "glioma", 3: "pituitary"}  # cjdata.label
FOLDER_LABELS = {"0": "pituitary", "1": "meningioma", "2": "glioma"}  # the JPEG derivative's class folders
BODY_THRESHOLD = 0.1  # the head: signal above this fraction of the slice's 99th percentile, holes filled
BOX_TOLERANCE = 0.01  # a YOLO box may overrun the image by its 2-decimal rounding (1% of the side); more is an error
COLUMNS = ["patient", "label", "tumour_type", "unit", "layout", "source_label", "files", "slices", "rows", "columns",
           "pixel_spacing", "n_boxes", "tumour_pixels"]
BOX_COLUMNS = ["patient", "Start Row", "End Row", "Start Column", "End Column", "Start Slice", "End Slice", "lesion"]
MAT_DEPTHS = ("*.mat", "*/*.mat", "*/*/*.mat", "*/*/*/*.mat")  # root/brainTumorDataPublic_1-766/1.mat and deeper
_NUMBERED = re.compile(r"^(\d+)\.(mat|jpg|jpeg|txt)$", re.I)

# Stable exclusion reasons (the QC table's `reason` begins with one of these, then names the file).
REASONS = {
    "unreadable": IMAGE_UNREADABLE,
    "no_box_file": "missing box file",
    "bad_box_file": "malformed box file",
    "unknown_label": "unknown tumour label",
    "box_outside": "box outside the image",
    "no_tumour": "empty tumour mask",
    "mixed_types": "tumour type differs between slices",
    "duplicate": "duplicate slice number",
}


class SliceError(ValueError):
    """A slice file that cannot be used; `reason` is its QC text (a REASONS entry and the file)."""

    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.reason = f"{REASONS[kind]}: {detail}"


@dataclass
class FigshareCohort(SourceTables):
    """A Figshare `DataSource`: `table` (one row per patient, or per slice in the JPEG layout: column `unit`),
    `qc`, `boxes` (1-based inclusive, Annotation_Boxes.csv's convention, in the files' own pixels) and the slice
    files of each unit (`files`, in file-number order)."""

    root: Path
    table: pd.DataFrame
    qc: pd.DataFrame
    boxes: pd.DataFrame
    descriptor: Descriptor = field(default_factory=figshare_descriptor)
    layout: str = LAYOUT_MAT
    files: dict[str, list[Path]] = field(repr=False, default_factory=dict)

    @property
    def target(self) -> str:
        return self.descriptor.target

    @property
    def target_spacing(self) -> float:
        """GRID_MM: patches are cut on a 1 mm grid (see the module's docstring)."""
        return GRID_MM

    @property
    def unit(self) -> str:
        """What a row of `table` is: "patient" (the official release) or "slice" (the JPEG derivative)."""
        return "patient" if self.layout == LAYOUT_MAT else "slice"

    def labels(self, target: str | None = None) -> pd.Series:
        """Label per included unit for `target` ("tumour_type==<type>"; None: this cohort's)."""
        kind = figshare_target(self.target if target is None else target)
        values = (self.table.tumour_type == kind).astype(float)
        return labels_of(values.set_axis(self.table.patient.values), self.patients)

    def volume(self, patient: str, target_spacing: float = GRID_MM) -> Volume:
        """The unit's slices as a (1, Z, Y, X) `Volume` on a grid of `target_spacing` mm (see `read_volume`)."""
        if patient not in self.files:
            raise KeyError(f"{patient} is not an included patient of this cohort")
        return read_volume(self.files[patient], self.regions(patient), patient, float(target_spacing))


# ---------------------------------------------------------------------------------------------------------------
# Finding the layout


def _numbered(paths) -> list[tuple[int, Path]]:
    """(number, path) of the files named `<n>.<suffix>`, by number."""
    found = [(int(m.group(1)), p) for p in paths if (m := _NUMBERED.match(p.name)) and p.is_file()]
    return sorted(found, key=lambda t: (t[0], str(t[1])))


def _jpeg_roots(root: Path):
    """`root` and the folders up to two levels below it holding class folders 0/1/2 of numbered JPEG slices."""
    for d in [root] + [d for depth in ("*", "*/*") for d in sorted(root.glob(depth)) if d.is_dir()]:
        if any(_numbered((d / c).glob("*.jp*g")) for c in FOLDER_LABELS if (d / c).is_dir()):
            yield d


def _mat_files(root: Path) -> list[Path]:
    """Every .mat file below `root` (any depth), numbered files first by number, then the others by name."""
    mats = sorted(p for p in root.rglob("*") if p.suffix.lower() == ".mat" and p.is_file())
    numbered = _numbered(mats)
    others = [p for p in mats if p not in {q for _, q in numbered}]
    return [p for _, p in numbered] + others


def find_layout(root: str | Path) -> tuple[Path, str] | None:
    """(data root, LAYOUT_MAT or LAYOUT_JPEG) of a Figshare folder, or None: numbered .mat files at most three
    levels down (the official release; `load_cohort` then reads every .mat below `root`), else class folders 0/1/2
    of JPEG slices at most two levels down. Shallow, so that a Duke download is not walked file by file."""
    root = Path(root)
    if not root.is_dir():
        return None
    if any(_NUMBERED.match(p.name) for depth in MAT_DEPTHS for p in root.glob(depth)):
        return root, LAYOUT_MAT
    found = next(_jpeg_roots(root), None)
    return (found, LAYOUT_JPEG) if found is not None else None


def is_figshare_layout(root: str | Path) -> bool:
    """Whether `root` holds the Figshare cohort (either layout): for dispatching by layout."""
    return find_layout(root) is not None


# ---------------------------------------------------------------------------------------------------------------
# Reading slices


def spacing_of(columns: int) -> float:
    """The in-plane spacing (mm) of an image `columns` wide: 0.49 mm at 512, the same field of view otherwise."""
    return NOMINAL_SPACING_MM * NOMINAL_SIDE / columns


def _name(path: Path, root: Path) -> str:
    """The file as a QC reason names it: its path below the data root."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def _matlab_text(codes: np.ndarray) -> str:
    """A MATLAB char array (uint16 character codes) as a string."""
    return "".join(map(chr, np.asarray(codes, np.uint32).ravel())).strip()


class DamagedSlice(ValueError):
    """A .mat slice whose PID could be read but not the rest: its patient is excluded (`pid`)."""

    def __init__(self, pid: str, detail: str):
        super().__init__(detail)
        self.pid = pid


def read_mat(path: Path, pixels: bool = True) -> dict | None:
    """One official slice: PID, label, image (when `pixels`; always its shape) and tumorMask, in MATLAB's
    orientation (h5py gives the transpose of a MATLAB matrix); None when the file has no `cjdata` (not a slice,
    e.g. cvind.mat). Raises DamagedSlice when the PID was read but not the rest, another error when not even it."""
    with h5py.File(path, "r") as f:
        if "cjdata" not in f:
            return None
        c = f["cjdata"]
        pid = _matlab_text(c["PID"][()])
        try:
            image = c["image"][()].T if pixels else None
            shape = tuple(reversed(c["image"].shape))
            mask = c["tumorMask"][()].T != 0
            label = np.asarray(c["label"][()], float).ravel()
            if len(shape) != 2 or mask.shape != shape:
                raise ValueError(f"image {shape} and tumorMask {mask.shape} differ")
            if label.size != 1:
                raise ValueError(f"label has {label.size} values")
        except Exception as err:  # noqa: BLE001 - h5py raises several types for damaged data
            raise DamagedSlice(pid, short_error(err)) from None
    if not pid:
        raise ValueError("empty PID")
    return {"pid": pid, "label": float(label[0]), "image": image, "shape": shape, "mask": mask}


def read_box_file(path: Path, name: str) -> tuple[int, float, float, float, float]:
    """(label, x_center, y_center, width, height) of a YOLO-style box file (one line, fractions of the side);
    `name` is the file as the QC reason names it."""
    if not path.is_file():
        raise SliceError("no_box_file", name)
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    try:
        if len(lines) != 1:
            raise ValueError(f"{len(lines)} lines")
        fields = lines[0].split()
        if len(fields) != 5:
            raise ValueError(f"{len(fields)} fields")
        label, values = int(fields[0]), [float(v) for v in fields[1:]]
    except ValueError as err:
        raise SliceError("bad_box_file", f"{name}: {err} (expected one line 'label x_center y_center width "
                                         "height')") from None
    return (label, *values)


def _yolo_box(values, rows: int, columns: int, name: str) -> tuple[int, int, int, int]:
    """(start row, end row, start column, end column), 1-based inclusive, of a YOLO box on a rows x columns image."""
    xc, yc, w, h = values
    x0, x1, y0, y1 = xc - w / 2, xc + w / 2, yc - h / 2, yc + h / 2
    if not (w > 0 and h > 0) or min(x0, y0) < -BOX_TOLERANCE or max(x1, y1) > 1 + BOX_TOLERANCE:
        raise SliceError("box_outside", f"{name}: x {x0:.3f}..{x1:.3f}, y {y0:.3f}..{y1:.3f} (fractions of the side)")
    x0, x1, y0, y1 = np.clip([x0, x1, y0, y1], 0.0, 1.0)  # an overrun within the rounding tolerance
    return (int(np.floor(y0 * rows)) + 1, max(int(np.ceil(y1 * rows)), 1),
            int(np.floor(x0 * columns)) + 1, max(int(np.ceil(x1 * columns)), 1))


def _mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(start row, end row, start column, end column), 1-based inclusive, of a non-empty mask."""
    ys, xs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(ys[0]) + 1, int(ys[-1]) + 1, int(xs[0]) + 1, int(xs[-1]) + 1


def _read_pixels(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(image as float32, tumour mask or None) of one slice file."""
    if path.suffix.lower() == ".mat":
        s = read_mat(path)
        if s is None:
            raise ValueError("no cjdata")
        return s["image"].astype(np.float32), s["mask"]
    with Image.open(path) as im:
        return np.asarray(im.convert("L"), np.float32), None


# ---------------------------------------------------------------------------------------------------------------
# Volumes


def _resample(image: np.ndarray, factor: float, order: int) -> np.ndarray:
    """A 2D image on a grid `factor` times as many pixels per millimetre, the field of view kept (pixel centres
    aligned, so 512 pixels of 0.49 mm and 256 of 0.98 mm give the same grid): bilinear (order 1) or nearest (0)."""
    pos = [(np.arange(int(round(n * factor))) + 0.5) / factor - 0.5 for n in image.shape]
    yy, xx = np.meshgrid(*pos, indexing="ij")
    return ndimage.map_coordinates(image, [yy, xx], order=order, mode="nearest")


def head_mask(image: np.ndarray) -> np.ndarray:
    """The head on a slice: signal above BODY_THRESHOLD of its 99th percentile, holes filled, largest component."""
    top = float(np.percentile(image, 99))
    inside = ndimage.binary_fill_holes(image > BODY_THRESHOLD * top) if top > 0 else np.zeros(image.shape, bool)
    labels, n = ndimage.label(inside)
    if n > 1:
        inside = labels == (np.argmax(np.bincount(labels.ravel())[1:]) + 1)
    return inside


def slice_regions(boxes: pd.DataFrame, factors: list[float]) -> pd.DataFrame:
    """One region per box on the resampled grid: centre (cy, cx) and size (h, w) in voxels; `factors[z]` is the
    ratio of slice z's pixel spacing to the grid's."""
    rows = []
    for b in boxes.itertuples(index=False):
        z = int(b[BOX_COLUMNS.index("Start Slice")]) - 1
        f = factors[z]
        r0, r1, c0, c1 = (int(b[BOX_COLUMNS.index(k)]) - 1 for k in ("Start Row", "End Row", "Start Column",
                                                                       "End Column"))
        rows.append({"lesion": int(b.lesion), "slice": z, "cy": ((r0 + r1) / 2 + 0.5) * f - 0.5,
                     "cx": ((c0 + c1) / 2 + 0.5) * f - 0.5, "h": (r1 - r0 + 1) * f, "w": (c1 - c0 + 1) * f})
    return pd.DataFrame(rows, columns=["lesion", "slice", "cy", "cx", "h", "w"])


def read_volume(files: list[Path], boxes: pd.DataFrame, patient: str, target_spacing: float = GRID_MM) -> Volume:
    """(1, Z, Y, X) float32 post-contrast T1 of a unit's slices on a `target_spacing` grid (bilinear; the mask
    nearest), divided by its 99th percentile inside the head; the head (`body`), the tumour mask where the files
    have one, and one region per slice from `boxes`."""
    if not target_spacing > 0:
        raise ValueError(f"{patient}: target_spacing must be positive, got {target_spacing}")
    images, masks, factors = [], [], []
    for path in files:
        try:
            image, mask = _read_pixels(path)
        except Exception as err:  # noqa: BLE001 - h5py and PIL raise several types for a damaged file
            raise UnreadableImage(f"{path.parent.name}/{path.name}: {short_error(err)}") from None
        factor = spacing_of(image.shape[1]) / target_spacing
        images.append(_resample(image, factor, order=1))
        masks.append(_resample(mask.astype(np.uint8), factor, order=0) > 0 if mask is not None else None)
        factors.append(factor)
    sizes = {im.shape for im in images}
    if len(sizes) != 1:
        raise UnreadableImage(f"{patient}: slices of different fields of view {sorted(sizes)}")
    stack = np.stack(images).astype(np.float32)
    body = np.stack([head_mask(s) for s in stack])
    scale = float(np.percentile(stack[body], 99)) if body.any() else 0.0
    stack /= scale or 1.0
    mask = np.stack(masks) if all(m is not None for m in masks) else None
    spacing = (SLICE_SPACING_MM, target_spacing, target_spacing)
    return Volume(patient, stack[None], spacing, slice_regions(boxes, factors), body=body, mask=mask)


# ---------------------------------------------------------------------------------------------------------------
# Scanning the layouts


def _box_rows(patient: str, z: int, box: tuple[int, int, int, int]) -> dict:
    r0, r1, c0, c1 = box
    return {"patient": patient, "Start Row": r0, "End Row": r1, "Start Column": c0, "End Column": c1,
            "Start Slice": z, "End Slice": z, "lesion": 1}


def _scan_mat(root: Path, progress: bool) -> tuple[list[dict], list[dict], dict, list[dict]]:
    """(rows, qc, files, boxes) of the official release: slices grouped by PID, in file-number order. A file that
    cannot be used excludes its patient; one whose PID cannot be read is a QC row of its own ("file <name>")."""
    slices: dict[str, list] = {}  # pid -> [(path, facts)]
    bad: dict[str, str] = {}  # pid -> the first reason to exclude it
    qc = []
    for path in tqdm(_mat_files(root), desc="scanning slices", disable=not progress):
        name = _name(path, root)
        try:
            s = read_mat(path, pixels=False)
        except DamagedSlice as err:
            slices.setdefault(err.pid, [])
            bad.setdefault(err.pid, f"{REASONS['unreadable']}: {name}: {err}")
            continue
        except ImportError:
            raise
        except Exception as err:  # noqa: BLE001 - any failure to open is the same QC outcome
            if _NUMBERED.match(path.name):  # a slice file of no known patient: its own QC row
                qc.append({"patient": f"file {name}", "reason": f"{REASONS['unreadable']}: {name}: {short_error(err)}"})
            continue  # an unnumbered file that is not HDF5 is no slice of the release (e.g. a v5 cvind.mat)
        if s is None:
            continue  # no cjdata: not a slice (cvind.mat)
        pid, label = s["pid"], s["label"]
        kind = OFFICIAL_LABELS.get(int(label)) if float(label).is_integer() else None
        if kind is None:
            bad.setdefault(pid, f"{REASONS['unknown_label']}: {name}: label {label:g} (expected 1, 2 or 3)")
        elif not s["mask"].any():
            bad.setdefault(pid, f"{REASONS['no_tumour']}: {name}")
        facts = {"kind": kind, "label": int(label) if kind else None, "shape": s["shape"],
                 "box": _mask_box(s["mask"]) if s["mask"].any() else None, "area": int(s["mask"].sum())}
        slices.setdefault(pid, []).append((path, facts))
    rows, files, boxes = [], {}, []
    for pid in sorted(slices):
        found = slices[pid]
        kinds = sorted({f["kind"] for _, f in found})
        if pid in bad or len(kinds) != 1:
            qc.append({"patient": pid, "reason": bad.get(pid) or f"{REASONS['mixed_types']}: {', '.join(kinds)}"})
            continue
        columns = max(f["shape"][1] for _, f in found)
        rows.append({"patient": pid, "tumour_type": kinds[0], "unit": "patient", "layout": LAYOUT_MAT,
                     "source_label": found[0][1]["label"], "files": len(found), "slices": len(found),
                     "rows": max(f["shape"][0] for _, f in found), "columns": columns,
                     "pixel_spacing": spacing_of(columns), "n_boxes": len(found),
                     "tumour_pixels": sum(f["area"] for _, f in found)})
        files[pid] = [p for p, _ in found]
        boxes += [_box_rows(pid, z, f["box"]) for z, (_, f) in enumerate(found, start=1)]
    return rows, qc, files, boxes


def _scan_jpeg_slice(path: Path, folder: str, root: Path) -> tuple[int, int, tuple]:
    """(rows, columns, box) of one JPEG slice and its box file; SliceError or a PIL error when unusable."""
    with Image.open(path) as im:
        columns, rows = im.size
    txt = path.with_suffix(".txt")
    label, *values = read_box_file(txt, _name(txt, root))
    if str(label) != folder:
        raise SliceError("unknown_label", f"{_name(txt, root)}: label {label} in class folder {folder}")
    return rows, columns, _yolo_box(values, rows, columns, _name(txt, root))


def _scan_jpeg(root: Path, progress: bool) -> tuple[list[dict], list[dict], dict, list[dict]]:
    """(rows, qc, files, boxes) of the JPEG derivative: one unit per slice, "slice-<n>"."""
    found = sorted((n, folder, p) for folder in FOLDER_LABELS if (root / folder).is_dir()
                   for n, p in _numbered((root / folder).iterdir()) if p.suffix.lower() in (".jpg", ".jpeg"))
    rows, qc, files, boxes, seen = [], [], {}, [], set()
    for n, folder, path in tqdm(found, desc="scanning slices", disable=not progress):
        unit, name = f"slice-{n:04d}", _name(path, root)
        if unit in seen:
            qc.append({"patient": f"{unit} ({name})", "reason": f"{REASONS['duplicate']}: {name}"})
            continue
        seen.add(unit)
        try:
            rows_n, columns, box = _scan_jpeg_slice(path, folder, root)
        except SliceError as err:
            qc.append({"patient": unit, "reason": err.reason})
            continue
        except Exception as err:  # noqa: BLE001 - PIL raises several types for a damaged file
            qc.append({"patient": unit, "reason": f"{REASONS['unreadable']}: {name}: {short_error(err)}"})
            continue
        r0, r1, c0, c1 = box
        rows.append({"patient": unit, "tumour_type": FOLDER_LABELS[folder], "unit": "slice", "layout": LAYOUT_JPEG,
                     "source_label": int(folder), "files": 1, "slices": 1, "rows": rows_n, "columns": columns,
                     "pixel_spacing": spacing_of(columns), "n_boxes": 1,
                     "tumour_pixels": (r1 - r0 + 1) * (c1 - c0 + 1)})
        files[unit] = [path]
        boxes.append(_box_rows(unit, 1, box))
    return rows, qc, files, boxes


def load_cohort(root: str | Path, target: str | None = None, progress: bool = True) -> FigshareCohort:
    """Scan a Figshare folder (either layout, see the module's docstring) for `target` ("tumour_type==<type>",
    default glioma: label 1 glioma, 0 the others); every slice file that cannot be used excludes its unit, with a
    reason naming the file."""
    descriptor = figshare_descriptor(target)
    found = find_layout(root)
    if found is None:
        raise FileNotFoundError(f"no Figshare brain tumour cohort in {Path(root).name!r}: expected the official "
                                "release's <n>.mat files (any depth) or class folders 0/1/2 of <n>.jpg and <n>.txt")
    data_root, layout = found
    scan = _scan_mat if layout == LAYOUT_MAT else _scan_jpeg
    rows, qc, files, boxes = scan(data_root, progress)
    kind = descriptor.positive
    table = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "label"])
    table.insert(1, "label", (table.tumour_type == kind).astype(int))
    qc_df = pd.DataFrame(qc, columns=["patient", "reason"]).sort_values("patient").reset_index(drop=True)
    box_df = pd.DataFrame(boxes, columns=BOX_COLUMNS)
    return FigshareCohort(root=data_root, table=table[COLUMNS], qc=qc_df, boxes=box_df, descriptor=descriptor,
                          layout=layout, files=files)
