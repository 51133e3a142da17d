"""Tumour masks from DICOM SEG objects (IDC's AIMI breast-tumour segmentations, `fetch duke --masks aimi`), placed on
a patient's DCE grid: the loader's volume order (slices ascending along the slice normal, then rows, columns).

A SEG names its source images by SOPInstanceUID; the mask is placed through the series it references, which must be
one of the patient's phases (`TumourMask.phase` says which). Phases share their slice positions (the loader checks
their slice counts and numbering), so a mask on one phase's grid is a mask on every phase's grid.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom

from .series import PhaseSeries, UnreadableSeries, slice_position

MASK_DIR = "AIMI_SEG"  # masks beside the patients, not inside them: the loader reads every series of a patient

MASK_REASON = "unreadable tumour mask (DICOM SEG)"  # the QC reason of a patient whose SEG cannot be placed
MASK_SOURCES = ("AIMI SEG", "box")  # what a patient's handcrafted features and CRFs are measured in (table `mask`)


class UnreadableMask(UnreadableSeries):
    """A patient's SEG file that cannot be read or placed on its DCE grid; `reason` is its QC text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.reason = f"{MASK_REASON}: {message}"


_HEADER_TAGS = ["SOPInstanceUID", "SeriesInstanceUID", "ImagePositionPatient", "ImageOrientationPatient"]


@dataclass(frozen=True)
class TumourMask:
    """A SEG object's mask on the DCE grid (bool, slices x rows x columns), with where it came from."""

    mask: np.ndarray
    phase: str  # the phase whose series the SEG references
    series_uid: str  # that series' SeriesInstanceUID
    description: str  # the SEG's SeriesDescription
    segments: tuple[str, ...]  # its segment labels (combined into one mask)


def position_order(series: PhaseSeries) -> pd.DataFrame:
    """One row per file of a phase, in the loader's slice order: sop (SOPInstanceUID), series_uid, position."""
    rows = []
    for f in series.paths():
        ds = pydicom.dcmread(f, stop_before_pixels=True, specific_tags=_HEADER_TAGS)
        rows.append({"sop": str(ds.get("SOPInstanceUID", "")), "series_uid": str(ds.get("SeriesInstanceUID", "")),
                     "position": slice_position(ds.get("ImagePositionPatient"), ds.get("ImageOrientationPatient"))})
    return pd.DataFrame(rows, columns=["sop", "series_uid", "position"]).sort_values("position", kind="stable")


def read_mask(seg_file: str | Path, phases: dict[str, PhaseSeries]) -> TumourMask:
    """The SEG's segments, combined, on the grid of the phase whose images it references (by SOPInstanceUID, so
    also one phase of a series holding every phase); UnreadableSeries naming the referenced series when it is none
    of `phases`."""
    import highdicom as hd  # lazy: optional package (the fetch extra)
    seg = hd.seg.segread(seg_file)
    sources = seg.get_source_image_uids()
    referenced = {sop for _, _, sop in sources}
    for phase, series in phases.items():
        headers = position_order(series)
        if referenced & set(headers.sop):
            pixels = seg.get_pixels_by_source_instance(list(headers.sop), combine_segments=True,
                                                       assert_missing_frames_are_empty=True)
            labels = tuple(seg.get_segment_description(n).segment_label for n in seg.get_segment_numbers())
            return TumourMask(pixels > 0, phase, headers.series_uid.iloc[0], str(seg.get("SeriesDescription", "")),
                              labels)
    series_uids = sorted({series_uid for _, series_uid, _ in sources})
    raise UnreadableSeries(f"{Path(seg_file).name}: the SEG references series {series_uids}, none of the phases "
                           f"{', '.join(phases)}")


def seg_files(root: str | Path, patient: str) -> list[Path]:
    """A patient's SEG files as `fetch --masks aimi` lays them out (<root>/AIMI_SEG/<patient>/<study>/<series>/)."""
    return sorted((Path(root) / MASK_DIR / patient).glob("*/*/*.dcm"))


def patient_mask(root: str | Path, patient: str, phases: dict[str, PhaseSeries]) -> TumourMask | None:
    """The patient's preferred mask (`preferred`) from its SEG files under <root>/AIMI_SEG; None without any.
    UnreadableMask naming the patient and the file when one cannot be read or placed (a partial download, a
    damaged file, a SEG of another series): a QC reason, never a crash."""
    masks = []
    for f in seg_files(root, patient):
        try:
            masks.append(read_mask(f, phases))
        except Exception as err:  # noqa: BLE001 - any failure of a SEG file is this patient's QC reason
            text = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise UnreadableMask(f"{patient}: {Path(f).name}: {text} (fetch it again, or delete the patient's "
                                 f"{MASK_DIR}/{patient} folder to measure in the box)") from None
    return preferred(masks)


def preferred(masks: list[TumourMask]) -> TumourMask | None:
    """A radiologist-corrected segmentation where the patient has one (AIMI: "... radiologist N corrected
    segmentation"), else the AI's; None without any."""
    corrected = [m for m in masks if "corrected" in m.description.lower()]
    return (corrected or masks or [None])[0]


def mask_source(table: pd.DataFrame) -> dict | None:
    """Which region each included patient's handcrafted features and CRFs are measured in, from the loader's table
    (column `mask`): {"AIMI SEG": n, "box": m, "patients": {source: [patients]}}; None when no patient has a SEG
    (every region is the box, as before masks existed: nothing to record)."""
    sources = table["mask"] if "mask" in table else pd.Series(MASK_SOURCES[1], index=table.index)
    if not (sources == MASK_SOURCES[0]).any():
        return None
    patients = {s: sorted(map(str, table.patient[sources == s])) for s in MASK_SOURCES}
    return {**{s: len(p) for s, p in patients.items()}, "patients": patients}


def mask_sentence(source: dict | None) -> str | None:
    """The deviation sentence of `mask_source`, None without masks."""
    if source is None:
        return None
    return (f"tumour region of the handcrafted features and CRFs: the patient's {MASK_SOURCES[0]} tumour mask for "
            f"{source[MASK_SOURCES[0]]} patients, the annotation box for {source[MASK_SOURCES[1]]} without one")
