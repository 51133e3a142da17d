"""A synthetic radiogenomic DCE-MRI cohort written in the public Duke-Breast-Cancer-MRI layout.

The study's embedded default data: DICOM series (pre-contrast and four post-contrast phases per patient), the
annotation boxes, the clinical table, gene expression and ground-truth sidecars, readable by the same loader as a
real download (`radiolib.data.cohort`). Lesion kinetics depend on the molecular subtype through `effect`
(0 = a null cohort). The parameter stage (`simulate_truth`, module `plan`) draws every patient and lesion without
rendering; `synthesize` renders the volumes (`phantom`) and writes the files (`dicom`, `workbook`). Same seed, same
bytes. With `masks=True` each patient also gets its lesions' true extent as a DICOM SEG (`seg`) where
`radiolib fetch duke --masks aimi` puts IDC's AIMI segmentations (`<out>/AIMI_SEG/<patient>/<study>/<series>/`).
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
from joblib import Parallel, delayed

from ...core.cache import staging_dir
from ...core.frontend import tqdm
from .common import check_replaceable, read_manifest, table_checksums, write_manifest
from .dicom import write_patient
from .phantom import render
from .plan import PatientSpec, check_args, draw_cohort
from .scanners import MULTIPHASE_VARIANTS, PHASE_MINUTES, PHASES, PROTOCOLS, SPACING_SCALE
from .seg import MASK_FOLDER, write_seg
from .truth import gene_table, lesion_table, truth_table
from .workbook import write_clinical

GENERATOR = "radiolib.synth"  # the generator's name in the cohort files (stable across package layouts)
VERSION = "1.4"  # 1.3: the clinical workbook gives N stage; 1.4: Mol Subtype in the public shares (luminal-like
#                  65%, was Zhu et al.'s 33%) and the grade's tubule, nuclear and mitotic scores
TABLE_NAMES = ("Annotation_Boxes.csv", "Clinical_and_Other_Features.xlsx", "synthetic_truth.csv",
               "synthetic_lesions.csv", "gene_expression.csv")  # what _write_tables writes beside cohort.json
SEG_PHASE = "post1"  # the phase the synthetic SEG references (which one the real AIMI objects reference: unchecked)
SEG_SERIES_NUMBER = 300  # the AIMI SEG series' SeriesNumber in IDC's index (all 1,024 Duke SEG series)


def synthesize(out: str | Path, patients: int = 270, seed: int = 0, effect: float = 1.0,
               faults: bool | Sequence[str] = False, n_jobs: int = 1, progress: bool = True, *,
               gene_link: bool = True, masks: bool = False, _max_slices: int | None = None) -> Path:
    """Write the synthetic cohort into `out` (atomically) and return its path; reuse it if already complete.

    `effect` scales the subtype -> lesion-phenotype signal (0 = null cohort); `faults` injects the paper's exclusion
    reasons, one per patient among the last ones; `n_jobs` renders patients in parallel (same bytes for any value).
    `gene_link=False` deals the gene-expression profiles to the patients in a random order (no gene-image link).
    `masks=True` writes each patient's tumour mask as a DICOM SEG (`_write_mask`; not for a patient with a fault).
    `_max_slices` caps the slice count (small test cohorts).
    """
    out = Path(out)
    fault_list = check_args(patients, seed, effect, faults, n_jobs, _max_slices)
    params = {"patients": int(patients), "seed": int(seed), "effect": float(effect), "faults": fault_list,
              "max_slices": _max_slices, **({} if gene_link else {"gene_link": False}),
              **({"masks": True} if masks else {})}  # default: same bytes
    if _is_complete(out, params):
        return out
    check_replaceable(out, GENERATOR, ".dcm", TABLE_NAMES)
    specs = draw_cohort(patients, seed, float(effect), fault_list, _max_slices)
    with staging_dir(out) as tmp:  # replaces an earlier cohort only once this one is complete
        results = _render_all(specs, tmp, seed, json.dumps(params, sort_keys=True), n_jobs, progress, masks)
        _write_tables(tmp, specs, results, seed, params)
    return out


def simulate_truth(patients: int = 270, seed: int = 0, effect: float = 1.0,
                   faults: bool | Sequence[str] = False, *, gene_link: bool = True,
                   _max_slices: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The ground-truth tables of a cohort without rendering images: (patients, lesions, gene expression).

    Identical to synthetic_truth.csv, synthetic_lesions.csv and gene_expression.csv written by `synthesize`.
    """
    fault_list = check_args(patients, seed, effect, faults, 1, _max_slices)
    specs = draw_cohort(patients, seed, float(effect), fault_list, _max_slices)
    return truth_table(specs), lesion_table(specs), gene_table(specs, seed, gene_link)


def _build_patient(spec: PatientSpec, root: Path, seed: int, cohort_key: str, masks: bool = False
                   ) -> tuple[list, int]:
    """Render one patient and write its DICOM series (with its fault) and, with `masks`, its tumour SEG; returns
    (boxes, number of .dcm files)."""
    lesion_mask = np.zeros(spec.shape, bool) if masks and not spec.fault else None
    volumes, boxes = render(spec, seed, lesion_mask)
    n_files = write_patient(spec, volumes, root, [GENERATOR, cohort_key])
    if lesion_mask is not None:
        _write_mask(spec, root, lesion_mask)
        n_files += 1
    return boxes, n_files


