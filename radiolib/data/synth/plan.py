"""The parameter stage of the synthetic Duke cohort: the cohort plan (exact subtype and scanner shares), and per
patient the identity, receptors and label, the proliferation and immune latents, anatomy, lesions and their
kinetics, the fault, and the clinical-table row. Nothing is rendered here (`phantom` renders a `PatientSpec`)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from .common import check_cohort_args, fault_list, largest_remainder, stream
from .scanners import MULTIPHASE_VARIANTS, NON_DYNAMIC_DESCRIPTION, PHASES, PROTOCOLS, SLICE_NUMBERINGS, Protocol

FAULTS = ("missing_phase", "discordant_slices", "truncated_dicom", "not_dicom", "box_outside", "missing_label")
KINETIC_CLASSES = ("persistent", "plateau", "washout")

# Derived once from the real Clinical_and_Other_Features.xlsx (922 patients): the Mol Subtype counts (0 luminal-like,
# 595 of 922, 65%: the target the cohort's table claims, not Zhu et al.'s 33% luminal A), and the ER/PR combinations
# within subtypes 0 and 1 (HER2 is 0 for subtype 0, 1 for 1 and 2).
_SUBTYPE_COUNTS = {0: 595, 1: 104, 2: 59, 3: 164}
_ER_PR_COUNTS = {0: {(1, 1): 508, (1, 0): 77, (0, 1): 10}, 1: {(1, 1): 77, (1, 0): 24, (0, 1): 3}}
_NODES_BLANK = 24 / 922  # N stage blank in the public table
_GRADE_BLANK = 284 / 922  # Nottingham grade is blank for 284 of the 922 patients (as often in every subtype)
# The grade's tubule, nuclear and mitotic scores (columns under "Tumor Grade", keyed by their code legends), as the
# real table has them given the grade: counts of each complete (T, N, M) among its 631 patients with a grade and all
# three scores (5 of them disagree with the grade of the sum). Incomplete scores: 14 of the 284 blank-grade patients,
# 7 of the 638 graded; then the mitotic score is blank, the tubule in 15 of those 21, the nuclear in 7.
GRADE_SCORE_COLUMNS = ("Tumor Grade(T)\n(Tubule)", "Tumor Grade(N)\n(Nuclear)", "Tumor Grade(M)\n(Mitotic)")
_GRADE_SCORES = {
    1: {(1, 1, 1): 13, (1, 1, 2): 1, (1, 2, 1): 31, (1, 2, 2): 2, (1, 3, 1): 1, (2, 1, 1): 3, (2, 2, 1): 39,
        (3, 1, 1): 22},
    2: {(1, 3, 2): 1, (1, 3, 3): 1, (2, 2, 1): 2, (2, 2, 2): 13, (2, 3, 1): 24, (2, 3, 2): 10, (3, 1, 2): 1,
        (3, 2, 1): 166, (3, 2, 2): 15, (3, 3, 1): 82, (3, 3, 3): 1},
    3: {(2, 3, 3): 2, (3, 2, 2): 1, (3, 2, 3): 7, (3, 3, 1): 1, (3, 3, 2): 95, (3, 3, 3): 97},
}
_SCORES_INCOMPLETE = {True: 14 / 284, False: 7 / 638}  # by grade blank
_SCORE_BLANK_IF_INCOMPLETE = (15 / 21, 7 / 21, 1.0)  # tubule, nuclear, mitotic
# Log-normal fit of the real Annotation_Boxes.csv (922 boxes): log-mean/log-sd of height, width (px at ~0.8 mm)
# and slices (~1 mm), and the correlation of the three log sizes. Converted to mm below.
_BOX_LOG_MEAN_MM = np.array([3.03, 3.72 + np.log(0.8), 3.58 + np.log(0.8)])  # (z, y, x)
_BOX_LOG_SD = np.array([0.64, 0.60, 0.55])
_BOX_LOG_CORR = np.array([[1.0, 0.81, 0.83], [0.81, 1.0, 0.87], [0.83, 0.87, 1.0]])
_SIZE_CLIP_MM = (5.0, 80.0)
_LESION_COUNT_P = (0.5, 0.2, 0.13, 0.1, 0.07)  # 1..5 lesions per patient

# Subtype shifts of the patient latents (multiplied by `effect`): proliferation drives wash-in, peak and washout,
# immune infiltration drives rim enhancement, and the log lesion size. 0 = luminal-like ... 3 = triple negative.
_SHIFT_PROLIF = {0: -0.6, 1: 0.15, 2: 0.45, 3: 0.65}
_SHIFT_IMMUNE = {0: -0.4, 1: 0.0, 2: 0.3, 3: 0.6}
_SHIFT_LOGSIZE = {0: -0.12, 1: 0.0, 2: 0.08, 3: 0.15}

_FAMILY = ("Whitfield", "Okafor", "Lindqvist", "Marchetti", "Haldane", "Brannigan", "Castellanos", "Dufresne",
           "Ekwueme", "Fairbrother", "Galloway", "Hargreave", "Iverson", "Jablonski", "Kowalczyk", "Lachance",
           "Montrose", "Nakagawa", "Oyelaran", "Pemberton", "Quesada", "Rasmussen", "Szabo", "Thistlewood",
           "Underhill", "Valdivia", "Wexford", "Yarborough", "Zielinski", "Abernathy", "Beauchamp", "Cartwright")
_GIVEN = ("Adelaide", "Beatrix", "Cordelia", "Dolores", "Eleanor", "Florence", "Genevieve", "Harriet", "Imogen",
          "Josephine", "Katarina", "Lucinda", "Marguerite", "Nadia", "Ottilie", "Penelope", "Rosalind", "Sabine",
          "Theodora", "Ursula", "Veronica", "Winifred", "Yolanda", "Zenobia", "Annelise", "Bernadette", "Clementine",
          "Delphine", "Esmeralda", "Felicity", "Gwendolyn", "Henrietta")

STUDY_DATE = date(1990, 1, 1)  # TCIA date-shifted study date, the same for every synthetic patient


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
        early, late = kinetic(np.array([1.5, 6.0]), self.wash_in, self.washout)
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
# The cohort plan and per-patient draws


def check_args(patients, seed, effect, faults, n_jobs, max_slices) -> list[str]:
    """The arguments of `synthesize` checked (clear errors naming the bad one); returns the faults to inject."""
    check_cohort_args(patients, seed, effect)
    if not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a non-zero integer (-1 = all cores), got {n_jobs!r}")
    if max_slices is not None and max_slices < 4:
        raise ValueError(f"_max_slices must be at least 4, got {max_slices!r}")
    return fault_list(faults, FAULTS, patients, clean=1)  # the first patient stays clean


def draw_cohort(patients: int, seed: int, effect: float, faults: list[str],
                max_slices: int | None) -> list[PatientSpec]:
    """Cohort plan (exact subtype and scanner proportions, shuffled; faults on the last patients), then patients."""
    rng = stream(seed, 0)
    subtypes = rng.permutation(np.repeat(list(_SUBTYPE_COUNTS), largest_remainder(list(_SUBTYPE_COUNTS.values()),
                                                                                   patients)))
    per_protocol = largest_remainder([p.cases for p in PROTOCOLS], patients)
    protocols = rng.permutation(np.repeat(np.arange(len(PROTOCOLS)), per_protocol))
    fault_of = {patients - len(faults) + i: f for i, f in enumerate(faults)}
    return [draw_patient(i, int(subtypes[i]), PROTOCOLS[protocols[i]], fault_of.get(i, ""), seed, effect,
                         max_slices) for i in range(patients)]


def draw_patient(index: int, subtype: int, protocol: Protocol, fault: str, seed: int, effect: float,
                 max_slices: int | None) -> PatientSpec:
    """Every draw of one patient, from its own streams (so a patient does not depend on the others)."""
    meta, anat_rng, kin, geo = (stream(seed, 1, index, k) for k in range(4))
    slices = int(meta.integers(protocol.slices[0], protocol.slices[1] + 1))
    if max_slices is not None:
        slices = min(slices, max_slices)
    variant = protocol.variants[int(meta.integers(len(protocol.variants)))]
    if fault and variant in MULTIPHASE_VARIANTS:  # the faults are written into per-phase series
        variant = protocol.variants[0]
    series_rng = stream(seed, 1, index, 5)
    # Siemens scans are head first for 163 of 295 real patients (Clinical_and_Other_Features.xlsx), GE never
    position = "HFP" if protocol.manufacturer == "SIEMENS" and series_rng.random() < 163 / 295 else "FFP"
    extra = NON_DYNAMIC_DESCRIPTION if series_rng.random() < 0.3 else ""
    age = int(np.clip(round(meta.normal(53, 11)), 26, 85))
    born = STUDY_DATE - timedelta(days=int(age * 365.25 + meta.integers(0, 365)))
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
            rim=float(sigmoid(-1.0 + 0.9 * immune + 0.6 * e[3])),
            heterogeneity=float(sigmoid(-0.5 + 0.4 * prolif + 0.6 * e[4])),
            irregularity=float(0.08 + 0.22 * sigmoid(0.5 * prolif + e[5]))))
    return lesions


def _place(radii: np.ndarray, side: int, anatomy: dict, placed: list[Lesion], dz: float, dx: float, slab: float,
           fov: float, rng: np.random.Generator) -> tuple[float, float, float]:
    """A centre (z, y, x voxels) inside the breast, the lesion's extent inside the volume, apart from earlier ones."""
    reach = 1.4 * radii + np.array([dz, dx, dx])  # irregular margin + one voxel
    xc, hw, depth = anatomy["breasts"][side]
    centre_mm = None
    for _ in range(60):
        z = rng.uniform(-slab / 2 + reach[0], slab / 2 - reach[0])
        prof = breast_profile(z, anatomy["half_length"])
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
        "Image Position of Patient": f"{x0:.4f} X {y0:.4f} X {slice_z(spec, index_of(spec, 1, spec.slices)):.4f}",
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
        "Nottingham grade": int(np.clip(2 + round(spec.prolif * 0.8), 1, 3)),  # blanked below for some
        "Histologic type": 1,
        "Tumor Location": index_lesion.side,
        "Multicentric/Multifocal": int(len(spec.lesions) > 1),
        "Contralateral Breast Involvement": int(any(les.side != index_lesion.side for les in spec.lesions)),
    }
    grade = row["Nottingham grade"]
    if rng.random() < _GRADE_BLANK:  # drawn after the columns above, so they keep their values
        row["Nottingham grade"] = None
    row["Staging(Nodes)#(Nx replaced by -1)[N]"] = _draw_nodes(size_cm, spec.prolif, rng)  # drawn last, as well
    row.update(_draw_grade_scores(grade, row["Nottingham grade"] is None, rng))  # after them all (generator 1.4)
    return row


