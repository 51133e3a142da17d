"""`radiolib fetch duke`: the real Duke-Breast-Cancer-MRI collection from NCI Imaging Data Commons (IDC).

The plan is made offline, from the series index that ships with the `idc-index-data` package (one row per series:
PatientID, SeriesDescription, SeriesNumber, instanceCount, series_size_MB, ...): each patient's DCE phases by the
loader's own rule (`series.assign_phases`), or the reason it is excluded. The transfer is idc-index's downloader,
into the layout the loader reads (`<out>/Breast_MRI_NNN/<StudyInstanceUID>/<SeriesInstanceUID>/*.dcm`); a series
whose file count already matches the index is not fetched again, and every series' count is checked afterwards.
The two tables are not in IDC: they come from `--tables DIR` or from the collection's page (`tables_note`).
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from .cohort import read_boxes, read_clinical
from .descriptor import duke_labels
from .dicom_seg import MASK_DIR
from .series import PHASES, REASONS, assign_phases, missing_phases

COLLECTION = "duke_breast_cancer_mri"
AIMI = "bamf_aimi_annotations"  # IDC's analysis result holding the AIMI breast-tumour SEG objects
DIR_TEMPLATE = "%PatientID/%StudyInstanceUID/%SeriesInstanceUID"  # idc-index's dirTemplate: the loader's layout
TABLES = ("Annotation_Boxes.csv", "Clinical_and_Other_Features.xlsx")
TCIA_PAGE = "https://www.cancerimagingarchive.net/collection/duke-breast-cancer-mri/"
INSTALL = "pip install -e '.[fetch]' (or make setup)"
_COLUMNS = ["collection_id", "analysis_result_id", "PatientID", "StudyInstanceUID", "SeriesInstanceUID", "Modality",
            "SeriesDescription", "SeriesNumber", "instanceCount", "series_size_MB", "source_DOI"]


def index_file() -> tuple[Path, str]:
    """The parquet series index of idc-index-data and its version (ImportError naming the install command)."""
    try:
        import idc_index_data  # lazy: optional package (the fetch extra)
    except ImportError:
        raise ImportError(f"radiolib fetch needs the IDC index (idc-index, idc-index-data): {INSTALL}") from None
    return Path(idc_index_data.IDC_INDEX_PARQUET_FILEPATH), idc_index_data.__version__


def read_index(collection: str = COLLECTION) -> pd.DataFrame:
    """The collection's rows of the offline IDC index; SeriesNumber as a number (0 where blank, as the loader)."""
    path, _ = index_file()
    rows = pd.read_parquet(path, columns=_COLUMNS, filters=[("collection_id", "==", collection)])
    if rows.empty:
        raise ValueError(f"collection {collection!r} is not in the IDC index {path.name}")
    return rows.assign(SeriesNumber=pd.to_numeric(rows.SeriesNumber, errors="coerce").fillna(0),
                       SeriesDescription=rows.SeriesDescription.fillna(""),
                       series_size_MB=rows.series_size_MB.astype(float)).reset_index(drop=True)


def plan_patient(mr: pd.DataFrame) -> dict:
    """One patient's MR rows -> {"phases": phase -> SeriesInstanceUID} or {"excluded": reason} (the loader's text)."""
    series = [{"description": d, "number": n, "uid": u}
              for d, n, u in zip(mr.SeriesDescription, mr.SeriesNumber, mr.SeriesInstanceUID)]
    phases = assign_phases(series)
    reason = missing_phases(phases)
    if reason:
        return {"excluded": reason}
    return {"phases": {p: phases[p]["uid"] for p in PHASES}}


@dataclass
class Plan:
    """What `fetch` downloads: per patient its phases or its exclusion reason (`patients`, as written to JSON), the
    series to transfer (`series`: one index row each, `kind` image or mask) and how the patients were chosen."""

    patients: dict[str, dict]
    series: pd.DataFrame
    selection: str
    index_version: str = ""
    options: dict = field(default_factory=dict)

    def totals(self) -> dict:
        included = sum("phases" in p for p in self.patients.values())
        return {"patients": included, "excluded": len(self.patients) - included, "series": len(self.series),
                "masks": int((self.series.kind == "mask").sum()), "files": int(self.series.instanceCount.sum()),
                "GB": round(float(self.series.series_size_MB.sum()) / 1000, 2)}

    def to_json(self) -> dict:
        return {"collection": COLLECTION, "index": f"idc-index-data {self.index_version}",
                "selection": self.selection, **self.options, "totals": self.totals(), "patients": self.patients,
                "series": [{"patient": r.PatientID, "kind": r.kind, "phase": r.phase,
                            "SeriesInstanceUID": r.SeriesInstanceUID, "StudyInstanceUID": r.StudyInstanceUID,
                            "SeriesDescription": r.SeriesDescription, "SeriesNumber": int(r.SeriesNumber),
                            "instanceCount": int(r.instanceCount), "series_size_MB": round(r.series_size_MB, 3)}
                           for r in self.series.itertuples()]}

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return path


