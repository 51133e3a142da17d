"""The Duke collection's acquisition conventions the synthetic cohort follows: the DCE phases and their times, the
scanner protocols of the paper's Table 1 (geometry scaled by SPACING_SCALE, clinical-table codes), and the series
descriptions and numbering each scanner writes, as in the real collection."""
from __future__ import annotations

from dataclasses import dataclass, field

SPACING_SCALE = 0.25  # synthetic matrix = real matrix x 1/4 at the real field of view (Table 1)
PHASES = ("pre", "post1", "post2", "post3", "post4")
PHASE_MINUTES = (0.0, 1.5, 3.0, 4.5, 6.0)  # acquisition time of each phase after injection

# Variant name -> SeriesDescription of [pre, post1, post2, post3, post4], as in the real collection.
SERIES_DESCRIPTIONS: dict[str, list[str]] = {
    "ax dyn": ["ax dyn pre", "ax dyn 1st pass", "ax dyn 2nd pass", "ax dyn 3rd pass", "ax dyn 4th pass"],
    "ax 3d dyn": ["ax 3d dyn pre", "ax 3d dyn 1st pass", "ax 3d dyn 2nd pass", "ax 3d dyn 3rd pass",
                  "ax 3d dyn 4th pass"],
    "Ax Vibrant MultiPhase": ["Ax Vibrant MultiPhase"] + [f"Ph{i}/Ax Vibrant MultiPhase" for i in range(1, 5)],
    "Ph/ax 3d dyn": ["ax 3d dyn"] + [f"Ph{i}/ax 3d dyn" for i in range(1, 5)],
    "1st ax dyn": ["ax 3d pre", "1st ax dyn", "2nd ax dyn", "3rd ax dyn", "4th ax dyn"],
    "t1_fl3d_tra_dynVIEWS_spair": ["t1_fl3d_tra_dynVIEWS_spair"]
    + [f"t1_fl3d_tra_dynVIEWS_spair {n} pass" for n in ("1st", "2nd", "3rd", "4th")],
    # the spelling mix seen in the real folder names (space before 1st, underscore before the later passes)
    "t1_fl3d_tra_dynVIEWS_spair pre": ["t1_fl3d_tra_dynVIEWS_spair pre", "t1_fl3d_tra_dynVIEWS_spair 1st pass"]
    + [f"t1_fl3d_tra_dynVIEWS_spair_{n} pass" for n in ("2nd", "3rd", "4th")],
}
# Variants whose five phases are one series (5 x slices files, InstanceNumber running on phase after phase), told
# apart by TemporalPositionIdentifier only: the description is the variant name.
MULTIPHASE_VARIANTS = ("ax dynamic", "ax 3d dyn MP")
# A non-dynamic T1 series written beside the DCE series for some patients (half the slices, twice as thick), with a
# lower series number than the DCE: a loader that takes "pre" in its name for the pre-contrast phase takes it.
NON_DYNAMIC_DESCRIPTION = "ax t1 pre"
SLICE_NUMBERINGS = ("top-down", "bottom-up")  # InstanceNumber 1 at the largest z (most real scans) or the smallest
_GE_VARIANTS = ("ax dyn", "ax 3d dyn", "Ax Vibrant MultiPhase", "Ph/ax 3d dyn", "1st ax dyn", *MULTIPHASE_VARIANTS)
_SIEMENS_VARIANTS = ("t1_fl3d_tra_dynVIEWS_spair", "t1_fl3d_tra_dynVIEWS_spair pre")


@dataclass(frozen=True)
class Protocol:
    """One scanner protocol of the paper's Table 1, with its synthetic (scaled) geometry and clinical-table codes."""

    name: str
    manufacturer: str  # DICOM Manufacturer
    model: str  # DICOM ManufacturerModelName
    field_t: float
    matrix: int  # real acquisition matrix (square)
    fov_cm: float
    cases: int  # cases of 270 in Table 1
    slice_mm: float  # synthetic slice spacing (4 x the real ~1 mm)
    slices: tuple[int, int]  # inclusive range of the synthetic slice count
    variants: tuple[str, ...]  # keys of SERIES_DESCRIPTIONS this scanner writes
    codes: dict = field(default_factory=dict, compare=False)  # clinical-table codes (legend of header row 3)
    tr_te: tuple[float, float] = (4.3, 2.1)  # ms

    @property
    def rows(self) -> int:
        return int(round(self.matrix * SPACING_SCALE))

    @property
    def pixel_mm(self) -> float:
        return self.fov_cm * 10.0 / self.rows


PROTOCOLS: tuple[Protocol, ...] = (
    Protocol("Signa HDx/HDxt 1.5T", "GE MEDICAL SYSTEMS", "Signa HDxt", 1.5, 350, 38.0, 44, 4.4, (34, 40),
             _GE_VARIANTS, {"Manufacturer": 0, "Manufacturer Model Name": 4, "Field Strength (Tesla)": 1,
                            "Acquisition Matrix": 2, "FOV Computed (Field of View) in cm ": 19}, (6.2, 2.5)),
    Protocol("MAGNETOM Avanto 1.5T", "SIEMENS", "Avanto", 1.5, 448, 36.0, 36, 4.0, (32, 38),
             _SIEMENS_VARIANTS, {"Manufacturer": 2, "Manufacturer Model Name": 0, "Field Strength (Tesla)": 1,
                                 "Acquisition Matrix": 9, "FOV Computed (Field of View) in cm ": 15}, (4.1, 1.4)),
    Protocol("Signa HDx 3T", "GE MEDICAL SYSTEMS", "SIGNA HDx", 3.0, 350, 34.0, 165, 4.4, (34, 40),
             _GE_VARIANTS, {"Manufacturer": 0, "Manufacturer Model Name": 3, "Field Strength (Tesla)": 3,
                            "Acquisition Matrix": 2, "FOV Computed (Field of View) in cm ": 11}, (4.3, 2.1)),
    Protocol("MAGNETOM Trio 3T", "SIEMENS", "TrioTim", 3.0, 448, 36.0, 25, 4.0, (32, 38),
             _SIEMENS_VARIANTS, {"Manufacturer": 2, "Manufacturer Model Name": 7, "Field Strength (Tesla)": 3,
                                 "Acquisition Matrix": 9, "FOV Computed (Field of View) in cm ": 15}, (3.8, 1.4)),
)
