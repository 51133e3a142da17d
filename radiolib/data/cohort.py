"""The Duke-Breast-Cancer-MRI loader (real download or synthetic cohort): series discovery, labels, boxes, QC.

`load_cohort(root)` reads the tables and the DICOM headers only; pixel data is read per patient by
`imaging.prepare`. Every patient that cannot be used is excluded with a reason in `Cohort.qc`, shaped like the
paper's cohort flow; the study never stops for one bad patient.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from ..core.frontend import tqdm
from .descriptor import (
    GRADE_COMPONENTS,
    Descriptor,
    check_column,
    duke_columns,
    duke_descriptor,
    duke_labels,
    duke_target,
)
from .dicom_seg import MASK_SOURCES, TumourMask, patient_mask, seg_files
from .imaging import Volume, prepare
from .series import (
    PHASES,
    REASONS,
    PhaseSeries,
    UnreadableSeries,
    assign_phases,
    missing_phases,
    slice_headers,
    split_phases,
)
from .source import SourceTables, flow_table, labels_of  # noqa: F401 (flow_table: re-exported)

BOX_COLUMNS = ["Patient ID", "Start Row", "End Row", "Start Column", "End Column", "Start Slice", "End Slice"]
PATIENT_DIR = re.compile(r"^Breast_MRI_\d{3,}$")


@dataclass
class Cohort(SourceTables):
    """A Duke-layout `DataSource`: one row per usable patient (`table`), one per excluded patient (`qc`), the
    lesion boxes, where each patient's DCE series lie (`series`) and the clinical table read for the labels."""

    root: Path
    table: pd.DataFrame
    qc: pd.DataFrame
    boxes: pd.DataFrame
    series: dict[str, dict[str, PhaseSeries]] = field(repr=False, default_factory=dict)
    descriptor: Descriptor = field(default_factory=duke_descriptor)  # what `label` means (see descriptor.py)
    clinical_file: Path | None = None  # Clinical_and_Other_Features.xlsx, read again for another target's labels
    masks: dict[str, list[Path]] = field(repr=False, default_factory=dict)  # patient -> its SEG files (AIMI_SEG)

    def labels(self, target: str | None = None) -> pd.Series:
        """Label per included patient for `target` (None: this cohort's; see descriptor.py for the targets)."""
        if target is None or duke_target(target) == self.descriptor.target:
            return labels_of(self.table.set_index("patient").label, self.patients)
        if self.clinical_file is None:
            raise ValueError(f"target {target!r}: this cohort was built without its clinical table")
        clinical = read_clinical(self.clinical_file, duke_columns(target))
        return labels_of(duke_labels(clinical, target).label, self.patients)

    def volume(self, patient: str, target_spacing: float) -> Volume:
        """The preprocessed patient (read, resampled, subtracted; `imaging.prepare`), with its tumour mask where it
        has a SEG."""
        return prepare(self, patient, target_spacing)

    def tumour_mask(self, patient: str) -> TumourMask | None:
        """The patient's tumour mask on its DCE grid (slices in position order, rows, columns) from its SEG files
        (`dicom_seg.patient_mask`), None without any (the box is its region then); UnreadableMask with the QC
        reason when a SEG cannot be read."""
        if not self.masks.get(patient):
            return None
        return patient_mask(self.root, patient, self.series[patient])


def scanner_table(table: pd.DataFrame) -> pd.DataFrame:
    """Cases per scanner protocol with matrix and spacing, like the paper's Table 1."""
    t = table.assign(matrix=table["rows"].astype(str) + "x" + table["columns"].astype(str))
    out = (t.groupby(["manufacturer", "model", "field_strength", "matrix", "pixel_spacing"], dropna=False)
           .size().rename("cases").reset_index().sort_values("cases", ascending=False))
    target = table["pixel_spacing"].round(4).value_counts().index[0]
    out["resampled"] = np.where(out.pixel_spacing.round(4) == target, "no (target spacing)", "yes")
    return out.reset_index(drop=True)


