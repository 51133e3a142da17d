"""Reading one patient's DCE series, resampling in-plane to the target spacing, and the subtraction channels."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import SimpleITK as sitk

from .cohort import PHASES, REASONS, Cohort


BODY_THRESHOLD = 0.15  # pre-contrast signal above this fraction of its 99th percentile counts as body tissue


class UnreadableSeries(RuntimeError):
    """A series whose files cannot be read as one volume (truncated, not DICOM, inconsistent)."""


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

    def central_region(self) -> pd.Series:
        """The region on the middle slice of the largest lesion (by summed area): what figures show."""
        area = self.regions.h * self.regions.w
        lesion = area.groupby(self.regions.lesion).sum().idxmax()
        rows = self.regions[self.regions.lesion == lesion]
        return rows.iloc[len(rows) // 2]


def read_series(series_dir) -> sitk.Image:
    """Read one DICOM series with SimpleITK, sorted by slice position; every .dcm file must be part of it."""
    files = sorted(series_dir.glob("*.dcm"))
    names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(series_dir))
    if len(names) != len(files):
        bad = sorted({f.name for f in files} - {n.rsplit("/", 1)[-1] for n in names})
        raise UnreadableSeries(f"{series_dir.name}/{bad[0] if bad else '?'}: not a DICOM image "
                               f"({len(files) - len(names)} of {len(files)} files)")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(names)
    try:
        return reader.Execute()
    except RuntimeError as err:
        first = str(err).strip().splitlines()[-1][:120]
        raise UnreadableSeries(f"{series_dir.name}: {first}") from None


def read_phases(cohort: Cohort, patient: str) -> dict[str, sitk.Image]:
    """The pre-contrast and first three post-contrast volumes of a patient, as SimpleITK images."""
    return {p: read_series(cohort.series[patient][p]) for p in PHASES}


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


def box_regions(boxes: pd.DataFrame, factor: float) -> pd.DataFrame:
    """Per lesion and slice: centre and size in the resampled grid (1-based inclusive boxes -> 0-based voxels)."""
    rows = []
    for _, b in boxes.iterrows():
        y0, y1 = (b["Start Row"] - 1) * factor, (b["End Row"] - 1) * factor
        x0, x1 = (b["Start Column"] - 1) * factor, (b["End Column"] - 1) * factor
        for z in range(int(b["Start Slice"]) - 1, int(b["End Slice"])):
            rows.append({"lesion": int(b["lesion"]), "slice": z, "cy": (y0 + y1) / 2, "cx": (x0 + x1) / 2,
                         "h": y1 - y0 + factor, "w": x1 - x0 + factor})
    return pd.DataFrame(rows, columns=["lesion", "slice", "cy", "cx", "h", "w"])


def prepare(cohort: Cohort, patient: str, target_spacing: float) -> Volume:
    """Read, resample to the target in-plane spacing, subtract: the paper's preprocessing for one patient."""
    phases = read_phases(cohort, patient)
    spacing = phases["pre"].GetSpacing()
    factor = spacing[0] / target_spacing
    if abs(factor - 1) > 1e-3:
        phases = {p: resample_inplane(img, target_spacing) for p, img in phases.items()}
    channels = subtraction_channels(phases)
    regions = box_regions(cohort.boxes[cohort.boxes.patient == patient], factor)
    pre = sitk.GetArrayViewFromImage(phases["pre"])
    body = pre > BODY_THRESHOLD * np.percentile(pre, 99)
    return Volume(patient, channels, (spacing[2], target_spacing, target_spacing), regions, body)


def unreadable_reason(err: Exception) -> str:
    return f"{REASONS['unreadable']}: {err}"


def resampling_example(cohort: Cohort, target_spacing: float, patients=None):
    """(pre-contrast slice before, after, spacing before, patient, slice) for a patient whose scan is resampled;
    None when every scan already has the target spacing (or the data has no DICOM series).

    The patient is drawn from `patients` (pass the included ones: preprocessing excludes a patient whose pixel data
    cannot be read, which the header scan of `cohort` does not know), default all of `cohort.table`; a patient
    whose series cannot be read is passed over for the next one.
    """
    table = cohort.table if patients is None else cohort.table[cohort.table.patient.isin(list(patients))]
    moved = table[table.pixel_spacing.round(4) != round(target_spacing, 4)]
    if moved.empty or not cohort.series:
        return None
    for patient in moved.patient:
        try:
            pre = read_series(cohort.series[patient]["pre"])
        except UnreadableSeries:
            continue
        z = pre.GetSize()[2] // 2
        after = resample_inplane(pre, target_spacing)
        return (sitk.GetArrayFromImage(pre)[z], sitk.GetArrayFromImage(after)[z], pre.GetSpacing()[0], patient, z)
    return None
