"""A synthetic radiogenomic DCE-MRI cohort written in the public Duke-Breast-Cancer-MRI layout.

The study's embedded default data: DICOM series (pre-contrast and four post-contrast phases per patient), the
annotation boxes, the clinical table, gene expression and ground-truth sidecars, readable by the same loader as a
real download (`radiolib.cohort`). Lesion kinetics depend on the molecular subtype through `effect`
(0 = a null cohort). The parameter stage (`simulate_truth`) draws every patient and lesion without rendering;
`synthesize` renders the volumes and writes the files. Same seed, same bytes.
"""
from __future__ import annotations

import io
import json
import os
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from .cache import staging_dir

GENERATOR = "radiolib.synth"
VERSION = "1.2"
SPACING_SCALE = 0.25  # synthetic matrix = real matrix x 1/4 at the real field of view (Table 1)
PHASES = ("pre", "post1", "post2", "post3", "post4")
PHASE_MINUTES = (0.0, 1.5, 3.0, 4.5, 6.0)  # acquisition time of each phase after injection
TABLE_NAMES = ("Annotation_Boxes.csv", "Clinical_and_Other_Features.xlsx", "synthetic_truth.csv",
               "synthetic_lesions.csv", "gene_expression.csv")  # what _write_tables writes beside cohort.json
FAULTS = ("missing_phase", "discordant_slices", "truncated_dicom", "not_dicom", "box_outside", "missing_label")
KINETIC_CLASSES = ("persistent", "plateau", "washout")

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

# Derived once from the real Clinical_and_Other_Features.xlsx (922 patients): Mol Subtype 1/2/3 counts among the
# non-luminal, and the ER/PR combinations within subtypes 0 and 1 (HER2 is 0 for subtype 0, 1 for 1 and 2).
_NONLUMINAL_COUNTS = {1: 104, 2: 59, 3: 164}
_ER_PR_COUNTS = {0: {(1, 1): 508, (1, 0): 77, (0, 1): 10}, 1: {(1, 1): 77, (1, 0): 24, (0, 1): 3}}
_GRADE_BLANK = 284 / 922  # Nottingham grade is blank for 284 of the 922 patients (as often in every subtype)
# Log-normal fit of the real Annotation_Boxes.csv (922 boxes): log-mean/log-sd of height, width (px at ~0.8 mm)
# and slices (~1 mm), and the correlation of the three log sizes. Converted to mm below.
_BOX_LOG_MEAN_MM = np.array([3.03, 3.72 + np.log(0.8), 3.58 + np.log(0.8)])  # (z, y, x)
_BOX_LOG_SD = np.array([0.64, 0.60, 0.55])
_BOX_LOG_CORR = np.array([[1.0, 0.81, 0.83], [0.81, 1.0, 0.87], [0.83, 0.87, 1.0]])
_SIZE_CLIP_MM = (5.0, 80.0)
_LESION_COUNT_P = (0.5, 0.2, 0.13, 0.1, 0.07)  # 1..5 lesions per patient

# Subtype shifts of the patient latents (multiplied by `effect`): proliferation drives wash-in, peak and washout,
# immune infiltration drives rim enhancement, and the log lesion size. 0 = luminal A ... 3 = triple negative.
_SHIFT_PROLIF = {0: -0.6, 1: 0.15, 2: 0.45, 3: 0.65}
_SHIFT_IMMUNE = {0: -0.4, 1: 0.0, 2: 0.3, 3: 0.6}
_SHIFT_LOGSIZE = {0: -0.12, 1: 0.0, 2: 0.08, 3: 0.15}
# Subtype shifts of the gene-expression programmes (fixed: genes stay linked to subtype whatever `effect`).
_GENE_SHIFT_PROLIF = {0: -0.9, 1: 0.2, 2: 0.6, 3: 1.0}
_GENE_SHIFT_IMMUNE = {0: -0.4, 1: 0.0, 2: 0.3, 3: 0.7}

GENE_SETS: dict[str, tuple[str, ...]] = {
    "luminal": ("ESR1", "PGR", "GATA3", "FOXA1", "XBP1", "TFF1", "TFF3", "AGR2", "CA12", "SCUBE2", "NAT1", "BCL2",
                "MYB", "SLC39A6"),
    "her2": ("ERBB2", "GRB7", "STARD3", "PGAP3", "MIEN1", "TCAP", "PNMT"),
    "basal": ("KRT5", "KRT14", "KRT17", "EGFR", "FOXC1", "SFRP1", "MIA", "CDH3", "KRT6B"),
    "proliferation": ("MKI67", "AURKA", "BIRC5", "CCNB1", "TOP2A", "MYBL2", "BUB1", "CENPF", "CDC20", "UBE2C",
                      "PTTG1", "RRM2", "TYMS", "CEP55", "MELK", "KIF2C", "CCNE1", "ORC6"),
    "immune": ("CD8A", "GZMB", "PRF1", "CXCL9", "CXCL10", "IFNG", "CD274", "LCK", "CD3E", "GZMA", "NKG7", "CCL5",
               "IDO1", "CD2"),
}
_N_GENES = 300

_FAMILY = ("Whitfield", "Okafor", "Lindqvist", "Marchetti", "Haldane", "Brannigan", "Castellanos", "Dufresne",
           "Ekwueme", "Fairbrother", "Galloway", "Hargreave", "Iverson", "Jablonski", "Kowalczyk", "Lachance",
           "Montrose", "Nakagawa", "Oyelaran", "Pemberton", "Quesada", "Rasmussen", "Szabo", "Thistlewood",
           "Underhill", "Valdivia", "Wexford", "Yarborough", "Zielinski", "Abernathy", "Beauchamp", "Cartwright")
_GIVEN = ("Adelaide", "Beatrix", "Cordelia", "Dolores", "Eleanor", "Florence", "Genevieve", "Harriet", "Imogen",
          "Josephine", "Katarina", "Lucinda", "Marguerite", "Nadia", "Ottilie", "Penelope", "Rosalind", "Sabine",
          "Theodora", "Ursula", "Veronica", "Winifred", "Yolanda", "Zenobia", "Annelise", "Bernadette", "Clementine",
          "Delphine", "Esmeralda", "Felicity", "Gwendolyn", "Henrietta")

_STUDY_DATE = date(1990, 1, 1)  # TCIA date-shifted study date, the same for every synthetic patient
_STUDY_DESCRIPTION = "MRI BREAST BILATERAL W & WO"
_PHASE_TIMES = ("120000.000000", "120130.000000", "120300.000000", "120430.000000", "120600.000000")
_FIXED_DATETIME = datetime(1990, 1, 1, 0, 0, 0)
_MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


@dataclass
class Lesion:
    """One lesion: centre in voxels (z, y, x) of the pre-contrast grid, radii in mm, and its enhancement kinetics."""

    lesion: int
    side: str  # "L" or "R" (patient left = +x)
    centre: tuple[float, float, float]
    radii_mm: tuple[float, float, float]
    wash_in: float  # 1/min, rate of the initial rise
    peak: float  # relative enhancement (S - S0) / S0 at the plateau
    washout: float  # fraction of the signal lost from 1.5 to 6 min (negative: continued rise)
    rim: float  # 0..1, how much more the periphery enhances than the core
    heterogeneity: float  # 0..1, voxelwise variation of the enhancement
    irregularity: float  # margin irregularity (relative radius modulation)

    @property
    def kinetic_class(self) -> str:
        """The late-phase curve type of the lesion's mean curve (>+10% persistent, <-10% washout)."""
        early, late = _kinetic(np.array([1.5, 6.0]), self.wash_in, self.washout)
        change = late / early - 1.0
        return "persistent" if change > 0.1 else "washout" if change < -0.1 else "plateau"


@dataclass
class PatientSpec:
    """Everything drawn for one patient before rendering (the parameter stage)."""

    index: int
    patient: str
    subtype: int
    protocol: Protocol
    variant: str
    slices: int
    numbering: str  # one of SLICE_NUMBERINGS
    patient_position: str  # DICOM PatientPosition: "FFP" or "HFP"
    extra_series: str  # description of the non-dynamic series written beside the DCE ("" = none)
    fault: str
    fault_detail: dict
    name: str
    birth_date: str
    age: int
    series_base: int
    folder_ids: tuple[int, ...]  # study then 5 series: the random 5 digits of the TCIA folder names
    anatomy: dict
    prolif: float
    immune: float
    prolif_noise: float
    immune_noise: float
    receptors: tuple[int, int, int]  # ER, PR, HER2
    lesions: list[Lesion]
    clinical: dict

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.slices, self.protocol.rows, self.protocol.rows


# ----------------------------------------------------------------------------------------------------------------
# Public entry points


