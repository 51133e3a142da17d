"""DICOM series primitives shared by the loaders and the volume reader (`imaging`): the DCE phases, which series is
which phase (`phase_of`, `assign_phases`: the rule of the loader and of the download planner `fetch`), where one
phase lies (`PhaseSeries`), slice headers, splitting a series that holds several phases, and the stable QC reasons.

Nothing here knows a cohort: `cohort` (discovery, QC) imports `imaging` (pixels), both import this module, and no
import goes the other way (tests/test_layout.py checks that radiolib's imports have no cycle).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom

from .descriptor import NO_GRADE, NO_SUBTYPE

PHASES = ("pre", "post1", "post2", "post3")  # the study uses the pre-contrast and the first three post-contrast
# Header keys that tell the phases of one series apart, in order of preference.
SPLIT_KEYS = ("TemporalPositionIdentifier", "AcquisitionNumber", "TriggerTime")
_SLICE_TAGS = ["InstanceNumber", "ImagePositionPatient", "ImageOrientationPatient", *SPLIT_KEYS]

# Stable exclusion reasons (the QC table's `reason` column begins with one of these).
REASONS = {
    "no_label": NO_SUBTYPE,  # "missing label (Mol Subtype blank)"
    "no_grade": NO_GRADE,  # target luminal_a_surrogate only
    "not_in_clinical": "not in the clinical table",
    "no_box": "no annotation box",
    "missing_phase": "missing sequence",
    "discordant": "discordant slice count pre vs post",
    "unreadable": "unreadable DICOM",
    "box_outside": "box outside the volume",
    "slice_numbering": "InstanceNumber missing, duplicated or not 1..N",
    "unsplit_series": "several phases in one series, not separable",
}


class UnreadableSeries(RuntimeError):
    """A series whose files cannot be read as one volume (truncated, not DICOM, inconsistent).

    `reason`, when set, is the patient's full QC text (e.g. for a series whose slices cannot be numbered)."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.reason = f"{REASONS[key]}: {message}" if key else None


IMAGE_UNREADABLE = "unreadable image"  # the QC reason of a slice file of a non-DICOM source (TIFF, JPEG, MATLAB)


class UnreadableImage(UnreadableSeries):
    """A slice file of a non-DICOM source that cannot be read while preprocessing (the LGG release's TIFFs, the
    Figshare cohort's JPEG or MATLAB files); `reason` is its QC text ("unreadable image: ...")."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.reason = f"{IMAGE_UNREADABLE}: {detail}"


def short_error(err: Exception) -> str:
    """The last line of an exception's message (at most 120 characters), for a QC reason."""
    text = str(err).strip().splitlines()
    return (text[-1] if text else type(err).__name__)[:120]


@dataclass(frozen=True)
class PhaseSeries:
    """Where one DCE phase lies: a whole series folder, or (`files` given, in slice-position order) its share of a
    series holding every phase, split by the header key `split_key`."""

    dir: Path
    description: str = ""
    files: tuple[Path, ...] | None = None
    split_key: str = ""

    @property
    def shared(self) -> bool:
        return self.files is not None

    @property
    def name(self) -> str:
        return f"{self.dir.name} (one phase by {self.split_key})" if self.shared else self.dir.name

    def paths(self) -> list[Path]:
        return list(self.files) if self.shared else sorted(self.dir.glob("*.dcm"))


def slice_headers(files: list[Path], name: str) -> pd.DataFrame:
    """One row per file (headers only): instance (InstanceNumber), position (mm along the slice normal, the order
    SimpleITK sorts by) and the phase keys of SPLIT_KEYS (NaN where absent)."""
    rows = []
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True, specific_tags=_SLICE_TAGS)
        except Exception:  # noqa: BLE001 - any parse failure: not a DICOM file
            raise UnreadableSeries(f"{name}/{f.name}: not a DICOM image") from None
        rows.append({"file": f, "instance": header_number(ds.get("InstanceNumber")),
                     "position": slice_position(ds.get("ImagePositionPatient"), ds.get("ImageOrientationPatient")),
                     **{k: header_number(ds.get(k)) for k in SPLIT_KEYS}})
    return pd.DataFrame(rows, columns=["file", "instance", "position", *SPLIT_KEYS])


def slice_position(ipp, iop) -> float:
    """ImagePositionPatient along the slice normal (row x column direction; z without ImageOrientationPatient)."""
    try:
        normal = np.cross(np.asarray(iop[:3], float), np.asarray(iop[3:6], float)) if iop else np.array([0, 0, 1.0])
        return float(np.dot(np.asarray(ipp, float)[:3], normal)) if ipp else np.nan
    except (TypeError, ValueError, IndexError):
        return np.nan