def read_boxes(path: Path) -> pd.DataFrame:
    """Annotation_Boxes.csv: 1-based inclusive voxel boxes, one row per lesion (several rows per patient allowed)."""
    try:
        boxes = pd.read_csv(path)
    except Exception as err:  # noqa: BLE001 - any parse failure is the same user error
        raise ValueError(f"cannot read the annotation boxes {Path(path).name}: {err}") from None
    missing = [c for c in BOX_COLUMNS if c not in boxes.columns]
    if missing:
        raise ValueError(f"{Path(path).name} lacks columns {missing}; expected {BOX_COLUMNS}")
    boxes = boxes[BOX_COLUMNS].rename(columns={"Patient ID": "patient"})
    boxes["lesion"] = boxes.groupby("patient").cumcount() + 1
    return boxes


CLINICAL_COLUMNS = {"Mol Subtype": "mol_subtype", "ER": "er", "PR": "pr", "HER2": "her2",
                    "Nottingham grade": "nottingham_grade"}  # real names (header row 2) -> our names
# The Nottingham grade's component scores: three columns under one name ("Tumor Grade"), told apart by their code
# legends (header row 3: "Tumor Grade(T)\n(Tubule)", "...(N)\n(Nuclear)", "...(M)\n(Mitotic)") -> our names.
GRADE_LEGENDS = dict(zip(("Tubule", "Nuclear", "Mitotic"), GRADE_COMPONENTS))


def read_clinical(path: Path, columns=()) -> pd.DataFrame:
    """Clinical_and_Other_Features.xlsx, sheet 'Data' with three header rows (category, column name, code legend).

    Returns patient, mol_subtype and, where the file has them, er, pr, her2, nottingham_grade and its component
    scores tubule_score, nuclear_score, mitotic_score (numbers as coded in the legend; blank -> NaN), plus the raw
    `columns` asked for by their header names (e.g. a target's column).
    """
    try:
        raw = pd.read_excel(path, sheet_name="Data", header=None)
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"cannot read the clinical table {Path(path).name} (sheet 'Data'): {err}") from None
    header_rows = raw.index[raw.iloc[:, 0].astype(str).str.strip() == "Patient ID"]
    if len(header_rows) == 0:
        raise ValueError(f"{Path(path).name}: no header row starting with 'Patient ID' in sheet 'Data'")
    h = header_rows[0]
    names = [str(c).strip() for c in raw.iloc[h]]
    if "Mol Subtype" not in names:
        raise ValueError(f"{Path(path).name}: no 'Mol Subtype' column (found {names[:8]}...)")
    for column in columns:
        check_column(column, [n for n in names if n != "nan"], Path(path).name)
    table = raw.iloc[h + 1:]
    table = table[table.iloc[:, 0].astype(str).str.match(PATIENT_DIR.pattern[:-1])]
    out = pd.DataFrame({"patient": table.iloc[:, 0].astype(str).values})
    for name, ours in CLINICAL_COLUMNS.items():
        if name in names:
            out[ours] = pd.to_numeric(table.iloc[:, names.index(name)], errors="coerce").values
    for ours, j in _grade_component_columns(raw.iloc[h + 1] if h + 1 < len(raw) else pd.Series(dtype=object),
                                            Path(path).name).items():
        out[ours] = pd.to_numeric(table.iloc[:, j], errors="coerce").values
    for name in columns:
        out[name] = table.iloc[:, names.index(name)].values
    return out.reset_index(drop=True)


def _grade_component_columns(legends: pd.Series, file: str) -> dict[str, int]:
    """Our name -> position of each grade component score column, found by its legend ("(Tubule)", ...)."""
    found = {}
    for word, ours in GRADE_LEGENDS.items():
        hits = [j for j, text in enumerate(legends) if re.search(rf"\(\s*{word}\s*\)", str(text), re.I)]
        if len(hits) > 1:
            raise ValueError(f"{file}: {len(hits)} columns have the legend '({word})': which is the grade's score?")
        if hits:
            found[ours] = hits[0]
    return found