def synthesize(out: str | Path, patients: int = 270, seed: int = 0, effect: float = 1.0,
               faults: bool | Sequence[str] = False, n_jobs: int = 1, progress: bool = True, *,
               _max_slices: int | None = None) -> Path:
    """Write the synthetic cohort into `out` (atomically) and return its path; reuse it if already complete.

    `effect` scales the subtype -> lesion-phenotype signal (0 = null cohort); `faults` injects the paper's exclusion
    reasons, one per patient among the last ones; `n_jobs` renders patients in parallel (same bytes for any value).
    `_max_slices` caps the slice count (small test cohorts).
    """
    out = Path(out)
    fault_list = _check_args(patients, seed, effect, faults, n_jobs, _max_slices)
    params = {"patients": int(patients), "seed": int(seed), "effect": float(effect), "faults": fault_list,
              "max_slices": _max_slices}
    if _is_complete(out, params):
        return out
    check_replaceable(out, GENERATOR, ".dcm", TABLE_NAMES)
    specs = _draw_cohort(patients, seed, float(effect), fault_list, _max_slices)
    with staging_dir(out) as tmp:  # replaces an earlier cohort only once this one is complete
        results = _render_all(specs, tmp, seed, json.dumps(params, sort_keys=True), n_jobs, progress)
        _write_tables(tmp, specs, results, seed, params)
    return out