def patient_id(text: str) -> str:
    """'Breast_MRI_007', '007' or '7' -> 'Breast_MRI_007'."""
    text = text.strip()
    return f"Breast_MRI_{int(text):03d}" if text.isdigit() else text


def read_ids(path: str | Path) -> list[str]:
    """PatientIDs from a file, one a line ('#' starts a comment)."""
    lines = (line.split("#")[0].strip() for line in Path(path).read_text().splitlines())
    return list(dict.fromkeys(patient_id(line) for line in lines if line))


def read_tables(tables: Path | None) -> tuple[pd.DataFrame | None, set]:
    """The default target's labels (`descriptor.duke_labels`) and the patients with a box; (None, empty) without."""
    if tables is None:
        return None, set()
    return duke_labels(read_clinical(tables / TABLES[1]), None), set(read_boxes(tables / TABLES[0]).patient)


def table_reasons(labels: pd.DataFrame | None, boxed: set, patients) -> dict[str, str]:
    """Patient -> the loader's exclusion reason from the two tables (not in the clinical table, no label for the
    default target, no box), for the patients they exclude; empty without the tables."""
    if labels is None:
        return {}
    reasons = {}
    for p in patients:
        if p not in labels.index:
            reasons[p] = REASONS["not_in_clinical"]
        elif pd.isna(labels.label[p]):
            reasons[p] = labels.reason[p]
        elif p not in boxed:
            reasons[p] = REASONS["no_box"]
    return reasons


def make_plan(index: pd.DataFrame, ids: list[str] | None = None, n: int | None = None, seed: int = 0,
              phases: str = "study", masks: str | None = None, tables: Path | None = None,
              index_version: str = "") -> Plan:
    """Plan the download: every patient, the `ids` given, or a random sample of `n` of those the plan includes
    (seeded; stratified by the default target's label when `tables` holds the clinical table). `phases` "study"
    fetches pre, post1-3; "all" every MR series of an included patient. `masks` "aimi" adds its AIMI SEG objects."""
    mr = index[index.Modality == "MR"]
    known = sorted(mr.PatientID.unique())
    if ids is not None:
        unknown = [p for p in ids if p not in set(known)]
        if unknown:
            raise ValueError(f"{len(unknown)} PatientIDs are not in the collection's index: {unknown[:5]}")
    candidates = ids if ids is not None else known
    by_patient = dict(tuple(mr[mr.PatientID.isin(candidates)].groupby("PatientID")))
    labels, boxed = read_tables(tables)
    reasons = table_reasons(labels, boxed, candidates)
    planned = {p: ({"excluded": reasons[p]} if p in reasons else plan_patient(by_patient[p])) for p in candidates}
    chosen = [p for p in candidates if "phases" in planned[p]]
    selection = (f"the {len(ids)} PatientIDs given" if ids is not None else f"all {len(known)} patients")
    if n is not None:
        pool = len(chosen)
        chosen, how = sample(chosen, n, seed, None if labels is None else labels.label)
        selection = f"{how} of the {pool} included of {selection}"
        planned = {p: v for p, v in planned.items() if "excluded" in v or p in set(chosen)}
    series = _series_to_fetch(index, {p: planned[p] for p in chosen}, phases, masks)
    patients = {p: planned[p] for p in sorted(planned)}
    return Plan(patients, series, selection, index_version, {"phases": phases, "masks": masks or "none"})


def _series_to_fetch(index: pd.DataFrame, included: dict[str, dict], phases: str, masks: str | None) -> pd.DataFrame:
    """The index rows to download for the included patients (`kind` image or mask, `phase` where it is one); adds
    each patient's masks (SeriesInstanceUID -> description) to its plan entry."""
    mr = index[index.Modality == "MR"]
    phase_of_uid = pd.Series({u: ph for entry in included.values() for ph, u in entry["phases"].items()}, dtype=object)
    images = (mr[mr.PatientID.isin(included)] if phases == "all" else mr[mr.SeriesInstanceUID.isin(phase_of_uid.index)])
    series = [images.assign(kind="image", phase=images.SeriesInstanceUID.map(phase_of_uid).fillna(""))]
    if masks == "aimi":
        seg = index[(index.analysis_result_id == AIMI) & index.PatientID.isin(included)]
        series.append(seg.assign(kind="mask", phase=""))
        for p, rows in seg.groupby("PatientID"):
            included[p]["masks"] = dict(zip(rows.SeriesInstanceUID, rows.SeriesDescription))
    return pd.concat(series).sort_values(["PatientID", "kind", "SeriesNumber"], kind="stable").reset_index(drop=True)