def header_number(value) -> float:
    try:
        return float(value) if value not in (None, "") else np.nan
    except (TypeError, ValueError):
        return np.nan


def split_phases(headers: pd.DataFrame, name: str) -> tuple[str, list[pd.DataFrame]] | None:
    """The phases of a series whose files repeat slice positions: (key, one header table per phase in key order),
    by the first key of SPLIT_KEYS that gives equal phases of distinct positions; None if the positions do not
    repeat (one phase). Raises UnreadableSeries (key `unsplit_series`) naming the series when no key separates them."""
    positions = headers.position.round(3)
    if not positions.duplicated().any():
        return None
    for key in SPLIT_KEYS:
        values = headers[key]
        if values.isna().any() or values.nunique() < 2:
            continue
        groups = [g for _, g in headers.groupby(key, sort=True)]
        if len({len(g) for g in groups}) == 1 and not any(g.position.round(3).duplicated().any() for g in groups):
            return key, groups
    raise UnreadableSeries(f"'{name}' ({len(headers)} files at {positions.nunique()} slice positions; none of "
                           f"{', '.join(SPLIT_KEYS)} separates them)", "unsplit_series")


# A DCE series: its name says dynamic, or (like "ax 3d pre", which precedes "1st ax dyn") says "pre" without naming a
# non-dynamic sequence ("ax t1 pre", "Ax 3D T1 NON FS", "AX IDEAL Breast" are T1 series beside the DCE). Folder names
# drop punctuation ("Ph1ax 3d dyn", "t1fl3dtradynVIEWSspair 1st pass"), so no pattern relies on it.
_DYNAMIC = re.compile(r"dyn|vibrant|multi\s*phase|fl3d|\d\s*(?:st|nd|rd|th)\s*pas|(?<![a-z])ph\s*\d", re.I)
_NON_DYNAMIC = re.compile(r"(?<![a-z0-9])t[12](?![0-9])|tse|fse|ideal|stir|non\s*fs|bilateral|dwi|diff", re.I)
_PRE = re.compile(r"\bpre\b", re.I)
_POST = [re.compile(r"(?<![a-z])ph\s*(\d)", re.I),                 # "Ph1/ax 3d dyn", "Ph1ax 3d dyn"
         re.compile(r"(\d)\s*(?:st|nd|rd|th)\s*pas", re.I),         # "ax dyn 1st pass", "ax dyn 1st pas" (typo)
         re.compile(r"^\s*(\d)\s*(?:st|nd|rd|th)\b", re.I)]         # "1st ax dyn"


def phase_of(description: str) -> str | None:
    """Map a DCE SeriesDescription (or a TCIA folder name) to 'pre', 'post1'.., or None for a non-dynamic series."""
    if not description:
        return None
    if not _DYNAMIC.search(description) and not (_PRE.search(description) and not _NON_DYNAMIC.search(description)):
        return None
    for pattern in _POST:
        m = pattern.search(description)
        if m:
            return f"post{int(m.group(1))}"
    return "pre"


def assign_phases(series: list[dict]) -> dict[str, dict]:
    """One patient's DCE phases (phase -> series) from its series, dicts with `description` and `number`
    (SeriesNumber); the rule of both the loader (`cohort`) and the download planner (`fetch`).

    Phases are named by description (`phase_of`). Where several series read as 'pre', none names a post-contrast
    phase and a description repeats (real Breast_MRI_120: five "ax dyn"; 596: "ax dyn pre", then four "ax dyn"),
    the series are the phases in SeriesNumber order. Otherwise a phase named twice keeps its lowest-numbered series
    (065, 279: two bare names beside Ph2 and Ph3, so post1 stays missing and `missing_phases` names it)."""
    dce = sorted((s for s in series if phase_of(s["description"])), key=lambda s: s["number"])
    named = [phase_of(s["description"]) for s in dce]
    descriptions = [s["description"] for s in dce]
    if set(named) == {"pre"} and len(set(descriptions)) < len(descriptions):
        return {("pre" if i == 0 else f"post{i}"): s for i, s in enumerate(dce)}
    phases: dict[str, dict] = {}
    for phase, s in zip(named, dce):
        phases.setdefault(phase, s)
    return phases


def missing_phases(phases: dict[str, dict]) -> str | None:
    """The exclusion reason naming the study's phases (PHASES) not found, with those found; None if none is missing."""
    missing = [p for p in PHASES if p not in phases]
    if not missing:
        return None
    found = ", ".join(f"{p} '{phases[p]['description']}'" for p in sorted(phases)) or "none"
    return f"{REASONS['missing_phase']}: {', '.join(missing)} (found: {found})"
