"""Reading one patient's DCE series, resampling in-plane to the target spacing, and the subtraction channels."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import SimpleITK as sitk

from .series import PHASES, REASONS, PhaseSeries, UnreadableSeries, header_number, slice_position  # noqa: F401 (UnreadableSeries: re-export)

BODY_THRESHOLD = 0.15  # pre-contrast signal above this fraction of its 99th percentile counts as body tissue


class SeriesCohort(Protocol):
    """What reading a patient needs of a cohort (`cohort.Cohort` has it; this module does not import it)."""

    table: pd.DataFrame  # one row per patient: patient, pixel_spacing, ...
    boxes: pd.DataFrame  # Annotation_Boxes.csv rows, with `patient` and `lesion`
    series: dict[str, dict[str, PhaseSeries]]  # patient -> phase -> where it lies


@dataclass
class Volume:
    """A patient ready for patch extraction.

    channels: float32 (C, Z, Y, X) on the target grid (for DCE: post1-pre, post2-pre, post3-pre, scaled so the
    pre-contrast 99th percentile is 1); spacing: (z, y, x) mm; regions: one row per lesion and slice
    (lesion, slice, cy, cx, h, w) in voxel units of `channels`.
    """

    patient: str
    channels: np.ndarray
    spacing: tuple[float, float, float]
    regions: pd.DataFrame
    body: np.ndarray | None = None  # (Z, Y, X) bool: inside the body, where normal-tissue patches may be cut
    mask: np.ndarray | None = None  # (Z, Y, X) bool tumour segmentation, where the data has one (LGG; Duke: a SEG)

    def central_region(self) -> pd.Series:
        """The region on the middle slice of the largest lesion (by summed area): what figures show."""
        area = self.regions.h * self.regions.w
        lesion = area.groupby(self.regions.lesion).sum().idxmax()
        rows = self.regions[self.regions.lesion == lesion]
        return rows.iloc[len(rows) // 2]


def read_series(series: Path | PhaseSeries) -> sitk.Image:
    """Read one DICOM series (a folder, or one phase of a shared series) sorted by slice position."""
    return read_phase(series if isinstance(series, PhaseSeries) else PhaseSeries(Path(series)))[0]


def read_phase(series: PhaseSeries) -> tuple[sitk.Image, np.ndarray]:
    """One phase as a volume in slice-position order (SimpleITK's: ascending along the slice normal), and
    `slice_of`: slice_of[k - 1] is the volume index of the file numbered k (by InstanceNumber, the numbering of
    Annotation_Boxes.csv). Every file must be a DICOM image; the numbering is checked (`slice_order`). The headers
    come with the pixels (one read of each file)."""
    files = series.paths() if series.shared else _position_sorted(series.dir)
    image, headers = _read_files(files, series.dir.name)
    order, slice_of = slice_order(headers, series.name, exact=not series.shared)
    if not np.array_equal(order, np.arange(len(files))):  # not in position order (GDCM fell back): read again
        image, _ = _read_files([files[i] for i in order], series.dir.name)
    return image, slice_of


def _position_sorted(series_dir: Path) -> list[str]:
    """The .dcm files of a folder in SimpleITK's position order; every one must be a DICOM image."""
    files = sorted(series_dir.glob("*.dcm"))
    names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(series_dir))
    if len(names) != len(files):
        bad = sorted({f.name for f in files} - {n.rsplit("/", 1)[-1] for n in names})
        raise UnreadableSeries(f"{series_dir.name}/{bad[0] if bad else '?'}: not a DICOM image "
                               f"({len(files) - len(names)} of {len(files)} files)")
    return names