def _draw_grade_scores(grade: int, grade_blank: bool, rng: np.random.Generator) -> dict[str, int | None]:
    """Tubule, nuclear and mitotic scores (1-3) of the patient's grade, recorded or blanked, as the real table
    pairs them (`_GRADE_SCORES`), incomplete as often as there."""
    counts = _GRADE_SCORES[grade]
    scores = list(counts)[int(rng.choice(len(counts), p=np.array(list(counts.values())) / sum(counts.values())))]
    incomplete = rng.random() < _SCORES_INCOMPLETE[grade_blank]
    blank = rng.random(3) < _SCORE_BLANK_IF_INCOMPLETE if incomplete else [False] * 3
    return {column: None if gone else score for column, score, gone in zip(GRADE_SCORE_COLUMNS, scores, blank)}


def _draw_nodes(size_cm: float, prolif: float, rng: np.random.Generator) -> int | None:
    """N stage as coded in the public table (0-3; blank for 24 of its 922 patients): node-positive more often for a
    larger and more proliferative index lesion (the public table: N0 59%, N1 30%, N2 7%, N3 5% of those staged)."""
    positive = rng.random() < sigmoid(-1.0 + 0.35 * (size_cm - 2) + 0.4 * prolif)
    stage = int(rng.choice([1, 2, 3], p=[0.72, 0.16, 0.12])) if positive else 0
    return None if rng.random() < _NODES_BLANK else stage