def _write_mask(spec: PatientSpec, root: Path, lesion_mask: np.ndarray) -> Path:
    """The lesions' true extent (`phantom.render`, not the padded box) as a SEG of the SEG_PHASE images, under
    <root>/AIMI_SEG as `fetch duke --masks aimi` lays out IDC's AIMI objects.

    Follows the real objects where IDC's index shows them (checked offline, idc-index-data 25.0.5): one SEG instance
    per series, SeriesNumber 300, SeriesDescription "AIMI breast-tumor AI segmentation", the folder layout. Not
    checked (no SEG object downloaded): which phase they reference, their segment label and codes, BINARY against
    FRACTIONAL, whether empty frames are kept (`seg.write_seg`); Manufacturer is ours, not the real "QIICR" (dcmqi)."""
    return write_seg(_phase_files(spec, root, PHASES.index(SEG_PHASE)), lesion_mask, root / MASK_FOLDER,
                     series_number=SEG_SERIES_NUMBER)


def _phase_files(spec: PatientSpec, root: Path, phase: int) -> list[Path]:
    """The image files of one phase as `dicom.write_patient` wrote them: its own series (SeriesNumber series_base +
    phase), or its InstanceNumbers in the series holding every phase."""
    multiphase = spec.variant in MULTIPHASE_VARIANTS
    number = spec.series_base if multiphase else spec.series_base + phase
    first = phase * spec.slices + 1 if multiphase else 1
    files = []
    for f in sorted((root / spec.patient).glob("*/*/*.dcm")):
        ds = pydicom.dcmread(f, stop_before_pixels=True, specific_tags=["SeriesNumber", "InstanceNumber"])
        if int(ds.SeriesNumber) == number and first <= int(ds.InstanceNumber) < first + spec.slices:
            files.append(f)
    return files


def _render_all(specs: list[PatientSpec], root: Path, seed: int, cohort_key: str, n_jobs: int, progress: bool,
                masks: bool = False) -> list[tuple[list, int]]:
    """Render and write every patient, in parallel when n_jobs != 1 (each patient has its own random streams)."""
    bar = tqdm(total=len(specs), desc="synthesising patients", unit="patient", disable=not progress)
    try:
        if n_jobs == 1:
            results = []
            for s in specs:
                results.append(_build_patient(s, root, seed, cohort_key, masks))
                bar.update()
            return results
        jobs = (delayed(_build_patient)(s, root, seed, cohort_key, masks) for s in specs)
        results = []
        for r in Parallel(n_jobs=n_jobs, return_as="generator")(jobs):
            results.append(r)
            bar.update()
        return results
    finally:
        bar.close()


def _write_tables(root: Path, specs: list[PatientSpec], results: list, seed: int, params: dict) -> None:
    """Annotation boxes, clinical table, truth sidecars, gene expression and (last) the manifest."""
    _box_table(specs, [boxes for boxes, _ in results]).to_csv(root / "Annotation_Boxes.csv", index=False,
                                                              lineterminator="\n")
    write_clinical(root / "Clinical_and_Other_Features.xlsx", specs, GENERATOR)
    truth_table(specs).to_csv(root / "synthetic_truth.csv", index=False, lineterminator="\n")
    lesion_table(specs).to_csv(root / "synthetic_lesions.csv", index=False, lineterminator="\n")
    genes = gene_table(specs, seed, params.get("gene_link", True))
    genes.to_csv(root / "gene_expression.csv", index=False, float_format="%.4f", lineterminator="\n")
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
    write_manifest(root, manifest)


def _box_table(specs: list[PatientSpec], boxes: list[list[tuple]]) -> pd.DataFrame:
    """Annotation_Boxes.csv: one row per lesion, 1-based inclusive; the fault `box_outside` moves one past Rows."""
    rows = []
    for spec, patient_boxes in zip(specs, boxes):
        for j, (r0, r1, c0, c1, s0, s1) in enumerate(patient_boxes):
            if spec.fault == "box_outside" and j == 0:
                height = r1 - r0 + 1
                r1 = spec.protocol.rows + 1 + height // 2  # End Row beyond Rows
                r0 = r1 - height + 1
            rows.append([spec.patient, r0, r1, c0, c1, s0, s1])
    columns = ["Patient ID", "Start Row", "End Row", "Start Column", "End Column", "Start Slice", "End Slice"]
    return pd.DataFrame(rows, columns=columns)


def _is_complete(out: Path, params: dict) -> bool:
    """A finished cohort of the same parameters whose .dcm files are all still there."""
    manifest = read_manifest(out)
    if manifest.get("generator") != GENERATOR or manifest.get("version") != VERSION \
            or manifest.get("parameters") != params:
        return False
    n = sum(1 for _, _, files in os.walk(out) for f in files if f.endswith(".dcm"))
    return n == manifest.get("n_dicom_files")