def _read_files(files: list, name: str) -> tuple[sitk.Image, pd.DataFrame]:
    """The files as one volume, in the given order, and their headers as `series.slice_headers` gives them."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(f) for f in files])
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        image = reader.Execute()
    except RuntimeError as err:
        first = str(err).strip().splitlines()[-1][:120]
        raise UnreadableSeries(f"{name}: {first}") from None

    def get(i, tag):  # a multi-valued element as its list of values ("a\\b\\c"), None where absent
        return reader.GetMetaData(i, tag).strip().split("\\") if reader.HasMetaDataKey(i, tag) else None

    rows = [{"file": f, "instance": header_number((get(i, "0020|0013") or [None])[0]),
             "position": slice_position(get(i, "0020|0032"), get(i, "0020|0037"))} for i, f in enumerate(files)]
    return image, pd.DataFrame(rows, columns=["file", "instance", "position"])


def slice_order(headers: pd.DataFrame, name: str, exact: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(file order by position, slice_of) from `series.slice_headers`. The k-th file by InstanceNumber is box
    slice k: InstanceNumber must be present and distinct, and (`exact`, a series of one phase) exactly 1..N; in a
    series shared by several phases it may run on (e.g. 1..5N), and k is the rank within the phase. Raises
    UnreadableSeries with the QC reason otherwise, never guessing an order."""
    n = len(headers)
    number = headers.instance.to_numpy(float)
    if np.isnan(number).any():
        raise UnreadableSeries(f"{name}: no InstanceNumber in {int(np.isnan(number).sum())} of {n} files",
                               "slice_numbering")
    if len(np.unique(number)) < n:
        twice = sorted({int(v) for v in number[pd.Series(number).duplicated().to_numpy()]})
        raise UnreadableSeries(f"{name}: InstanceNumber {twice[:3]} repeated", "slice_numbering")
    if exact and not np.array_equal(np.sort(number), np.arange(1, n + 1)):
        raise UnreadableSeries(f"{name}: InstanceNumber {number.min():g}..{number.max():g} is not 1..{n}",
                               "slice_numbering")
    position = headers.position.to_numpy(float)
    if np.isnan(position).any():
        raise UnreadableSeries(f"{name}: no ImagePositionPatient in {int(np.isnan(position).sum())} files")
    if len(np.unique(position.round(3))) < n:
        raise UnreadableSeries(f"'{name}' ({n} files at {len(np.unique(position.round(3)))} slice positions)",
                               "unsplit_series")
    order = np.argsort(position, kind="stable")
    index_of_file = np.empty(n, int)
    index_of_file[order] = np.arange(n)
    return order, index_of_file[np.argsort(number, kind="stable")]


def read_phases(cohort: SeriesCohort, patient: str) -> tuple[dict[str, sitk.Image], np.ndarray]:
    """The pre-contrast and first three post-contrast volumes of a patient, as SimpleITK images, and the volume
    index of each box slice (`read_phase`), which every phase must share."""
    images, slice_of = {}, None
    for p in PHASES:
        images[p], order = read_phase(cohort.series[patient][p])
        if slice_of is not None and not np.array_equal(order, slice_of):
            raise UnreadableSeries(f"{cohort.series[patient][p].name}: slices numbered in another order than pre",
                                   "slice_numbering")
        slice_of = order
    return images, slice_of


def resample_inplane(image: sitk.Image, spacing: float) -> sitk.Image:
    """Bilinear resampling of x-y to `spacing` mm (z untouched); voxel (0,0,0) keeps its position."""
    old = image.GetSpacing()
    factor = (old[0] / spacing, old[1] / spacing)
    size = [int(np.floor((image.GetSize()[i] - 1) * factor[i])) + 1 for i in (0, 1)] + [image.GetSize()[2]]
    return sitk.Resample(image, size, sitk.Transform(), sitk.sitkLinear, image.GetOrigin(),
                         (spacing, spacing, old[2]), image.GetDirection(), 0.0, sitk.sitkFloat32)


def subtraction_channels(phases: dict[str, sitk.Image]) -> np.ndarray:
    """(3, Z, Y, X) float32: post1-pre, post2-pre, post3-pre, divided by the pre-contrast 99th percentile."""
    pre = sitk.GetArrayViewFromImage(phases["pre"]).astype(np.float32)
    scale = float(np.percentile(pre, 99)) or 1.0
    return np.stack([(sitk.GetArrayViewFromImage(phases[p]).astype(np.float32) - pre) / scale
                     for p in ("post1", "post2", "post3")])