# ----------------------------------------------------------------------------------------------------------------
# The model's curves and the slice geometry (shared with the phantom and the DICOM writer)


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def kinetic(t, k, w):
    """Relative enhancement curve shape: exponential wash-in, then a linear late change of -w from 1.5 to 6 min."""
    t = np.asarray(t, float)
    return (1.0 - np.exp(-k * t)) * (1.0 - w * np.clip((t - 1.5) / 4.5, 0.0, 1.0))


def breast_profile(z, half_length):
    """Breast cross-section scale along z (1 at the slab centre, tapering toward the ends)."""
    return np.sqrt(np.clip(1.0 - (np.asarray(z) / half_length) ** 2, 0.09, 1.0))


def slice_z(spec: PatientSpec, k) -> float:
    """Patient z (mm) of 0-based slice k of the rendered grid, which is in increasing z (SimpleITK's order)."""
    return spec.anatomy["table_z"] + (k - (spec.slices - 1) / 2) * spec.protocol.slice_mm


def index_of(spec: PatientSpec, number, count: int):
    """The 0-based grid index (increasing z) of the file with InstanceNumber `number` (1..count) of a phase:
    top-down numbering counts from the largest z, as most real scans do; bottom-up from the smallest."""
    return count - number if spec.numbering == "top-down" else number - 1


def number_of(spec: PatientSpec, k, count: int):
    """The InstanceNumber (1..count) of 0-based grid slice k of a phase (the inverse of `index_of`)."""
    return count - k if spec.numbering == "top-down" else k + 1


def box_by_number(spec: PatientSpec, box: tuple[int, ...]) -> tuple[int, ...]:
    """A box with 1-based grid slices -> slices counted by InstanceNumber, as Annotation_Boxes.csv counts them."""
    r0, r1, c0, c1, s0, s1 = box
    first, last = sorted((number_of(spec, s0 - 1, spec.slices), number_of(spec, s1 - 1, spec.slices)))
    return r0, r1, c0, c1, int(first), int(last)