def sample(patients: list[str], n: int, seed: int, labels: pd.Series | None = None) -> tuple[list[str], str]:
    """`n` of `patients` at random (seeded), in ID order; stratified by `labels` (patient -> label) when given, so
    the sample keeps the collection's prevalence. Returns (patients, how they were drawn)."""
    if n < 1:
        raise ValueError(f"--patients {n}: at least 1")
    if n > len(patients):
        raise ValueError(f"--patients {n}: only {len(patients)} patients can be planned")
    if n == len(patients):
        return list(patients), f"all {n}"
    if labels is not None:
        chosen, _ = train_test_split(list(patients), train_size=n, stratify=labels.reindex(patients).values,
                                     random_state=seed)
        return sorted(chosen), f"a random sample of {n} (seed {seed}, stratified by the luminal-like label)"
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(list(patients), size=n, replace=False)), f"a random sample of {n} (seed {seed})"


def describe(plan: Plan, index: pd.DataFrame) -> list[str]:
    """The lines printed before any transfer: the collection, the plan's totals, each excluded patient's reason."""
    mr = index[index.Modality == "MR"]
    t = plan.totals()
    lines = [f"IDC index (idc-index-data {plan.index_version}), {COLLECTION}: {mr.PatientID.nunique()} patients, "
             f"{len(mr):,} MR series, {mr.series_size_MB.sum() / 1000:.1f} GB",
             f"selection: {plan.selection}; phases: {plan.options['phases']}; masks: {plan.options['masks']}",
             f"plan: {t['patients']} patients, {t['series']:,} series ({t['masks']} masks), {t['files']:,} files, "
             f"{t['GB']:.1f} GB"]
    excluded = {p: v["excluded"] for p, v in plan.patients.items() if "excluded" in v}
    if excluded:
        lines.append(f"excluded {len(excluded)}:")
        lines += [f"  {p}: {reason}" for p, reason in excluded.items()]
    return lines


def series_dir(out: Path, row) -> Path:
    """Where idc-index puts a series with DIR_TEMPLATE (masks under MASK_DIR)."""
    base = out / MASK_DIR if row.kind == "mask" else out
    return base / row.PatientID / row.StudyInstanceUID / row.SeriesInstanceUID


def incomplete(series: pd.DataFrame, out: Path) -> pd.DataFrame:
    """The series whose folder does not hold as many .dcm files as the index counts, with the count found."""
    found = np.array([len(list(series_dir(out, r).glob("*.dcm"))) for r in series.itertuples()], dtype=int)
    return series.assign(found=found)[found != series.instanceCount.to_numpy(int)]


def download(plan: Plan, out: str | Path, client=None, progress: bool = True) -> list[str]:
    """Fetch the plan's series that are not complete in `out` with idc-index's downloader (s5cmd sync, so a
    partial series keeps its files), then check every series' file count; returns one line per series still
    short (empty when the download is complete)."""
    out = Path(out)
    todo = incomplete(plan.series, out)
    if len(todo):
        client = client or _client()
        for kind, rows in todo.groupby("kind"):
            target = out / MASK_DIR if kind == "mask" else out
            target.mkdir(parents=True, exist_ok=True)
            client.download_from_selection(downloadDir=str(target), seriesInstanceUID=list(rows.SeriesInstanceUID),
                                           dirTemplate=DIR_TEMPLATE, use_s5cmd_sync=True, quiet=True,
                                           show_progress_bar=progress)
    short = incomplete(plan.series, out)
    return [f"{r.PatientID} {r.phase or r.kind} {r.SeriesInstanceUID}: {r.found} of {r.instanceCount} files"
            for r in short.itertuples()]


def _client():
    try:
        from idc_index import IDCClient  # lazy: optional package (the fetch extra)
    except ImportError:
        raise ImportError(f"radiolib fetch needs idc-index to download: {INSTALL}") from None
    return IDCClient()


def collection_doi(index: pd.DataFrame) -> str:
    """The collection's own DOI (its MR series'; the SEG objects carry their analysis result's)."""
    dois = index[index.Modality == "MR"].source_DOI.dropna()
    return dois.mode().iloc[0] if len(dois) else ""


def place_tables(tables: Path | None, out: Path | None, doi: str) -> list[str]:
    """Copy the two tables from `tables` into `out` (when both are given); the lines saying where they came from or
    where to get them (the collection's page: they are not in IDC)."""
    lines = []
    for name in TABLES:
        source = tables / name if tables else None
        if source is not None and source.is_file():
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, out / name)
                lines.append(f"{name}: copied from {tables}")
            else:
                lines.append(f"{name}: found in {tables}")
        elif out is not None and (out / name).is_file():
            lines.append(f"{name}: already in {out}")
        else:
            lines.append(f"{name}: not in IDC; download it from the collection's page {TCIA_PAGE} "
                         f"(https://doi.org/{doi}) into {out or 'the data folder'}, or pass --tables DIR")
    return lines


def check_tables(tables: Path | None) -> Path | None:
    """`tables` if it holds both tables (else a ValueError naming what is missing)."""
    if tables is None:
        return None
    missing = [name for name in TABLES if not (tables / name).is_file()]
    if missing:
        raise ValueError(f"--tables {tables}: {', '.join(missing)} not found there")
    return tables