def box_regions(boxes: pd.DataFrame, factor: float, slice_of: np.ndarray | None = None) -> pd.DataFrame:
    """Per lesion and slice: centre and size in the resampled grid (1-based inclusive boxes -> 0-based voxels).

    Box slice k is the file numbered k; `slice_of[k - 1]` is its index in the position-sorted volume (`read_phase`;
    None: the volume is already in box order)."""
    rows = []
    for _, b in boxes.iterrows():
        y0, y1 = (b["Start Row"] - 1) * factor, (b["End Row"] - 1) * factor
        x0, x1 = (b["Start Column"] - 1) * factor, (b["End Column"] - 1) * factor
        for k in range(int(b["Start Slice"]), int(b["End Slice"]) + 1):
            z = int(slice_of[k - 1]) if slice_of is not None else k - 1
            rows.append({"lesion": int(b["lesion"]), "slice": z, "cy": (y0 + y1) / 2, "cx": (x0 + x1) / 2,
                         "h": y1 - y0 + factor, "w": x1 - x0 + factor})
    regions = pd.DataFrame(rows, columns=["lesion", "slice", "cy", "cx", "h", "w"])
    return regions.sort_values(["lesion", "slice"], kind="stable").reset_index(drop=True)


def prepare(cohort: SeriesCohort, patient: str, target_spacing: float) -> Volume:
    """Read, resample to the target in-plane spacing, subtract: the paper's preprocessing for one patient."""
    phases, slice_of = read_phases(cohort, patient)
    spacing = phases["pre"].GetSpacing()
    factor = spacing[0] / target_spacing
    mask = tumour_mask(cohort, patient, phases["pre"], target_spacing)
    if abs(factor - 1) > 1e-3:
        phases = {p: resample_inplane(img, target_spacing) for p, img in phases.items()}
    channels = subtraction_channels(phases)
    regions = box_regions(cohort.boxes[cohort.boxes.patient == patient], factor, slice_of)
    pre = sitk.GetArrayViewFromImage(phases["pre"])
    body = pre > BODY_THRESHOLD * np.percentile(pre, 99)
    return Volume(patient, channels, (spacing[2], target_spacing, target_spacing), regions, body, mask)


def tumour_mask(cohort: SeriesCohort, patient: str, grid: sitk.Image, target_spacing: float) -> np.ndarray | None:
    """The patient's SEG mask (`cohort.tumour_mask`, on the DCE `grid`) resampled in-plane to `target_spacing` as
    the phases are (bilinear, kept where at least 0.5); None without a SEG (or for a source without masks)."""
    found = cohort.tumour_mask(patient) if hasattr(cohort, "tumour_mask") else None
    if found is None:
        return None
    image = sitk.GetImageFromArray(found.mask.astype(np.float32))
    image.CopyInformation(grid)
    if abs(grid.GetSpacing()[0] / target_spacing - 1) > 1e-3:
        image = resample_inplane(image, target_spacing)
    return sitk.GetArrayFromImage(image) >= 0.5


def unreadable_reason(err: Exception) -> str:
    return f"{REASONS['unreadable']}: {err}"


def resampling_example(cohort: SeriesCohort, target_spacing: float, patients=None):
    """(pre-contrast slice before, after, spacing before, patient, slice) for a patient whose scan is resampled;
    None when every scan already has the target spacing (or the source, e.g. LGG, has no DICOM series).

    The patient is drawn from `patients` (pass the included ones: preprocessing excludes a patient whose pixel data
    cannot be read, which the header scan of `cohort` does not know), default all of `cohort.table`; a patient
    whose series cannot be read is passed over for the next one.
    """
    series = getattr(cohort, "series", None)  # a source without DICOM series (LGG) resamples nothing
    table = cohort.table if patients is None else cohort.table[cohort.table.patient.isin(list(patients))]
    moved = table[table.pixel_spacing.round(4) != round(target_spacing, 4)]
    if moved.empty or not series:
        return None
    for patient in moved.patient:
        try:
            pre = read_series(series[patient]["pre"])
        except UnreadableSeries:
            continue
        z = pre.GetSize()[2] // 2
        after = resample_inplane(pre, target_spacing)
        return (sitk.GetArrayFromImage(pre)[z], sitk.GetArrayFromImage(after)[z], pre.GetSpacing()[0], patient, z)
    return None