def find_patient_dirs(root: Path) -> dict[str, Path]:
    """Patient folders `Breast_MRI_NNN` at most three levels below root (TCIA downloads nest them)."""
    found: dict[str, Path] = {}
    for depth in ("*", "*/*", "*/*/*"):
        for p in sorted(root.glob(depth)):
            if p.is_dir() and PATIENT_DIR.match(p.name) and p.name not in found:
                found[p.name] = p
        if found:
            break
    return found


def _series_info(series_dir: Path) -> dict | None:
    files = sorted(series_dir.glob("*.dcm"))
    if not files:
        return None
    reader = sitk.ImageFileReader()
    for f in files:  # the first readable header describes the series
        try:
            reader.SetFileName(str(f))
            reader.ReadImageInformation()
        except RuntimeError:
            continue
        get = lambda tag: reader.GetMetaData(tag).strip() if reader.HasMetaDataKey(tag) else ""  # noqa: E731
        return {"dir": series_dir, "files": len(files), "description": get("0008|103e") or _folder_description(
                    series_dir.name), "number": int(float(get("0020|0011") or 0)), "manufacturer": get("0008|0070"),
                "model": get("0008|1090"), "field_strength": float(get("0018|0087") or "nan"),
                "rows": int(get("0028|0010") or 0), "columns": int(get("0028|0011") or 0),
                "pixel_spacing": float(reader.GetSpacing()[0])}
    return {"dir": series_dir, "files": len(files), "description": "", "unreadable": files[0].name}


def _folder_description(folder: str) -> str:
    """The SeriesDescription kept in a TCIA series folder name ("5.000000-ax dyn pre-12345" -> "ax dyn pre")."""
    return re.sub(r"-\d{5}$", "", re.sub(r"^\d+(?:\.\d+)?-", "", folder))


def discover_series(patient_dir: Path) -> tuple[dict[str, dict], list[str]]:
    """Find the DCE phases of one patient (`series.assign_phases`: by SeriesDescription, by SeriesNumber where the
    descriptions repeat); returns (phase -> info, problems).

    Each info has `series`, a PhaseSeries. When per-phase series are missing, a DCE series holding several phases
    (its slice positions repeat) is split by its headers (`split_phases`)."""
    infos = []
    problems = []
    for series_dir in sorted(d for d in patient_dir.glob("*/*") if d.is_dir()):
        info = _series_info(series_dir)
        if info is None:
            continue
        if "unreadable" in info:
            problems.append(f"{REASONS['unreadable']}: {series_dir.name}/{info['unreadable']}")
            continue
        infos.append(info)
    phases = assign_phases(infos)
    if "pre" in phases and any(p not in phases for p in PHASES):
        try:
            phases = _split_shared(phases)
        except UnreadableSeries as err:
            problems.insert(0, err.reason or f"{REASONS['unreadable']}: {err}")
    for info in phases.values():
        info.setdefault("series", PhaseSeries(info["dir"], info["description"]))
    return phases, problems


def _split_shared(phases: dict[str, dict]) -> dict[str, dict]:
    """Replace the phases by those of the 'pre' series when it holds every phase (else return them unchanged)."""
    pre = phases["pre"]
    headers = slice_headers(sorted(pre["dir"].glob("*.dcm")), pre["dir"].name)
    split = split_phases(headers, pre["description"])
    if split is None:
        return phases
    key, groups = split
    names = ["pre"] + [f"post{i}" for i in range(1, len(groups))]
    return {phase: {**pre, "files": len(g), "series": PhaseSeries(
                pre["dir"], pre["description"], tuple(g.sort_values("position").file), key)}
            for phase, g in zip(names, groups)}