def simulate_truth(patients: int = 270, seed: int = 0, effect: float = 1.0,
                   faults: bool | Sequence[str] = False, *, _max_slices: int | None = None
                   ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The ground-truth tables of a cohort without rendering images: (patients, lesions, gene expression).

    Identical to synthetic_truth.csv, synthetic_lesions.csv and gene_expression.csv written by `synthesize`.
    """
    fault_list = _check_args(patients, seed, effect, faults, 1, _max_slices)
    specs = _draw_cohort(patients, seed, float(effect), fault_list, _max_slices)
    return _truth_table(specs), _lesion_table(specs), _gene_table(specs, seed)


def fake_identities(root: str | Path) -> set[str]:
    """The fake patient names and birth dates in the DICOM headers (one readable file per patient).

    Each name is returned as written ("Family^Given") and as "Given Family"; each birth date as YYYYMMDD and
    YYYY-MM-DD, so tests can check that no output (tables, notebooks, results) shows them.
    """
    import pydicom
    found: set[str] = set()
    for pdir in sorted(Path(root).glob("Breast_MRI_*")):
        for f in sorted(pdir.rglob("*.dcm")):
            try:
                ds = pydicom.dcmread(f, stop_before_pixels=True)
                name, born = str(ds.PatientName), str(ds.PatientBirthDate)
            except Exception:  # noqa: BLE001 - the injected faults make some files unreadable
                continue
            family, _, given = name.partition("^")
            found |= {name, f"{given} {family}".strip(), born, f"{born[:4]}-{born[4:6]}-{born[6:]}"}
            break
    return found


# ----------------------------------------------------------------------------------------------------------------
# Parameter stage: cohort plan and per-patient draws (no rendering)


def check_cohort_args(patients, seed, effect) -> None:
    """The arguments every synthetic cohort takes: clear errors naming the bad one."""
    if not isinstance(patients, (int, np.integer)) or patients < 1:
        raise ValueError(f"patients must be a positive integer, got {patients!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not np.isfinite(effect) or effect < 0:
        raise ValueError(f"effect must be a finite number >= 0, got {effect!r}")


def _check_args(patients, seed, effect, faults, n_jobs, max_slices) -> list[str]:
    check_cohort_args(patients, seed, effect)
    if not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a non-zero integer (-1 = all cores), got {n_jobs!r}")
    if max_slices is not None and max_slices < 4:
        raise ValueError(f"_max_slices must be at least 4, got {max_slices!r}")
    if faults is True:
        fault_list = list(FAULTS)
    elif faults is False or faults is None:
        fault_list = []
    else:
        fault_list = [faults] if isinstance(faults, str) else list(faults)
    unknown = [f for f in fault_list if f not in FAULTS]
    if unknown:
        raise ValueError(f"unknown fault(s) {unknown}; valid names: {list(FAULTS)}")
    if len(set(fault_list)) != len(fault_list):
        raise ValueError(f"each fault may be injected once, got {fault_list}")
    if fault_list and patients <= len(fault_list):
        raise ValueError(f"{len(fault_list)} faults need more than {len(fault_list)} patients (the first patient "
                         f"stays clean), got patients={patients}")
    return fault_list


def _rng(seed: int, *key: int) -> np.random.Generator:
    """An independent stream per (purpose, patient, ...): results do not depend on order or n_jobs."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _largest_remainder(weights: Sequence[float], total: int) -> list[int]:
    """Integer counts summing to `total` in the proportions of `weights` (Hamilton's method)."""
    w = np.asarray(weights, float)
    exact = w / w.sum() * total
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts.tolist()


def _draw_cohort(patients: int, seed: int, effect: float, faults: list[str],
                 max_slices: int | None) -> list[PatientSpec]:
    """Cohort plan (exact subtype and scanner proportions, shuffled; faults on the last patients), then patients."""
    rng = _rng(seed, 0)
    n_lum = round(patients / 3)
    other = _largest_remainder(list(_NONLUMINAL_COUNTS.values()), patients - n_lum)
    subtypes = rng.permutation(np.repeat([0, 1, 2, 3], [n_lum, *other]))
    per_protocol = _largest_remainder([p.cases for p in PROTOCOLS], patients)
    protocols = rng.permutation(np.repeat(np.arange(len(PROTOCOLS)), per_protocol))
    fault_of = {patients - len(faults) + i: f for i, f in enumerate(faults)}
    return [_draw_patient(i, int(subtypes[i]), PROTOCOLS[protocols[i]], fault_of.get(i, ""), seed, effect,
                          max_slices) for i in range(patients)]


def _draw_patient(index: int, subtype: int, protocol: Protocol, fault: str, seed: int, effect: float,
                  max_slices: int | None) -> PatientSpec:
    meta, anat_rng, kin, geo = (_rng(seed, 1, index, k) for k in range(4))
    slices = int(meta.integers(protocol.slices[0], protocol.slices[1] + 1))
    if max_slices is not None:
        slices = min(slices, max_slices)
    variant = protocol.variants[int(meta.integers(len(protocol.variants)))]
    if fault and variant in MULTIPHASE_VARIANTS:  # the faults are written into per-phase series
        variant = protocol.variants[0]
    series_rng = _rng(seed, 1, index, 5)
    # Siemens scans are head first for 163 of 295 real patients (Clinical_and_Other_Features.xlsx), GE never
    position = "HFP" if protocol.manufacturer == "SIEMENS" and series_rng.random() < 163 / 295 else "FFP"
    extra = NON_DYNAMIC_DESCRIPTION if series_rng.random() < 0.3 else ""
    age = int(np.clip(round(meta.normal(53, 11)), 26, 85))
    born = _STUDY_DATE - timedelta(days=int(age * 365.25 + meta.integers(0, 365)))
    name = f"{_FAMILY[meta.integers(len(_FAMILY))]}^{_GIVEN[meta.integers(len(_GIVEN))]}"
    folder_ids = tuple(int(v) for v in meta.integers(10000, 100000, size=6))
    series_base = int(meta.integers(3, 10))
    n_lesions = int(meta.choice(5, p=_LESION_COUNT_P)) + 1
    receptors = _draw_receptors(subtype, meta)
    fault_detail = _draw_fault_detail(fault, slices, meta)

    anatomy = _draw_anatomy(protocol, slices, anat_rng)
    u_p, u_i = kin.standard_normal(2)
    prolif = effect * _SHIFT_PROLIF[subtype] + u_p
    immune = effect * _SHIFT_IMMUNE[subtype] + u_i
    lesions = _draw_lesions(n_lesions, subtype, effect, prolif, immune, protocol, slices, anatomy, kin, geo)
    numbering = SLICE_NUMBERINGS[int(index % 5 == 1)]  # 1 in 5 bottom-up, fixed so small cohorts have both
    spec = PatientSpec(index=index, patient=f"Breast_MRI_{index + 1:03d}", subtype=subtype, protocol=protocol,
                       variant=variant, slices=slices, numbering=numbering, patient_position=position,
                       extra_series=extra, fault=fault, fault_detail=fault_detail, name=name,
                       birth_date=born.strftime("%Y%m%d"), age=age, series_base=series_base, folder_ids=folder_ids,
                       anatomy=anatomy, prolif=float(prolif), immune=float(immune), prolif_noise=float(u_p),
                       immune_noise=float(u_i), receptors=receptors, lesions=lesions, clinical={})
    spec.clinical = _draw_clinical(spec, meta)
    return spec


def _draw_receptors(subtype: int, rng: np.random.Generator) -> tuple[int, int, int]:
    """ER, PR, HER2 consistent with the Mol Subtype, in the real table's proportions."""
    u = rng.random()  # drawn for every subtype, so the patient's later draws never depend on the subtype
    if subtype in _ER_PR_COUNTS:
        counts = _ER_PR_COUNTS[subtype]
        cumulative = np.cumsum(list(counts.values())) / sum(counts.values())
        er, pr = list(counts)[int(np.searchsorted(cumulative, u, side="right"))]
        return er, pr, int(subtype == 1)
    return 0, 0, int(subtype == 2)


def _draw_fault_detail(fault: str, slices: int, rng: np.random.Generator) -> dict:
    """Which series / file / lesion the fault hits (recorded in cohort.json)."""
    if fault in ("missing_phase", "discordant_slices"):
        detail = {"phase": PHASES[int(rng.integers(1, 4))]}
        if fault == "discordant_slices":
            detail["slices_written"] = slices - max(2, slices // 8)
        return detail
    if fault in ("truncated_dicom", "not_dicom"):
        return {"phase": PHASES[int(rng.integers(0, 4))], "slice": int(rng.integers(1, slices + 1))}
    if fault == "box_outside":
        return {"lesion": 1, "axis": "row"}
    return {}


def _draw_anatomy(protocol: Protocol, slices: int, rng: np.random.Generator) -> dict:
    """Body geometry in mm (origin at the FOV centre, y anterior -> posterior) and tissue/physics parameters."""
    fov = protocol.fov_cm * 10.0
    chest_y = fov * rng.uniform(0.0, 0.08)
    gap = rng.uniform(8, 30)
    half_width = min(rng.uniform(60, 85), (fov / 2 - 8 - gap / 2) / 2.16)  # both breasts inside the FOV
    depth = min(rng.uniform(85, 140), chest_y + fov / 2 - 18)
    slab = slices * protocol.slice_mm
    return {
        "chest_y": chest_y,
        "breasts": [(s * (half_width + gap / 2), half_width * rng.uniform(0.92, 1.08), depth * rng.uniform(0.9, 1.0))
                    for s in (-1.0, 1.0)],  # (x centre, half-width, depth) for the right (-x) and left (+x) breast
        "half_length": slab * rng.uniform(0.55, 0.7),
        "heart": (rng.uniform(-5, 30), chest_y + rng.uniform(55, 75), rng.uniform(40, 55), rng.uniform(30, 40)),
        "fgt_density": rng.uniform(0.15, 0.55),
        "bpe": rng.uniform(0.03, 0.25),
        "noise": rng.uniform(7, 14),
        "gain": rng.uniform(0.85, 1.15),
        "coil_lr": rng.uniform(-0.15, 0.15),
        "coil_falloff": rng.uniform(60, 110),
        "table_z": rng.uniform(-40, 40),
    }


def _draw_lesions(n: int, subtype: int, effect: float, prolif: float, immune: float, protocol: Protocol,
                  slices: int, anatomy: dict, kin: np.random.Generator, geo: np.random.Generator) -> list[Lesion]:
    """Lesion sizes from the real boxes' log-normal fit, positions inside a breast, kinetics from the latents."""
    dz, dx = protocol.slice_mm, protocol.pixel_mm
    fov = protocol.fov_cm * 10.0
    slab = slices * dz
    index_side = int(geo.integers(2))
    lesions: list[Lesion] = []
    for j in range(n):
        z_n = geo.multivariate_normal(np.zeros(3), _BOX_LOG_CORR)
        log_d = _BOX_LOG_MEAN_MM + _BOX_LOG_SD * z_n + effect * _SHIFT_LOGSIZE[subtype] - (0.7 if j else 0.0)
        radii = np.clip(np.exp(log_d), *_SIZE_CLIP_MM) / 2.0
        radii[0] = min(radii[0], (slab / 2 - dz) / 1.4)  # the lesion must fit the slab (small test volumes)
        side = index_side if (j == 0 or geo.random() < 0.7) else 1 - index_side
        centre = _place(radii, side, anatomy, lesions, dz, dx, slab, fov, geo)
        e = kin.standard_normal(6)
        lesions.append(Lesion(
            lesion=j + 1, side="RL"[side], centre=centre, radii_mm=tuple(float(r) for r in radii),
            wash_in=float(1.2 * np.exp(0.35 * prolif + 0.25 * e[0])),
            peak=float(1.3 * np.exp(0.2 * prolif + 0.2 * e[1])),
            washout=float(np.clip(0.08 + 0.12 * prolif + 0.08 * e[2], -0.4, 0.5)),
            rim=float(_sigmoid(-1.0 + 0.9 * immune + 0.6 * e[3])),
            heterogeneity=float(_sigmoid(-0.5 + 0.4 * prolif + 0.6 * e[4])),
            irregularity=float(0.08 + 0.22 * _sigmoid(0.5 * prolif + e[5]))))
    return lesions


def _place(radii: np.ndarray, side: int, anatomy: dict, placed: list[Lesion], dz: float, dx: float, slab: float,
           fov: float, rng: np.random.Generator) -> tuple[float, float, float]:
    """A centre (z, y, x voxels) inside the breast, the lesion's extent inside the volume, apart from earlier ones."""
    reach = 1.4 * radii + np.array([dz, dx, dx])  # irregular margin + one voxel
    xc, hw, depth = anatomy["breasts"][side]
    centre_mm = None
    for _ in range(60):
        z = rng.uniform(-slab / 2 + reach[0], slab / 2 - reach[0])
        prof = _breast_profile(z, anatomy["half_length"])
        u, v = rng.uniform(-0.75, 0.75), rng.uniform(0.15, 0.8)
        if u * u + v * v > 0.7:
            continue
        y = float(np.clip(anatomy["chest_y"] - v * depth * prof, -fov / 2 + reach[1], fov / 2 - reach[1]))
        x = float(np.clip(xc + u * hw * prof, -fov / 2 + reach[2], fov / 2 - reach[2]))
        centre_mm = np.array([z, y, x])
        if all(np.linalg.norm(centre_mm - _centre_mm(les, dz, dx, slab, fov)) > 1.1 * (max(radii) + max(les.radii_mm))
               for les in placed):
            break
    if centre_mm is None:  # pragma: no cover - 60 rejections of the half-disc in a row
        centre_mm = np.array([0.0, anatomy["chest_y"] - depth / 2, xc])
    z, y, x = centre_mm
    return ((z + slab / 2) / dz - 0.5, (y + fov / 2) / dx - 0.5, (x + fov / 2) / dx - 0.5)


def _centre_mm(les: Lesion, dz: float, dx: float, slab: float, fov: float) -> np.ndarray:
    cz, cy, cx = les.centre
    return np.array([(cz + 0.5) * dz - slab / 2, (cy + 0.5) * dx - fov / 2, (cx + 0.5) * dx - fov / 2])


def _draw_clinical(spec: PatientSpec, rng: np.random.Generator) -> dict[str, object]:
    """The clinical-table row (coded as in the real legend); columns not set stay blank."""
    er, pr, her2 = spec.receptors
    index_lesion = spec.lesions[0]
    size_cm = 2 * max(index_lesion.radii_mm) / 10
    fov = spec.protocol.fov_cm * 10
    dx = spec.protocol.pixel_mm
    x0 = y0 = -fov / 2 + dx / 2
    row = {
        "Patient ID": spec.patient,
        "Days to MRI (From the Date of Diagnosis)": int(rng.integers(1, 60)),
        **spec.protocol.codes,
        "Patient Position During MRI": {"FFP": 0, "HFP": 1}[spec.patient_position],
        "Image Position of Patient": f"{x0:.4f} X {y0:.4f} X {_slice_z(spec, _index_of(spec, 1, spec.slices)):.4f}",
        "Contrast Agent": int(rng.choice([1, 3], p=[0.65, 0.35])),
        "TR (Repetition Time)": spec.protocol.tr_te[0],
        "TE (Echo Time)": spec.protocol.tr_te[1],
        "Flip Angle \n": 2,
        "Date of Birth (Days)": -int(spec.age * 365.25),
        "Menopause (at diagnosis)": int(spec.age >= 51),
        "Race and Ethnicity": int(rng.choice([1, 2, 3, 5], p=[0.72, 0.22, 0.03, 0.03])),
        "Metastatic at Presentation (Outside of Lymph Nodes)": int(rng.random() < 0.03),
        "ER": er, "PR": pr, "HER2": her2,
        "Mol Subtype": None if spec.fault == "missing_label" else spec.subtype,
        "Staging(Tumor Size)# [T]": 1 if size_cm <= 2 else 2 if size_cm <= 5 else 3,
        "Nottingham grade": int(np.clip(2 + round(spec.prolif * 0.8), 1, 3)),
        "Histologic type": 1,
        "Tumor Location": index_lesion.side,
        "Multicentric/Multifocal": int(len(spec.lesions) > 1),
        "Contralateral Breast Involvement": int(any(les.side != index_lesion.side for les in spec.lesions)),
    }
    if rng.random() < _GRADE_BLANK:  # drawn last, so every other column keeps its value
        row["Nottingham grade"] = None
    return row


# ----------------------------------------------------------------------------------------------------------------
# Truth tables and gene expression


def _truth_table(specs: list[PatientSpec]) -> pd.DataFrame:
    rows = [{"patient": s.patient, "mol_subtype": s.subtype, "luminal_a": int(s.subtype == 0),
             "scanner": s.protocol.name, "manufacturer": s.protocol.manufacturer, "model": s.protocol.model,
             "field_strength": s.protocol.field_t, "rows": s.protocol.rows, "columns": s.protocol.rows,
             "slices": s.slices, "pixel_spacing_mm": round(s.protocol.pixel_mm, 4),
             "slice_spacing_mm": s.protocol.slice_mm, "n_lesions": len(s.lesions), "series_variant": s.variant,
             "slice_numbering": s.numbering, "patient_position": s.patient_position, "extra_series": s.extra_series,
             "proliferation": round(s.prolif, 4), "immune": round(s.immune, 4), "fault": s.fault}
            for s in specs]
    return pd.DataFrame(rows)


def _lesion_table(specs: list[PatientSpec]) -> pd.DataFrame:
    rows = []
    for s in specs:
        for les in s.lesions:
            rows.append({"patient": s.patient, "lesion": les.lesion, "side": les.side,
                         "centre_z": round(les.centre[0], 3), "centre_y": round(les.centre[1], 3),
                         "centre_x": round(les.centre[2], 3), "radius_z_mm": round(les.radii_mm[0], 3),
                         "radius_y_mm": round(les.radii_mm[1], 3), "radius_x_mm": round(les.radii_mm[2], 3),
                         "kinetic_class": les.kinetic_class, "wash_in": round(les.wash_in, 4),
                         "peak": round(les.peak, 4), "washout": round(les.washout, 4), "rim": round(les.rim, 4),
                         "heterogeneity": round(les.heterogeneity, 4), "irregularity": round(les.irregularity, 4)})
    return pd.DataFrame(rows)


def _gene_table(specs: list[PatientSpec], seed: int) -> pd.DataFrame:
    """log2 expression: subtype programmes (receptor status, amplicon, basal) plus the proliferation and immune
    latents shared with the lesion phenotype, baseline per gene, and noise. Genes x patients, 4 decimals."""
    named = [g for genes in GENE_SETS.values() for g in genes]
    genes = named + [f"GENE{i:04d}" for i in range(1, _N_GENES - len(named) + 1)]
    panel = _rng(seed, 3)
    base = panel.uniform(4.0, 11.0, len(genes))
    sd = panel.uniform(0.25, 0.7, len(genes))
    col = {"luminal": 0, "her2": 1, "basal": 2, "proliferation": 3, "immune": 4}  # the programmes (factors)
    loading = np.zeros((len(genes), len(col)))
    for name, members in GENE_SETS.items():
        for g in members:
            loading[genes.index(g), col[name]] = panel.uniform(0.6, 1.3)
    filler = np.arange(len(named), len(genes))
    linked = filler[panel.random(len(filler)) < 0.25]  # a quarter of the filler genes follow a programme weakly
    loading[linked, panel.integers(0, len(col), len(linked))] = panel.uniform(0.1, 0.4, len(linked))
    i_esr1, i_pgr, i_erbb2 = genes.index("ESR1"), genes.index("PGR"), genes.index("ERBB2")

    values = np.empty((len(specs), len(genes)))
    for k, s in enumerate(specs):
        rng = _rng(seed, 1, s.index, 4)
        er, pr, her2 = s.receptors
        factors = np.array([1.2 * er + 0.4 * pr + 0.4 * rng.standard_normal(),
                            2.0 * her2 + 0.4 * rng.standard_normal(),
                            1.5 * (s.subtype == 3) + 0.5 * rng.standard_normal(),
                            _GENE_SHIFT_PROLIF[s.subtype] + 0.8 * s.prolif_noise + 0.3 * rng.standard_normal(),
                            _GENE_SHIFT_IMMUNE[s.subtype] + 0.8 * s.immune_noise + 0.3 * rng.standard_normal()])
        values[k] = base + loading @ factors + sd * rng.standard_normal(len(genes))
        values[k, i_esr1] += 2.5 * er  # the receptor genes follow the pathology status itself
        values[k, i_pgr] += 2.0 * pr
        values[k, i_erbb2] += 1.5 * her2
    table = pd.DataFrame(np.round(values, 4), columns=genes)
    table.insert(0, "patient", [s.patient for s in specs])
    return table


# ----------------------------------------------------------------------------------------------------------------
# Rendering: anatomy, lesions, DCE signal


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _kinetic(t, k, w):
    """Relative enhancement curve shape: exponential wash-in, then a linear late change of -w from 1.5 to 6 min."""
    t = np.asarray(t, float)
    return (1.0 - np.exp(-k * t)) * (1.0 - w * np.clip((t - 1.5) / 4.5, 0.0, 1.0))


def _breast_profile(z, half_length):
    """Breast cross-section scale along z (1 at the slab centre, tapering toward the ends)."""
    return np.sqrt(np.clip(1.0 - (np.asarray(z) / half_length) ** 2, 0.09, 1.0))


def _slice_z(spec: PatientSpec, k) -> float:
    """Patient z (mm) of 0-based slice k of the rendered grid, which is in increasing z (SimpleITK's order)."""
    return spec.anatomy["table_z"] + (k - (spec.slices - 1) / 2) * spec.protocol.slice_mm


def _index_of(spec: PatientSpec, number, count: int):
    """The 0-based grid index (increasing z) of the file with InstanceNumber `number` (1..count) of a phase:
    top-down numbering counts from the largest z, as most real scans do; bottom-up from the smallest."""
    return count - number if spec.numbering == "top-down" else number - 1


def _number_of(spec: PatientSpec, k, count: int):
    """The InstanceNumber (1..count) of 0-based grid slice k of a phase (the inverse of `_index_of`)."""
    return count - k if spec.numbering == "top-down" else k + 1


def _box_by_number(spec: PatientSpec, box: tuple[int, ...]) -> tuple[int, ...]:
    """A box with 1-based grid slices -> slices counted by InstanceNumber, as Annotation_Boxes.csv counts them."""
    r0, r1, c0, c1, s0, s1 = box
    first, last = sorted((_number_of(spec, s0 - 1, spec.slices), _number_of(spec, s1 - 1, spec.slices)))
    return r0, r1, c0, c1, int(first), int(last)


def _smooth_noise(rng: np.random.Generator, shape, sigma) -> np.ndarray:
    """A smooth Gaussian random field with unit standard deviation (sigma in voxels per axis)."""
    from scipy.ndimage import gaussian_filter
    f = gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="reflect")
    return f / max(float(f.std()), 1e-6)


def _render(spec: PatientSpec, seed: int) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """The five DCE phases as uint16 (5, Z, Y, X), Z in increasing patient z, and each lesion's 1-based inclusive
    box (rows, cols, slices), its slices counted by InstanceNumber (`_box_by_number`) as in Annotation_Boxes.csv."""
    rng = _rng(seed, 2, spec.index)
    Z, R, C = spec.shape
    dz, dx = spec.protocol.slice_mm, spec.protocol.pixel_mm
    fov = spec.protocol.fov_cm * 10.0
    a = spec.anatomy
    z = ((np.arange(Z) - (Z - 1) / 2) * dz)[:, None, None]
    y = (-fov / 2 + dx / 2 + dx * np.arange(R))[None, :, None]
    x = (-fov / 2 + dx / 2 + dx * np.arange(C))[None, None, :]
    prof = _breast_profile(z, a["half_length"])

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
    fgt = np.where(breast & (rho < 0.93), _sigmoid((score - thr) / 0.15), 0.0)
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
    signal = s0[None] * (1 + amp[None] * _kinetic(t, k_map[None], w_map[None]))
    boxes = [_render_lesion(signal, les, spec, rng) for les in spec.lesions]

    coil = a["gain"] * (0.8 + 0.35 * np.exp(-((y - a["chest_y"] + 60) / a["coil_falloff"]) ** 2)) \
        * (1 + a["coil_lr"] * x / (fov / 2))
    signal = signal * coil[None]
    n1 = rng.standard_normal(signal.shape, np.float32)
    n2 = rng.standard_normal(signal.shape, np.float32)
    signal = np.sqrt((signal + a["noise"] * n1) ** 2 + (a["noise"] * n2) ** 2)  # Rician magnitude noise
    return np.clip(np.rint(signal), 0, 4095).astype(np.uint16), [_box_by_number(spec, b) for b in boxes]


def _render_lesion(signal: np.ndarray, les: Lesion, spec: PatientSpec, rng: np.random.Generator
                   ) -> tuple[int, int, int, int, int, int]:
    """Blend one lesion into the DCE signal (in place) and return its padded bounding box, 1-based inclusive."""
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

    h1, h2 = _smooth_noise(rng, shape, 0.8), _smooth_noise(rng, shape, 0.8)
    s0 = 250 * (1 + 0.08 * h1)
    amp = les.peak * ((1 - les.rim) + les.rim * np.minimum(r_eff, 1.0) ** 2)  # rim: the core enhances less
    amp = amp * np.clip(1 + 0.6 * les.heterogeneity * h2, 0.05, None)
    k = les.wash_in * np.exp(0.3 * les.heterogeneity * h1)
    for p, t in enumerate(PHASE_MINUTES):
        lesion_signal = s0 * (1 + amp * _kinetic(t, k, les.washout))
        signal[(p, *sub)] = (1 - weight) * signal[(p, *sub)] + weight * lesion_signal

    idx = np.argwhere(mask) + lo
    first = np.maximum(idx.min(0) - 1, 0) + 1  # pad one voxel, then to 1-based
    last = np.minimum(idx.max(0) + 1, [Z - 1, R - 1, C - 1]) + 1
    return int(first[1]), int(last[1]), int(first[2]), int(last[2]), int(first[0]), int(last[0])


# ----------------------------------------------------------------------------------------------------------------
# Writing: DICOM series, tables, manifest


def _folder_safe(text: str) -> str:
    """TCIA folder names keep letters, digits, spaces, dots and hyphens ("W & WO" -> "W  WO")."""
    return re.sub(r"[^A-Za-z0-9 .\-]", "", text)


def _build_patient(spec: PatientSpec, root: Path, seed: int, cohort_key: str) -> tuple[list, int]:
    """Render one patient and write its DICOM series (with its fault); returns (boxes, number of .dcm files).

    UIDs are hashes of the cohort parameters (`cohort_key`), the patient and the object: unique and reproducible.
    """
    from pydicom.uid import generate_uid
    volumes, boxes = _render(spec, seed)

    def uid(*parts) -> str:
        return generate_uid(entropy_srcs=[GENERATOR, cohort_key, spec.patient, *map(str, parts)])

    study = f"{_STUDY_DATE:%m-%d-%Y}-NA-{_folder_safe(_STUDY_DESCRIPTION)}-{spec.folder_ids[0]:05d}"
    study_dir = root / spec.patient / study
    zs = _slice_z(spec, np.arange(spec.slices))
    n_files = 0
    if spec.extra_series:  # the non-dynamic T1 series: every other slice, twice as thick, numbered before the DCE
        number = spec.series_base - 1
        series_dir = study_dir / f"{number}.000000-{_folder_safe(spec.extra_series)}-{spec.folder_ids[1] // 3:05d}"
        _write_series(series_dir, volumes[0, ::2], zs[::2], spec, 0, spec.extra_series, number, uid, "t1",
                      slice_mm=2 * spec.protocol.slice_mm)
        n_files += len(zs[::2])
    if spec.variant in MULTIPHASE_VARIANTS:  # one series, the phases one after the other
        series_dir = study_dir / f"{spec.series_base}.000000-{_folder_safe(spec.variant)}-{spec.folder_ids[1]:05d}"
        for p in range(len(PHASES)):
            _write_series(series_dir, volumes[p], zs, spec, p, spec.variant, spec.series_base, uid, "dce",
                          first_number=p * spec.slices + 1)
        return boxes, n_files + len(PHASES) * spec.slices
    detail = spec.fault_detail
    for p, phase in enumerate(PHASES):
        if spec.fault == "missing_phase" and phase == detail["phase"]:
            continue
        description = SERIES_DESCRIPTIONS[spec.variant][p]
        number = spec.series_base + p
        series_dir = study_dir / f"{number}.000000-{_folder_safe(description)}-{spec.folder_ids[p + 1]:05d}"
        n_slices = spec.slices
        if spec.fault == "discordant_slices" and phase == detail["phase"]:
            n_slices = detail["slices_written"]
        _write_series(series_dir, volumes[p, :n_slices], zs[:n_slices], spec, p, description, number, uid, p)
        n_files += n_slices
        if spec.fault in ("truncated_dicom", "not_dicom") and phase == detail["phase"]:
            victim = series_dir / f"1-{detail['slice']:03d}.dcm"
            if spec.fault == "truncated_dicom":
                data = victim.read_bytes()
                victim.write_bytes(data[: len(data) // 2])
            else:
                victim.write_text("This file was meant to be a DICOM image but holds this text instead.\n")
    return boxes, n_files


def _write_series(series_dir: Path, volume: np.ndarray, zs: np.ndarray, spec: PatientSpec, p: int, description: str,
                  number: int, uid, series_key, first_number: int = 1, slice_mm: float | None = None) -> None:
    """One DICOM file per slice (Explicit VR Little Endian, uint16 MONOCHROME2) of phase p; `volume` and its
    slice positions `zs` in increasing z. Files and InstanceNumbers count from `first_number` in the patient's
    numbering (`_index_of`); `series_key` names the series (its UID), shared by the phases of one series."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    series_dir.mkdir(parents=True, exist_ok=True)
    proto = spec.protocol
    fov = proto.fov_cm * 10.0
    dx = proto.pixel_mm
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = _MR_IMAGE_STORAGE
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    ds.SOPClassUID = _MR_IMAGE_STORAGE
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = f"{_STUDY_DATE:%Y%m%d}"
    ds.StudyTime = _PHASE_TIMES[0]
    ds.SeriesTime = _PHASE_TIMES[0 if series_key == "dce" else p]  # a series of every phase starts with the first
    ds.AcquisitionTime = ds.ContentTime = _PHASE_TIMES[p]
    ds.AccessionNumber = ""
    ds.Modality = "MR"
    ds.Manufacturer = proto.manufacturer
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = _STUDY_DESCRIPTION
    ds.SeriesDescription = description
    ds.ManufacturerModelName = proto.model
    ds.PatientName = spec.name
    ds.PatientID = spec.patient
    ds.PatientBirthDate = spec.birth_date
    ds.PatientSex = "F"
    ds.PatientAge = f"{spec.age:03d}Y"
    ds.BodyPartExamined = "BREAST"
    ds.ScanningSequence = "GR"
    ds.SequenceVariant = ["SS", "SK"]
    ds.MRAcquisitionType = "3D"
    slice_mm = slice_mm or proto.slice_mm
    ds.SliceThickness = f"{slice_mm:g}"
    ds.RepetitionTime = f"{proto.tr_te[0]:g}"
    ds.EchoTime = f"{proto.tr_te[1]:g}"
    ds.MagneticFieldStrength = f"{proto.field_t:g}"
    ds.SpacingBetweenSlices = f"{slice_mm:g}"
    ds.FlipAngle = "10"
    ds.ContrastBolusAgent = "" if p == 0 else "MAGNEVIST"
    ds.PatientPosition = spec.patient_position
    ds.StudyInstanceUID = uid("study")
    ds.SeriesInstanceUID = uid("series", series_key)
    ds.StudyID = f"{spec.folder_ids[0]}"
    ds.SeriesNumber = number
    ds.AcquisitionNumber = 1
    if series_key != "t1":  # the DCE phases
        ds.TemporalPositionIdentifier = p + 1
        ds.NumberOfTemporalPositions = len(PHASES)
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.FrameOfReferenceUID = uid("frame")
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = volume.shape[1:]
    ds.PixelSpacing = [f"{dx:.6f}", f"{dx:.6f}"]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.WindowCenter, ds.WindowWidth = 600, 1200
    ds.PixelData = b""  # written per file by _FileEncoder (declared here so its tag order and VR are known)
    x0 = y0 = -fov / 2 + dx / 2
    write = _FileEncoder(meta, ds)
    count = volume.shape[0]
    for n in range(1, count + 1):
        k = _index_of(spec, n, count)
        z = f"{zs[k]:.4f}"
        number_k = first_number + n - 1
        write(series_dir / f"1-{number_k:03d}.dcm", uid("image", series_key, p, k), number_k,
              [f"{x0:.4f}", f"{y0:.4f}", z], z, np.ascontiguousarray(volume[k], dtype="<u2").tobytes())


class _FileEncoder:
    """Writes the files of one series as pydicom would (`save_as(..., enforce_file_format=True)`), ~10x faster.

    The elements shared by every slice are encoded once by pydicom; only the per-slice elements (SOP instance UID,
    instance number, position, slice location, pixels) are encoded per file and spliced in tag order.
    """

    _VARIABLE = ((0x00080018, "UI"), (0x00200013, "IS"), (0x00200032, "DS"), (0x00201041, "DS"),
                 (0x7FE00010, "OW"))

    def __init__(self, meta, ds) -> None:
        from pydicom.dataset import validate_file_meta
        meta.MediaStorageSOPInstanceUID = "1.2"  # placeholder; replaced per file
        validate_file_meta(meta, enforce_standard=True)
        self.meta_runs = self._runs(meta, [0x00020003])
        self.runs = self._runs(ds, [tag for tag, _ in self._VARIABLE])

    @staticmethod
    def _encode(elements) -> bytes:
        from pydicom.dataset import Dataset
        from pydicom.filebase import DicomBytesIO
        from pydicom.filewriter import write_dataset
        if not isinstance(elements, Dataset):
            dataset = Dataset()
            for elem in elements:
                dataset.add(elem)
            elements = dataset
        fp = DicomBytesIO()
        fp.is_little_endian, fp.is_implicit_VR = True, False
        write_dataset(fp, elements)
        return fp.getvalue()

    def _runs(self, ds, variable: list[int]) -> list[bytes]:
        """The encoded constant elements between consecutive variable tags (len(variable) + 1 byte runs)."""
        from bisect import bisect
        runs: list[list] = [[] for _ in range(len(variable) + 1)]
        for elem in ds:
            if elem.tag not in variable and elem.tag != 0x00020000:
                runs[bisect(variable, elem.tag)].append(elem)
        return [self._encode(r) for r in runs]

    def __call__(self, path: Path, sop_uid: str, number: int, position: list[str], location: str,
                 pixels: bytes) -> None:
        from pydicom.dataelem import DataElement
        meta_tail = self.meta_runs[0] + self._encode([DataElement(0x00020003, "UI", sop_uid)]) + self.meta_runs[1]
        group_length = self._encode([DataElement(0x00020000, "UL", len(meta_tail))])
        parts = [b"\0" * 128, b"DICM", group_length, meta_tail, self.runs[0]]
        for (tag, vr), value, run in zip(self._VARIABLE, (sop_uid, number, position, location, pixels),
                                         self.runs[1:]):
            parts += [self._encode([DataElement(tag, vr, value)]), run]
        path.write_bytes(b"".join(parts))


def _render_all(specs: list[PatientSpec], root: Path, seed: int, cohort_key: str, n_jobs: int, progress: bool
                ) -> list[tuple[list, int]]:
    """Render and write every patient, in parallel when n_jobs != 1 (each patient has its own random streams)."""
    from .frontend import tqdm
    bar = tqdm(total=len(specs), desc="synthesising patients", unit="patient", disable=not progress)
    try:
        if n_jobs == 1:
            results = []
            for s in specs:
                results.append(_build_patient(s, root, seed, cohort_key))
                bar.update()
            return results
        from joblib import Parallel, delayed
        jobs = (delayed(_build_patient)(s, root, seed, cohort_key) for s in specs)
        results = []
        for r in Parallel(n_jobs=n_jobs, return_as="generator")(jobs):
            results.append(r)
            bar.update()
        return results
    finally:
        bar.close()


def _write_tables(root: Path, specs: list[PatientSpec], results: list, seed: int, params: dict) -> None:
    """Annotation boxes, clinical table, truth sidecars, gene expression and (last) the manifest."""
    box_rows = []
    for spec, (boxes, _) in zip(specs, results):
        for j, (r0, r1, c0, c1, s0, s1) in enumerate(boxes):
            if spec.fault == "box_outside" and j == 0:
                height = r1 - r0 + 1
                r1 = spec.protocol.rows + 1 + height // 2  # End Row beyond Rows
                r0 = r1 - height + 1
            box_rows.append([spec.patient, r0, r1, c0, c1, s0, s1])
    columns = ["Patient ID", "Start Row", "End Row", "Start Column", "End Column", "Start Slice", "End Slice"]
    pd.DataFrame(box_rows, columns=columns).to_csv(root / "Annotation_Boxes.csv", index=False, lineterminator="\n")
    _write_clinical(root / "Clinical_and_Other_Features.xlsx", specs)
    _truth_table(specs).to_csv(root / "synthetic_truth.csv", index=False, lineterminator="\n")
    _lesion_table(specs).to_csv(root / "synthetic_lesions.csv", index=False, lineterminator="\n")
    _gene_table(specs, seed).to_csv(root / "gene_expression.csv", index=False, float_format="%.4f",
                                    lineterminator="\n")
    used = pd.Series([s.protocol.name for s in specs]).value_counts()
    manifest = {
        "generator": GENERATOR, "version": VERSION, "parameters": params,
        "patients": params["patients"], "seed": params["seed"], "effect": params["effect"],
        "faults": {s.patient: s.fault for s in specs if s.fault},
        "fault_details": {s.patient: {"fault": s.fault, **s.fault_detail} for s in specs if s.fault},
        "spacing_scale": SPACING_SCALE,
        "target_spacing_mm": round(max(PROTOCOLS, key=lambda p: p.cases).pixel_mm, 4),
        "protocols": {p.name: {"cases": int(used.get(p.name, 0)), "manufacturer": p.manufacturer, "model": p.model,
                               "field_strength": p.field_t, "rows": p.rows, "pixel_spacing_mm": round(p.pixel_mm, 4),
                               "slice_spacing_mm": p.slice_mm} for p in PROTOCOLS if p.name in used},
        "phases": list(PHASES), "phase_minutes": list(PHASE_MINUTES),
        "n_dicom_files": int(sum(n for _, n in results)),
        "tables": table_checksums(root, TABLE_NAMES),
    }
    (root / "cohort.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _write_clinical(path: Path, specs: list[PatientSpec]) -> None:
    """The clinical table with the real file's three header rows; bytes fixed for a given content."""
    import openpyxl
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data"
    for first, last, text in _CLINICAL_CATEGORIES:
        ws.cell(1, first + 1, text)
        if last > first:
            ws.merge_cells(start_row=1, start_column=first + 1, end_row=1, end_column=last + 1)
    index = {}
    for j, (name, legend) in enumerate(_CLINICAL_COLUMNS):
        ws.cell(2, j + 1, name)
        ws.cell(3, j + 1, legend)
        if name is not None:
            index.setdefault(name, j)
    for i, spec in enumerate(specs):
        for name, value in spec.clinical.items():
            if name not in index:
                raise KeyError(f"{spec.patient}: clinical column {name!r} is not in the Duke header")
            if value is not None:
                ws.cell(4 + i, index[name] + 1, value)
    wb.properties.creator = GENERATOR
    wb.properties.created = wb.properties.modified = _FIXED_DATETIME
    buf = io.BytesIO()
    wb.save(buf)
    _rezip_deterministic(buf.getvalue(), path)


def _rezip_deterministic(data: bytes, path: Path) -> None:
    """openpyxl stamps the save time (core.xml and zip entries); rewrite both with a fixed date."""
    stamp = _FIXED_DATETIME.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            payload = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                payload = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>" + stamp, payload)
                payload = re.sub(rb"(<dcterms:created[^>]*>)[^<]*", rb"\g<1>" + stamp, payload)
            entry = zipfile.ZipInfo(info.filename, date_time=_FIXED_DATETIME.timetuple()[:6])
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            dst.writestr(entry, payload)


def _read_manifest(out: Path) -> dict | None:
    try:
        return json.loads((out / "cohort.json").read_text())
    except (OSError, ValueError):
        return None


def _is_complete(out: Path, params: dict) -> bool:
    """A finished cohort of the same parameters whose .dcm files are all still there."""
    manifest = _read_manifest(out)
    if not manifest or manifest.get("generator") != GENERATOR or manifest.get("version") != VERSION \
            or manifest.get("parameters") != params:
        return False
    n = sum(1 for _, _, files in os.walk(out) for f in files if f.endswith(".dcm"))
    return n == manifest.get("n_dicom_files")


def check_replaceable(out: Path, generator: str, image_suffix: str, table_names: Sequence[str],
                      empty_ok: bool = True) -> None:
    """Refuse (FileExistsError) to replace `out` unless it is absent, empty (if `empty_ok`), or an earlier cohort of
    `generator` holding only files it wrote: its tables unedited (checksums in cohort.json) and `image_suffix` files
    in the patient folders. A user's notes, annotations or edited tables are never deleted."""
    if not out.exists() or (empty_ok and out.is_dir() and not any(out.iterdir())):
        return
    manifest = _read_manifest(out) if out.is_dir() else None
    if not manifest or manifest.get("generator") != generator:
        raise FileExistsError(f"{out} exists and is not a synthetic cohort of {generator}; refusing to overwrite it")
    theirs = user_files(out, manifest, image_suffix, table_names)
    if theirs:
        shown = ", ".join(theirs[:5]) + (f" and {len(theirs) - 5} more" if len(theirs) > 5 else "")
        raise FileExistsError(f"{out} holds files the generator did not write ({shown}); refusing to replace it: "
                              f"move them elsewhere or choose another output folder")


def user_files(root: Path, manifest: dict, image_suffix: str, table_names: Sequence[str]) -> list[str]:
    """Files of a cohort folder its generator did not write, or tables edited since (by their checksums)."""
    from .cache import file_digest
    tables = manifest.get("tables") or dict.fromkeys(table_names)  # older manifests: names only
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if not path.is_file() or rel == "cohort.json":
            continue
        if rel in tables:
            if tables[rel] is not None and file_digest(path) != tables[rel]:
                out.append(f"{rel} (edited)")
        elif "/" not in rel or path.suffix != image_suffix:  # images are only written into patient folders
            out.append(rel)
    return out


def table_checksums(root: Path, table_names: Sequence[str]) -> dict[str, str]:
    """SHA-256 of each table written (kept in cohort.json, so edits by a user are recognised)."""
    from .cache import file_digest
    return {name: file_digest(root / name) for name in table_names if (root / name).is_file()}


# ----------------------------------------------------------------------------------------------------------------
# The real Clinical_and_Other_Features.xlsx header (structure only, no data): row 1 categories (merged spans of
# 0-based columns), row 2 column names and row 3 code legends, exactly as in the public file.

_CLINICAL_CATEGORIES: tuple[tuple[int, int, str], ...] = (
    (0, 0, "Patient Information"), (1, 18, "MRI Technical Information"), (19, 22, "Demographics"),
    (23, 47, "Tumor Characteristics"), (48, 52, "MRI Findings"), (53, 55, "SURGERY"), (56, 57, "Radiation Therapy"),
    (58, 59, "Tumor Response"), (60, 60, "Recurrence"), (63, 66, "Follow Up"), (67, 67, "BIRADS DATA"),
    (68, 75, "Mammography Characteristics"), (76, 81, "US features"), (82, 83, "Chemotherapy"),
    (84, 88, "Endocrine Therapy"), (89, 90, "Anti-Her2 Neu Therapy"), (91, 91, "Neoadjuvant therapy"),
    (92, 94, "Pathologic Response to Neoadjuvant Therapy"), (95, 95, "Near Complete Response"),
)

_CLINICAL_COLUMNS: tuple[tuple[str | None, str | None], ...] = (
    ('Patient ID',
     None),
    ('Days to MRI (From the Date of Diagnosis)',
     None),
    ('Manufacturer',
     'GE MEDICAL SYSTEMS=0, MPTronic software=1, SIEMENS=2'),
    ('Manufacturer Model Name',
     'Avanto=0, Optima MR450w=1, SIGNA EXCITE=2, SIGNA HDx=3, Signa HDxt=4, Skyra=5, Trio=6, TrioTim=7'),
    ('Scan Options',
     'FAST_GEMS\\SAT_GEMS\\ACC_GEMS\\PFP\\FS=0,FAST_GEMS\\SAT_GEMS\\MP_GEMS\\ACC_GEMS\\PFP\\FS=1,FAST_GEMS\\SAT_GEMS\\MP_GEMS\\PFP\\FS=2,FAST_GEMS\\SAT_GEMS\\PFP\\FS=3,FS=4,PFP\\FS=5,PFP\\SFS=6,SAT_GEMS\\PFP\\FS=7,SFS=8'),
    ('Field Strength (Tesla)',
     '1.494=0,1.5=1,2.8936=2,3=3'),
    ('Patient Position During MRI',
     'FFP=0,HFP=1'),
    ('Image Position of Patient',
     None),
    ('Contrast Agent',
     'GADAVIST=0,MAGNEVIST=1,MMAGNEVIST=2,MULTIHANCE=3,Name of agent not stated(but ContrastBolusAgent tag was present)=4, ContrastBolusAgent Tag Absent = 5 '),
    ('Contrast Bolus Volume (mL)',
     '6=0,7=1,8=2,9=3,10=4,11=5,11.88=6,12=7,13=8,13.6=9,14=10,14.5=11,15=12,16=13,17=14,18=15,19=16,20=17,25=18'),
    ('TR (Repetition Time)',
     None),
    ('TE (Echo Time)',
     None),
    ('Acquisition Matrix',
     '320 X 320=0,340 X 340=1,350 X 350=2,360 X 360=3,384 X 360=4,384 X 384=5,448 X 251=6,448 X 381=7,448 X 430=8,448 X 448=9,512 X 358=10'),
    ('Slice Thickness ',
     '0.9=0,0.95=1,1=2,1.04=3,1.06=4,1.1=5,1.12=6,1.15=7,1.2=8,1.23=9,1.24=10,1.25=11,1.3=12,1.4=13,1.45=14,1.5=15,1.6=16,1.8=17,2=18,2.2=19,2.5=20'),
    ('Rows',
     '320=0,448=1,512=2'),
    ('Columns',
     '320=0,448=1,512=2'),
    ('Reconstruction Diameter ',
     '260=0,270=1,280=2,290=3,300=4,305=5,310=6,320=7,330=8,340=9,350=10,360=11,370=12,380=13,390=14,400=15,410=16,420=17,430=18,480=19'),
    ('Flip Angle \n',
     '7=0,8=1,10=2,12=3'),
    ('FOV Computed (Field of View) in cm ',
     '250=0,260=1,270=2,280=3,290=4,300=5,303=6,305=7,310=8,320=9,330=10,340=11,345=12,346=13,350=14,360=15,365=16,370=17,375=18,380=19,390=20,400=21,410=22,420=23,430=24,440=25,480=26'),
    ('Date of Birth (Days)',
     '(Taking date of diagnosis as day 0) [Functional Check : numeric entries will be negative only, non-numeric ones will be NA or NC ]'),
    ('Menopause (at diagnosis)',
     '{0 = pre,\n1 = post,\n2 = N/A}'),
    ('Race and Ethnicity',
     '{0 = N/A\n1 = white,\n2 = black,\n3 = asian,\n4 = native,\n5 = hispanic,\n6 = multi,\n7 = hawa,    8 = amer indian}'),
    ('Metastatic at Presentation (Outside of Lymph Nodes)',
     '{0 = no\n1 = yes}'),
    ('ER',
     '{0 = neg,\n1 = pos}'),
    ('PR',
     '{0 = neg,\n1 = pos}'),
    ('HER2',
     '{0 = neg,\n1 = pos, 2 = borderline}'),
    ('Mol Subtype',
     '{0 = luminal-like,\n1 = ER/PR pos, HER2 pos,\n2 = her2,\n3 = trip neg}'),
    ('Oncotype score',
     None),
    ('Staging(Tumor Size)# [T]',
     None),
    ('Staging(Nodes)#(Nx replaced by -1)[N]',
     None),
    ('Staging(Metastasis)#(Mx -replaced by -1)[M]',
     None),
    ('Tumor Grade',
     'Tumor Grade(T)\n(Tubule)'),
    (None,
     'Tumor Grade(N)\n(Nuclear)'),
    (None,
     'Tumor Grade(M)\n(Mitotic)'),
    ('Nottingham grade',
     '1=low 2=intermediate 3=high\n'),
    ('Histologic type',
     '0=DCIS 1=ductal 2=lobular 3=metaplastic 4=LCIS 5=tubular 6=mixed 7=micropapillary 8=colloid 9=mucinous 10=medullary\n'),
    ('Tumor Location',
     'Side of cancer L=left R=right'),
    ('Position',
     'Position (every bx positive for invasive cancer)(used during annotation)'),
    ('Bilateral Information',
     'Bilateral breast cancer?\n{ 0=no 1=yes}'),
    (None,
     'If Bilateral, Different Rec Status\n{0=no 1=yes}'),
    (None,
     'Side Annotated\n{L=left R=right}'),
    ('For Other Side If Bilateral',
     'Side of cancer (for the other side)\n{L=left, R=right}'),
    (None,
     'Oncotype score (for the other side){##}'),
    (None,
     'Nottingham grade (for the other side){#}'),
    (None,
     'ER (for the other side)\n{0 = neg, 1 = pos}'),
    (None,
     'PR (for the other side)\n{0 = neg, 1 = pos}'),
    (None,
     'HER2 (for the other side)\n{0 = neg, 1 = pos, 2=borderline}'),
    (None,
     'Mol Subtype (for the other side)\n{0 = luminal-like, 1 = ER/PR pos, HER2 pos, 2 = her2,\n3 = trip neg}'),
    ('Multicentric/Multifocal',
     '{0 = no, 1 = yes}'),
    ('Contralateral Breast Involvement',
     '{0 = no, 1 = yes}'),
    ('Lymphadenopathy or Suspicious Nodes',
     '{0 = no, 1 = yes}'),
    ('Skin/Nipple Invovlement',
     '{0 = no, 1 = yes}'),
    ('Pec/Chest Involvement',
     '{0 = no, 1 = yes}'),
    ('Surgery',
     '{0 = no,1 = yes}'),
    ('Days to Surgery (from the date of diagnosis)',
     None),
    ('Definitive Surgery Type',
     '{0=BCS, 1=mastectomy}'),
    ('Neoadjuvant Radiation Therapy',
     '{0 = no, 1 = yes}'),
    ('Adjuvant Radiation Therapy',
     '{0 = no, 1 = yes}'),
    ('Clinical Response, Evaluated Through Imaging ',
     '{1=complete response on imaging, 2=not complete response, 3=imaging to assess treatment response is unavailable, NA=no neoadjuvant therapy or not enough information to assess neoadjuvant therapy status}'),
    ('Pathologic Response to Neoadjuvant Therapy',
     ' {1=complete response, 2=not complete response, 3=DCIS only remaining, 4=LCIS only remaining, 5=treatment response assessment unavailable, NA=no neoadjuvant therapy or not enough information to assess neoadjuvant therapy status}'),
    ('Recurrence event(s)',
     '{0 = no, 1 = yes}'),
    ('Days to local recurrence (from the date of diagnosis) ',
     None),
    ('Days to distant recurrence(from the date of diagnosis) ',
     None),
    ('Days to death (from the date of diagnosis) ',
     None),
    ('Days to last local recurrence free assessment (from the date of diagnosis) ',
     None),
    ('Days to last distant recurrence free assemssment(from the date of diagnosis) ',
     None),
    ('Age at last contact in EMR f/u(days)(from the date of diagnosis) ,last time patient known to be alive, unless age of death is reported(in such case the age of death',
     None),
    (None,
     None),
    ('Age at mammo (days)',
     None),
    ('Breast Density',
     '{0=heterogeneous, 1=scattered, 2=minimal, 3=moderate, 4=extremely, 5=predominantly fatty}'),
    ('Shape',
     '{0=oval, 1=irregular, 2=lobular, 3=reniform, 4=stellate}'),
    ('Margin',
     '{0=obscured, 2=spiculated, 3=indistinct/ill-defined, 4=circumscribed}'),
    ('Architectural distortion',
     None),
    ('Mass Density',
     None),
    ('Calcifications',
     '{0=pleomorphic, 1=yes, 2=heterogeneous 3=microcalc 4=linear, 5=clustered, 6=amorphous, 7=branching}'),
    ('Tumor Size (cm)',
     None),
    ('Shape',
     '{0=oval, 1=irregular, 2=lobular}'),
    ('Margin',
     '{0=obscured, 1=ill-defined, 2=spiculated, 3=indistinct, 4=circumscribed, 5=microlobulated, 6=angular, 7=irregular}'),
    ('Tumor Size (cm)',
     None),
    ('Echogenicity',
     '{0=hypoechoic, 1=hyperechoic, 2=isoechoic, 3=anechoic, 4=irregular, 5=mixed, 6=boundary}'),
    ('Solid',
     None),
    ('Posterior acoustic shadowing',
     None),
    ('Neoadjuvant Chemotherapy',
     '{0 = no, 1 = yes}'),
    ('Adjuvant Chemotherapy',
     '{0 = no, 1 = yes}'),
    ('Neoadjuvant Endocrine Therapy Medications ',
     '{0 = no, 1 = yes}'),
    ('Adjuvant Endocrine Therapy Medications ',
     '{0 = no, 1 = yes}'),
    ('Known Ovarian Status ',
     '{0 = no, 1 = yes}'),
    ('Number of Ovaries In Situ \n',
     '{0 = no ovaries intact, 1 = 1 ovary intact, 2 = 2 ovaries intact, NP = not pertinent to this case}'),
    ('Therapeutic or Prophylactic Oophorectomy as part of Endocrine Therapy ',
     '{0 = no, 1 = yes, NP = not pertinent}'),
    ('Neoadjuvant Anti-Her2 Neu Therapy',
     ' {0 = no, 1 = yes}'),
    ('Adjuvant Anti-Her2 Neu Therapy ',
     ' {0 = no, 1 = yes}'),
    ('Received Neoadjuvant Therapy or Not',
     '{1 = yes, 2 = no, NA = not applicable}'),
    ('Pathologic response to Neoadjuvant therapy: Pathologic stage (T) following neoadjuvant therapy ',
     '{ -1 = TX;  0 = T0;  1 = T1;  2 = T2;  3 = T3;  4 = T4;  5 = Tis (DCIS);  NA = not applicable}'),
    ('Pathologic response to Neoadjuvant therapy:  Pathologic stage (N) following neoadjuvant therapy',
     ' { -1 = NX;  0 = N0;  1 = N1;  2 = N2;  3 = N3; NA = not applicable}'),
    ('Pathologic response to Neoadjuvant therapy:  Pathologic stage (M) following neoadjuvant therapy ',
     '{ -1 = MX;  0 = M0;  1 = M1;  NA = not applicable}'),
    ('Overall Near-complete Response:  Stricter Definition',
     '{0 = not complete or near-complete, 1 = complete, 2 = near-complete, 3 = pathologic assessment not available, NA = not applicable} \n*Strict definition of Near-complete includes the following definitions [from column QK "Near complete response (graded measure)"]:\n2 = Near complete (pathology report noted results constituted near-complete response to NAT)\n3 = No residual disease, only atypical ductal hyperplasia\n4 = No invasive carcinoma, DCIS only\n5 = No invasive carcinoma, LCIS only\n6 = 90% reduction in tumor volume\n7 = 95% reduction\n18 = 99% of tumor obliterated but extensive residual DCIS'),
    ('Overall Near-complete Response:  Looser Definition',
     '{0 = not complete or near-complete, 1 = complete, 2 = near-complete, 3 = pathologic assessment not available, NA = not applicable} \n*Loose definition of Near-complete includes the following definitions [from column QK "Near complete response (graded measure)"]:\n2 = Near complete (pathology report noted results constituted near-complete response to NAT)\n3 = No residual disease, only atypical ductal hyperplasia\n4 = No invasive carcinoma, DCIS only\n5 = No invasive carcinoma, LCIS only\n6 = 90% reduction in tumor volume\n7 = 95% reduction\n8 = Near complete but DCIS\n9 = 90% reduction with DCIS present\n10 = No invasive disease but lymph nodes positive\n11 = No residual disease, but positive LNs and DCIS\n12 = Near complete response noted on path report, but positive LNs\n13 = 98% reduction with positive LNs\n14 = 95% fibrosis but positive lymph nodes\n15 = 90% reduction with positive LNs\n16 = > 95% reduction with only mucinous pools remaining\n17 = 1mm residual invasive but extensive DCIS\n18 = 99% of tumor obliterated but extensive residual DCIS'),
    ('Near-complete Response (Graded Measure)',
     '{0 = Not complete or near-complete;  1 = Complete;  2 = Near complete (pathology report noted results constituted near-complete response to NAT);  3 = No residual disease, only atypical ductal hyperplasia;  4 = No invasive carcinoma, DCIS only;  5 = No invasive carcinoma, LCIS only;  6 = 90% reduction in tumor volume;  7 = 95% reduction;  8 = Near complete but DCIS;  9 = 90% reduction with DCIS present;  10 = No invasive disease but lymph nodes positive;  11 = No residual disease, but positive LNs and DCIS;  12 = Near complete response noted on path report, but positive LNs;  13 = 98% reduction with positive LNs;  14 = 95% fibrosis but positive lymph nodes;  15 = 90% reduction with positive LNs;  16 = > 95% reduction with only mucinous pools remaining;  17 = 1mm residual invasive but extensive DCIS;  18 = 99% of tumor obliterated but extensive residual DCIS;  19 = pathologic assessment not available; NA = not applicable}\n0 = Not complete or near-complete\n1 = Complete\n2 = Near complete (pathology report noted results constituted near-complete response to NAT)\n3 = No residual disease, only atypical ductal hyperplasia\n4 = No invasive carcinoma, DCIS only\n5 = No invasive carcinoma, LCIS only\n6 = 90% reduction in tumor volume\n7 = 95% reduction\n8 = Near complete but DCIS\n9 = 90% reduction with DCIS present\n10 = No invasive disease but lymph nodes positive\n11 = No residual disease, but positive LNs and DCIS\n12 = Near complete response noted on path report, but positive LNs\n13 = 98% reduction with positive LNs\n14 = 95% fibrosis but positive lymph nodes\n15 = 90% reduction with positive LNs\n16 = > 95% reduction with only mucinous pools remaining\n17 = 1mm residual invasive but extensive DCIS\n18 = 99% of tumor obliterated but extensive residual DCIS\n19 = pathologic assessment not available\nNA = not applicable'),
)
