"""The synthetic Duke-layout cohort: format contract, determinism, faults, subtype signal, no identities leaked."""
import hashlib
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold, cross_val_predict

from radiolib.data import synth
from radiolib.data.synth.duke_header import CLINICAL_COLUMNS

DUKE = Path(os.environ.get("RADIOLIB_DUKE_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "duke"))
BOX_HEADER = "Patient ID,Start Row,End Row,Start Column,End Column,Start Slice,End Slice"
KINETIC = ["wash_in", "peak", "washout", "rim", "heterogeneity"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """12 patients at full size, every fault on the last six, a strong effect (so the images show it)."""
    return synth.synthesize(tmp_path_factory.mktemp("synth") / "c", patients=12, seed=5, effect=2.0,
                            faults=True, progress=False)


@pytest.fixture(scope="module")
def truth(cohort):
    return pd.read_csv(cohort / "synthetic_truth.csv", keep_default_na=False).set_index("patient")


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _series_dirs(root: Path, patient: str, truth: pd.DataFrame | None = None) -> list[Path]:
    """The series folders in series-number order; with `truth`, only the DCE series (not the extra T1 series)."""
    dirs = sorted((root / patient).glob("*/*"), key=lambda d: float(d.name.split("-")[0]))
    extra = truth.loc[patient, "extra_series"] if truth is not None else ""
    return [d for d in dirs if not (extra and f"-{synth.folder_safe(extra)}-" in d.name)]


def _headers(sdir: Path) -> pd.DataFrame:
    """InstanceNumber, z and phase (TemporalPositionIdentifier) of every file of a series folder."""
    rows = []
    for f in sorted(sdir.glob("*.dcm")):
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        rows.append({"file": f, "number": int(ds.InstanceNumber), "z": float(ds.ImagePositionPatient[2]),
                     "phase": int(ds.get("TemporalPositionIdentifier", 0))})
    return pd.DataFrame(rows)


def _phase_volumes(root: Path, patient: str, truth: pd.DataFrame) -> np.ndarray:
    """(phases, Z, Y, X) float in increasing z, read file by file (per-phase series or one series of all phases)."""
    headers = pd.concat([_headers(d) for d in _series_dirs(root, patient, truth)], ignore_index=True)
    return np.stack([np.stack([pydicom.dcmread(f).pixel_array for f in g.sort_values("z").file]).astype(float)
                     for _, g in headers.groupby("phase")])


def _lesion_auc(lesions: pd.DataFrame, patients: pd.DataFrame) -> float:
    """Patient-grouped cross-validated AUC of a logistic regression on the lesion kinetic parameters."""
    d = lesions.merge(patients[["patient", "luminal_like"]], on="patient")
    X = np.c_[np.log(d.wash_in), d[KINETIC[1:]]]
    p = cross_val_predict(LogisticRegression(), X, d.luminal_like, cv=GroupKFold(5), groups=d.patient,
                          method="predict_proba")[:, 1]
    return roc_auc_score(d.luminal_like, p)


# --- determinism and the atomic, reusable output folder ---------------------------------------------------------

def test_same_seed_same_bytes_any_n_jobs_and_other_seed_differs(tmp_path):
    kw = dict(patients=6, effect=1.0, faults=["not_dicom", "box_outside"], progress=False, _max_slices=6)
    a = _hashes(synth.synthesize(tmp_path / "a", seed=1, **kw))
    b = _hashes(synth.synthesize(tmp_path / "b", seed=1, n_jobs=2, **kw))
    c = _hashes(synth.synthesize(tmp_path / "c", seed=2, **kw))
    assert a == b and len(a) > 6 * 5 * 4
    assert {"Clinical_and_Other_Features.xlsx", "cohort.json", "gene_expression.csv"} <= set(a)
    differing = [k for k in a if a[k] != c.get(k)]
    assert "Clinical_and_Other_Features.xlsx" in differing and "gene_expression.csv" in differing
    assert sum(k.endswith(".dcm") for k in differing) > 0.9 * sum(k.endswith(".dcm") for k in a)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]  # temporary folders are gone


def test_complete_cohort_is_reused_and_other_folders_are_protected(tmp_path):
    kw = dict(patients=3, seed=0, progress=False, _max_slices=4)
    out = synth.synthesize(tmp_path / "c", **kw)
    stamp = (out / "cohort.json").stat().st_mtime_ns
    assert synth.synthesize(out, **kw) == out and (out / "cohort.json").stat().st_mtime_ns == stamp
    next(out.rglob("*.dcm")).unlink()  # an incomplete cohort is rebuilt
    synth.synthesize(out, **kw)
    assert (out / "cohort.json").stat().st_mtime_ns != stamp
    synth.synthesize(out, **{**kw, "patients": 4})  # other parameters replace our own earlier cohort
    assert json.loads((out / "cohort.json").read_text())["patients"] == 4 and (out / "Breast_MRI_004").is_dir()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a synthetic cohort"):
        synth.synthesize(mine, **kw)
    assert (mine / "notes.txt").read_text() == "keep me"


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown fault.*'no_such'.*valid names.*missing_phase"):
        synth.simulate_truth(10, faults=["no_such"])
    with pytest.raises(ValueError, match="need more than 6 patients"):
        synth.simulate_truth(6, faults=True)
    with pytest.raises(ValueError, match="effect"):
        synth.simulate_truth(10, effect=-1)


# --- the format contract -----------------------------------------------------------------------------------------

def test_folder_layout_and_dicom_headers(cohort, truth):
    patient = "Breast_MRI_001"
    (study,) = (cohort / patient).iterdir()
    assert re.fullmatch(r"\d\d-\d\d-\d{4}-NA-MRI BREAST BILATERAL W  WO-\d{5}", study.name)
    series = _series_dirs(cohort, patient)
    variant = truth.loc[patient, "series_variant"]
    assert len(series) == 5
    descriptions, times = [], []
    for sdir in series:
        assert re.fullmatch(r"\d+\.000000-[A-Za-z0-9 .\-]+-\d{5}", sdir.name)
        files = sorted(sdir.glob("*.dcm"))
        assert [f.name for f in files] == [f"1-{i:03d}.dcm" for i in range(1, truth.loc[patient, "slices"] + 1)]
        zs = []
        for f in files[:: max(1, len(files) // 4)] + [files[-1]]:
            ds = pydicom.dcmread(f)
            assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
            assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4" and ds.Modality == "MR"
            assert ds.PatientID == patient and ds.PatientSex == "F" and "^" in str(ds.PatientName)
            assert ds.InstanceNumber == int(f.stem.split("-")[1])
            assert (ds.Rows, ds.Columns) == (truth.loc[patient, "rows"], truth.loc[patient, "columns"])
            assert float(ds.PixelSpacing[0]) == pytest.approx(truth.loc[patient, "pixel_spacing_mm"], abs=1e-4)
            assert float(ds.SpacingBetweenSlices) == truth.loc[patient, "slice_spacing_mm"]
            assert ds.Manufacturer == truth.loc[patient, "manufacturer"]
            assert float(ds.MagneticFieldStrength) == truth.loc[patient, "field_strength"]
            assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
            assert ds.pixel_array.dtype == np.uint16 and ds.PhotometricInterpretation == "MONOCHROME2"
            assert 0 < ds.pixel_array.max() <= 4095
            zs.append(float(ds.ImagePositionPatient[2]))
        top_down = truth.loc[patient, "slice_numbering"] == "top-down"  # InstanceNumber 1 at the largest z
        assert zs == sorted(zs, reverse=top_down) and len(set(zs)) == len(zs)
        assert ds.PatientPosition == truth.loc[patient, "patient_position"]
        descriptions.append(ds.SeriesDescription)
        times.append(ds.AcquisitionTime)
    assert descriptions == synth.SERIES_DESCRIPTIONS[variant] and times == sorted(times)
    # the fast encoder writes exactly what pydicom itself writes
    raw = files[3].read_bytes()
    buf = io.BytesIO()
    pydicom.dcmread(files[3]).save_as(buf, enforce_file_format=True)
    assert buf.getvalue() == raw


@pytest.mark.parametrize("patient", ["Breast_MRI_001", "Breast_MRI_002"])
def test_simpleitk_reads_a_series_with_the_right_geometry(cohort, truth, patient):
    sdir = _series_dirs(cohort, patient, truth)[1]
    reader = sitk.ImageSeriesReader()
    names = reader.GetGDCMSeriesFileNames(str(sdir))  # SimpleITK sorts by increasing z, whatever the numbering
    t = truth.loc[patient]
    assert [Path(n).name for n in names] == sorted((p.name for p in sdir.glob("*.dcm")),
                                                   reverse=t.slice_numbering == "top-down")
    reader.SetFileNames(names)
    image = reader.Execute()
    assert image.GetSize() == (t["columns"], t["rows"], t["slices"])
    assert image.GetSpacing() == pytest.approx((t.pixel_spacing_mm, t.pixel_spacing_mm, t.slice_spacing_mm), abs=1e-4)
    volume = sitk.GetArrayFromImage(image)  # volume[z, row, col]
    number = 5 if t.slice_numbering == "bottom-up" else t.slices - 4
    assert np.array_equal(volume[4], pydicom.dcmread(sdir / f"1-{number:03d}.dcm").pixel_array)


def test_shared_series_and_extra_t1_series_are_written_as_in_the_real_collection(cohort, truth):
    """One series of all phases: 5 x slices files numbered phase after phase, each phase in the patient's
    numbering, told apart by TemporalPositionIdentifier. The extra T1 series: fewer, thicker slices, no phase."""
    shared = [p for p in truth.index if truth.loc[p, "series_variant"] in synth.MULTIPHASE_VARIANTS]
    extra = [p for p in truth.index if truth.loc[p, "extra_series"]]
    assert shared and extra
    for patient in shared:
        (sdir,) = _series_dirs(cohort, patient, truth)
        h, n = _headers(sdir), truth.loc[patient, "slices"]
        assert list(h.number) == list(range(1, 5 * n + 1)) and list(h.phase) == list(np.repeat(range(1, 6), n))
        step = np.sign(np.diff(h.z.to_numpy().reshape(5, n), axis=1))
        assert (step == (-1 if truth.loc[patient, "slice_numbering"] == "top-down" else 1)).all()
        assert pydicom.dcmread(h.file[0]).SeriesDescription == truth.loc[patient, "series_variant"]
    for patient in extra:
        first, dce = _series_dirs(cohort, patient)[0], _series_dirs(cohort, patient, truth)[0]
        ds = pydicom.dcmread(next(first.glob("*.dcm")), stop_before_pixels=True)
        assert ds.SeriesDescription == synth.NON_DYNAMIC_DESCRIPTION and "TemporalPositionIdentifier" not in ds
        assert float(ds.SliceThickness) == 2 * truth.loc[patient, "slice_spacing_mm"]
        assert len(list(first.glob("*.dcm"))) == (truth.loc[patient, "slices"] + 1) // 2
        assert ds.SeriesNumber < pydicom.dcmread(next(dce.glob("*.dcm"))).SeriesNumber


def test_annotation_boxes_header_and_boxes_hold_the_lesions(cohort, truth):
    assert (cohort / "Annotation_Boxes.csv").read_text().splitlines()[0] == BOX_HEADER
    if DUKE.is_dir():
        assert (DUKE / "Annotation_Boxes.csv").read_text().splitlines()[0] == BOX_HEADER
    boxes = pd.read_csv(cohort / "Annotation_Boxes.csv")
    lesions = pd.read_csv(cohort / "synthetic_lesions.csv")
    assert len(boxes) == len(lesions) == truth.n_lesions.sum()
    assert boxes["Patient ID"].tolist() == lesions.patient.tolist()
    for (_, b), (_, les) in zip(boxes.iterrows(), lesions.iterrows()):
        t = truth.loc[b["Patient ID"]]
        if t.fault == "":  # box slices count files by InstanceNumber; the truth centre is in increasing z
            pre = _headers(_series_dirs(cohort, b["Patient ID"], truth)[0])
            pre = pre[pre.phase == 1].set_index("number").z
            z_centre = np.sort(pre.to_numpy())[int(round(les.centre_z))]
            assert min(pre[b["Start Slice"]], pre[b["End Slice"]]) <= z_centre <= max(pre[b["Start Slice"]],
                                                                                   pre[b["End Slice"]])
        if t.fault == "box_outside" and les.lesion == 1:
            assert b["End Row"] > t["rows"]
            continue
        assert 1 <= b["Start Row"] <= b["End Row"] <= t["rows"]
        assert 1 <= b["Start Column"] <= b["End Column"] <= t["columns"]
        assert 1 <= b["Start Slice"] <= b["End Slice"] <= t["slices"]
        # the truth centre (0-based voxels, z in increasing z) lies in the 1-based inclusive box
        first, last = (b["Start Slice"], b["End Slice"]) if t.slice_numbering == "bottom-up" else \
            (t.slices + 1 - b["End Slice"], t.slices + 1 - b["Start Slice"])
        assert first - 1 <= les.centre_z + 0.5 and les.centre_z - 0.5 <= last - 1
        assert b["Start Row"] - 1 <= les.centre_y + 0.5 and les.centre_y - 0.5 <= b["End Row"] - 1
        assert b["Start Column"] - 1 <= les.centre_x + 0.5 and les.centre_x - 0.5 <= b["End Column"] - 1


def test_clinical_table_has_the_real_header_and_consistent_values(cohort, truth):
    wb = openpyxl.load_workbook(cohort / "Clinical_and_Other_Features.xlsx")
    ws = wb["Data"]
    names = [c.value for c in ws[2]]
    assert names == [n for n, _ in CLINICAL_COLUMNS] and ws.cell(4, 1).value == "Breast_MRI_001"
    assert ws.max_row == 3 + len(truth)
    if DUKE.is_dir():
        real = openpyxl.load_workbook(DUKE / "Clinical_and_Other_Features.xlsx", read_only=False)["Data"]
        for r in (1, 2, 3):
            assert [ws.cell(r, c).value for c in range(1, 99)] == [real.cell(r, c).value for c in range(1, 99)]
        assert {str(m) for m in ws.merged_cells.ranges} == {str(m) for m in real.merged_cells.ranges}
    table = pd.read_excel(cohort / "Clinical_and_Other_Features.xlsx", sheet_name="Data", header=1).iloc[1:]
    table = table.set_index("Patient ID").loc[truth.index]
    clean = truth.fault != "missing_label"
    assert (table["Mol Subtype"][clean].astype(int) == truth.mol_subtype[clean]).all()
    assert table["Mol Subtype"][~clean].isna().all()
    assert ((table.ER + table.PR > 0) == truth.mol_subtype.isin([0, 1])).all()
    assert (table.HER2 == truth.mol_subtype.isin([1, 2])).all()
    assert (table.Manufacturer == truth.manufacturer.map({"GE MEDICAL SYSTEMS": 0, "SIEMENS": 2})).all()
    assert (table["Field Strength (Tesla)"] == truth.field_strength.map({1.5: 1, 3.0: 3})).all()
    assert (table["Patient Position During MRI"] == truth.patient_position.map({"FFP": 0, "HFP": 1})).all()
    for patient in truth.index[truth.fault == ""]:  # the position of the file with InstanceNumber 1
        ds = pydicom.dcmread(next(_series_dirs(cohort, patient, truth)[0].glob("1-001.dcm")), stop_before_pixels=True)
        assert table.loc[patient, "Image Position of Patient"] == " X ".join(f"{float(v):.4f}"
                                                                            for v in ds.ImagePositionPatient)


def test_sidecars_match_the_parameter_stage(cohort, truth):
    patients, lesions, genes = synth.simulate_truth(12, seed=5, effect=2.0, faults=True)
    pd.testing.assert_frame_equal(pd.read_csv(cohort / "synthetic_truth.csv", keep_default_na=False), patients,
                                  check_dtype=False)
    pd.testing.assert_frame_equal(pd.read_csv(cohort / "synthetic_lesions.csv"), lesions, check_dtype=False)
    written = pd.read_csv(cohort / "gene_expression.csv")
    pd.testing.assert_frame_equal(written, genes, check_dtype=False, atol=1e-4)
    assert written.shape[1] > 200 and {"ESR1", "PGR", "ERBB2", "MKI67", "CD8A", "KRT5", "GENE0001"} <= set(written)
    assert set(lesions.kinetic_class) <= set(synth.KINETIC_CLASSES)
    assert lesions.groupby("patient").size().between(1, 5).all()


# --- faults ------------------------------------------------------------------------------------------------------

def test_faults_are_recorded_and_injected(cohort, truth):
    manifest = json.loads((cohort / "cohort.json").read_text())
    expected = {f"Breast_MRI_{7 + i:03d}": f for i, f in enumerate(synth.FAULTS)}
    assert manifest["faults"] == expected
    assert truth.fault[truth.fault != ""].to_dict() == expected
    detail = manifest["fault_details"]

    def series_of(patient):
        return _series_dirs(cohort, patient, truth)

    missing = detail["Breast_MRI_007"]["phase"]
    descriptions = [pydicom.dcmread(next(s.glob("*.dcm"))).SeriesDescription for s in series_of("Breast_MRI_007")]
    variant = synth.SERIES_DESCRIPTIONS[truth.loc["Breast_MRI_007", "series_variant"]]
    assert len(descriptions) == 4 and variant[synth.PHASES.index(missing)] not in descriptions
    counts = [len(list(s.glob("*.dcm"))) for s in series_of("Breast_MRI_008")]
    assert sorted(counts)[0] < truth.loc["Breast_MRI_008", "slices"] == max(counts)
    for patient, fault in (("Breast_MRI_009", "truncated_dicom"), ("Breast_MRI_010", "not_dicom")):
        d = detail[patient]
        victim = series_of(patient)[synth.PHASES.index(d["phase"])] / f"1-{d['slice']:03d}.dcm"
        neighbour = victim.with_name(f"1-{1 if d['slice'] > 1 else 2:03d}.dcm")
        with pytest.raises(Exception):  # noqa: B017 - pydicom raises several types for a broken file
            _ = pydicom.dcmread(victim).pixel_array
        if fault == "truncated_dicom":
            # half of a file whose position text may be a few bytes shorter than its neighbour's
            assert abs(victim.stat().st_size - neighbour.stat().st_size // 2) <= 8
        else:
            assert not victim.read_bytes()[128:132] == b"DICM"
    for patient in truth.index[truth.fault == ""]:  # clean patients: 5 complete series, or one of all 5 phases
        counts = [len(list(s.glob("*.dcm"))) for s in series_of(patient)]
        n = truth.loc[patient, "slices"]
        assert counts == ([5 * n] if truth.loc[patient, "series_variant"] in synth.MULTIPHASE_VARIANTS else [n] * 5)


# --- the phenotype: images, subtype signal, genes -----------------------------------------------------------------

def test_images_show_the_lesion_kinetics(cohort, truth):
    """In the rendered volumes each lesion centre enhances as its parameters say, and washes out as they say."""
    lesions = pd.read_csv(cohort / "synthetic_lesions.csv")
    rows = []
    for patient in truth.index[truth.fault == ""]:
        vols = _phase_volumes(cohort, patient, truth)
        for _, les in lesions[lesions.patient == patient].iterrows():
            z, y, x = (int(round(v)) for v in (les.centre_z, les.centre_y, les.centre_x))
            around = vols[:, z, max(y - 1, 0):y + 2, max(x - 1, 0):x + 2].mean(axis=(1, 2))
            rows.append({"early": vols[1, z, y, x] / vols[0, z, y, x] - 1,
                         "expected": les.peak * (1 - les.rim) * (1 - np.exp(-1.5 * les.wash_in)),  # at the centre
                         "late_vs_early": around[4] / around[1], "washout": les.washout})
    d = pd.DataFrame(rows)
    assert len(d) >= 8
    assert np.corrcoef(d.early, d.expected)[0, 1] > 0.5
    assert np.corrcoef(d.late_vs_early, d.washout)[0, 1] < -0.3


def test_subtypes_follow_the_public_table_and_scanners_the_paper():
    """Mol Subtype in the public table's shares (595, 104, 59, 164 of 922): luminal-like, the target the table
    claims, is 65% as there, not Zhu et al.'s 33% luminal A."""
    patients, lesions, _ = synth.simulate_truth(270, seed=0)
    assert patients.luminal_like.sum() == 174 and len(patients) == 270  # 270 * 595 / 922 = 174.2
    assert patients.mol_subtype.value_counts().to_dict() == {0: 174, 3: 48, 1: 31, 2: 17}
    per_scanner = patients.scanner.value_counts().to_dict()
    assert per_scanner == {p.name: p.cases for p in synth.PROTOCOLS}
    assert patients.pixel_spacing_mm.value_counts().idxmax() == pytest.approx(3.8636, abs=1e-4)
    sizes = 2 * lesions[lesions.lesion == 1][["radius_y_mm", "radius_x_mm", "radius_z_mm"]]
    assert sizes.min().min() >= 5 - 1e-6 and sizes.max().max() <= 80 + 1e-6
    assert 20 < sizes.radius_y_mm.median() < 45  # the real boxes: ~33 mm high


def test_null_cohort_has_no_kinetic_signal():
    patients, lesions, _ = synth.simulate_truth(210, seed=11, effect=0.0)
    d = lesions.merge(patients[["patient", "luminal_like"]], on="patient")
    for column in KINETIC + ["radius_y_mm"]:
        assert abs(roc_auc_score(d.luminal_like, d[column]) - 0.5) < 0.1, column
    # with effect 0 the subtype changes the receptor columns (and the genes), nothing the images are made from
    luminal = synth.draw_patient(3, 0, synth.PROTOCOLS[2], "", 11, 0.0, None)
    triple_negative = synth.draw_patient(3, 3, synth.PROTOCOLS[2], "", 11, 0.0, None)
    assert luminal.lesions == triple_negative.lesions and luminal.anatomy == triple_negative.anatomy
    differing = {k for k in luminal.clinical if luminal.clinical[k] != triple_negative.clinical[k]}
    assert differing <= {"ER", "PR", "HER2", "Mol Subtype"}


def test_effect_scales_a_learnable_signal():
    patients, lesions, _ = synth.simulate_truth(270, seed=0, effect=1.0)
    assert 0.68 < _lesion_auc(lesions, patients) < 0.85  # default: moderate
    patients, lesions, _ = synth.simulate_truth(270, seed=0, effect=3.0)
    assert _lesion_auc(lesions, patients) > 0.9
    d = lesions.merge(patients[["patient", "luminal_like"]], on="patient")
    assert d[d.luminal_like == 1].kinetic_class.eq("persistent").mean() > d[d.luminal_like == 0].kinetic_class.eq(
        "persistent").mean()


def test_genes_follow_subtype_and_lesion_phenotype():
    for effect in (0.0, 1.0):
        patients, lesions, genes = synth.simulate_truth(270, seed=2, effect=effect)
        g = genes.set_index("patient").loc[patients.patient]
        sub = patients.set_index("patient").mol_subtype
        assert g.ESR1[sub.isin([0, 1]).values].mean() > g.ESR1[sub.isin([2, 3]).values].mean() + 1.5
        assert g.ERBB2[sub.isin([1, 2]).values].mean() > g.ERBB2[sub.isin([0, 3]).values].mean() + 1.5
        assert g.KRT5[(sub == 3).values].mean() > g.KRT5[(sub != 3).values].mean() + 0.5
        per_patient = lesions.groupby("patient")[["wash_in", "rim"]].mean().loc[patients.patient]
        prolif = g[list(synth.GENE_SETS["proliferation"])].mean(axis=1)
        immune = g[list(synth.GENE_SETS["immune"])].mean(axis=1)
        assert np.corrcoef(prolif, np.log(per_patient.wash_in))[0, 1] > 0.3
        assert np.corrcoef(immune, per_patient.rim)[0, 1] > 0.3


# --- identities ----------------------------------------------------------------------------------------------------

def test_fake_identities_stay_in_the_dicom_headers(cohort):
    identities = synth.fake_identities(cohort)
    names = {i for i in identities if "^" in i}
    assert len(names) >= 8  # one per patient (a few may repeat by chance)
    assert any(re.fullmatch(r"(19|20)\d{6}", i) for i in identities)
    texts = [p.read_text() for p in cohort.glob("*.csv")] + [(cohort / "cohort.json").read_text()]
    wb = openpyxl.load_workbook(cohort / "Clinical_and_Other_Features.xlsx")
    texts.append("\n".join(str(c.value) for row in wb["Data"].iter_rows() for c in row if c.value is not None))
    for identity in identities:
        assert not any(identity in text for text in texts), identity


def test_slice_numbering_patient_position_and_series_follow_the_real_collection():
    """Most scans numbered from the top (the real InstanceNumber 1 has the largest z), some from the bottom; head
    first (HFP) only on Siemens, as in the real clinical table; some shared DCE series and extra T1 series."""
    patients, _, _ = synth.simulate_truth(270, seed=0)
    assert 0.15 <= (patients.slice_numbering == "bottom-up").mean() <= 0.25
    siemens = patients.manufacturer == "SIEMENS"
    assert (patients.patient_position[~siemens] == "FFP").all()
    assert 0.35 < (patients.patient_position[siemens] == "HFP").mean() < 0.75
    assert patients.series_variant.isin(synth.MULTIPHASE_VARIANTS).sum() >= 10
    assert 0.2 < (patients.extra_series == synth.NON_DYNAMIC_DESCRIPTION).mean() < 0.4


def test_the_gene_link_can_be_broken_for_a_null_cohort():
    """Issue 13: `gene_link=False` deals the same expression profiles to the patients in a random order, so genes
    keep their programmes but lose every link with the images and the clinical table."""
    patients, lesions, linked = synth.simulate_truth(270, seed=2, effect=1.0)
    _, _, broken = synth.simulate_truth(270, seed=2, effect=1.0, gene_link=False)
    assert list(broken.patient) == list(linked.patient) and not broken.equals(linked)
    rows = lambda t: sorted(map(tuple, t.drop(columns="patient").to_numpy()))  # noqa: E731
    assert rows(broken) == rows(linked)  # the same profiles, other owners
    sub = patients.set_index("patient").mol_subtype
    er = sub.isin([0, 1]).to_numpy()
    for genes, gap in ((linked, 1.5), (broken, None)):
        esr1 = genes.set_index("patient").loc[patients.patient].ESR1.to_numpy()
        difference = esr1[er].mean() - esr1[~er].mean()
        assert difference > gap if gap else abs(difference) < 0.6, difference
    per_patient = lesions.groupby("patient").rim.mean().loc[patients.patient]
    immune = broken.set_index("patient").loc[patients.patient][list(synth.GENE_SETS["immune"])].mean(axis=1)
    assert abs(np.corrcoef(immune, per_patient)[0, 1]) < 0.15