def load_cohort(root: str | Path, progress: bool = True, target: str | None = None) -> Cohort:
    """Scan a Duke-layout folder: labels of `target` (see descriptor.py; default luminal_like), boxes, series
    headers; exclude what cannot be used, with reasons."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {root.name!r} (expected a Duke-Breast-Cancer-MRI download "
                                "with Breast_MRI_NNN folders, Annotation_Boxes.csv and "
                                "Clinical_and_Other_Features.xlsx)")
    box_file, clin_file = _find_file(root, "Annotation_Boxes.csv"), _find_file(root, "Clinical_and_Other_Features.xlsx")
    boxes, clinical = read_boxes(box_file), read_clinical(clin_file, duke_columns(target))
    patients = find_patient_dirs(root)
    if not patients:
        raise FileNotFoundError(f"no Breast_MRI_NNN patient folders under the data folder {root.name!r}")

    rows, qc, series = [], [], {}
    labels = duke_labels(clinical, target).assign(mol_subtype=clinical.mol_subtype.values)
    for patient, pdir in tqdm(patients.items(), desc="scanning series", disable=not progress):
        reason, row = _check_patient(patient, pdir, labels, boxes, series)
        if reason:
            qc.append({"patient": patient, "reason": reason})
        else:
            rows.append(row)
    table = pd.DataFrame(rows, columns=["patient", "label", "mol_subtype", "manufacturer", "model", "field_strength",
                                        "rows", "columns", "slices", "pixel_spacing", "n_boxes"])
    masks = {p: files for p in table.patient if (files := seg_files(root, p))}
    table["mask"] = [MASK_SOURCES[0] if p in masks else MASK_SOURCES[1] for p in table.patient]
    qc_df = pd.DataFrame(qc, columns=["patient", "reason"])
    kept = boxes[boxes.patient.isin(table.patient)].reset_index(drop=True)
    return Cohort(root=root, table=table, qc=qc_df, boxes=kept,
                  series={p: s for p, s in series.items() if p in set(table.patient)},
                  descriptor=duke_descriptor(target, clinical), clinical_file=clin_file, masks=masks)


def _find_file(root: Path, name: str) -> Path:
    for depth in ("", "*/", "*/*/"):
        hits = sorted(root.glob(depth + name))
        if hits:
            return hits[0]
    raise FileNotFoundError(f"{name} not found in the data folder {root.name!r} or below it")


def _check_patient(patient: str, pdir: Path, labels: pd.DataFrame, boxes: pd.DataFrame, series: dict):
    if patient not in labels.index:
        return REASONS["not_in_clinical"], None
    target = labels.loc[patient]  # label, reason (why the label is missing), mol_subtype
    if pd.isna(target.label):
        return target.reason, None
    pboxes = boxes[boxes.patient == patient]
    if pboxes.empty:
        return REASONS["no_box"], None
    phases, problems = discover_series(pdir)
    if problems and problems[0].startswith(REASONS["unsplit_series"]):
        return problems[0], None
    missing = missing_phases(phases)
    if missing:
        return missing, None
    if problems:
        return problems[0], None
    counts = {p: phases[p]["files"] for p in PHASES}
    if len(set(counts.values())) > 1:
        detail = ", ".join(f"{p} {n}" for p, n in counts.items())
        return f"{REASONS['discordant']}: {detail}", None
    pre = phases["pre"]
    for _, b in pboxes.iterrows():  # box slices count files by InstanceNumber (checked to be 1..N when read)
        limits = {"Row": pre["rows"], "Column": pre["columns"], "Slice": counts["pre"]}
        for axis, n in limits.items():
            lo, hi = b[f"Start {axis}"], b[f"End {axis}"]
            if not (1 <= lo <= hi <= n):
                return (f"{REASONS['box_outside']}: lesion {b.lesion} {axis.lower()}s {lo}-{hi} "
                        f"of 1-{n}"), None
    series[patient] = {p: phases[p]["series"] for p in PHASES}
    subtype = None if pd.isna(target.mol_subtype) else int(target.mol_subtype)
    row = {"patient": patient, "label": int(target.label), "mol_subtype": subtype,
           "manufacturer": pre["manufacturer"], "model": pre["model"], "field_strength": pre["field_strength"],
           "rows": pre["rows"], "columns": pre["columns"], "slices": counts["pre"],
           "pixel_spacing": round(pre["pixel_spacing"], 4), "n_boxes": len(pboxes)}
    return None, row

