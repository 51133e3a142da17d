"""The Duke-layout loader: series discovery, labels, boxes, and one exclusion reason per fault."""
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from radiolib import cohort, imaging
from radiolib.synth import SERIES_DESCRIPTIONS

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

EXPECTED_REASON = {
    "missing_phase": "missing sequence",
    "discordant_slices": "discordant slice count pre vs post",
    "truncated_dicom": "unreadable DICOM",
    "not_dicom": "unreadable DICOM",
    "box_outside": "box outside the volume",
    "missing_label": "missing label (Mol Subtype blank)",
}


@pytest.mark.parametrize("variant", list(SERIES_DESCRIPTIONS))
def test_every_real_description_variant_maps_to_its_phase(variant):
    assert [cohort.phase_of(d) for d in SERIES_DESCRIPTIONS[variant]] == ["pre", "post1", "post2", "post3", "post4"]


def test_non_dynamic_series_are_ignored():
    assert cohort.phase_of("ax t2 fs") is None and cohort.phase_of("") is None


def test_each_fault_gives_its_reason_and_nothing_else_is_excluded(patch_set, faulty_cohort):
    faults = json.loads((faulty_cohort / "cohort.json").read_text())["faults"]
    qc = patch_set.qc.set_index("patient").reason
    assert set(qc.index) == set(faults), "exactly the faulty patients are excluded"
    for patient, fault in faults.items():
        assert qc[patient].startswith(EXPECTED_REASON[fault]), (patient, fault, qc[patient])
    assert len(patch_set.table) == 14 - len(faults)


def test_labels_follow_mol_subtype(faulty_cohort):
    c = cohort.load_cohort(faulty_cohort, progress=False)
    truth = pd.read_csv(faulty_cohort / "synthetic_truth.csv").set_index("patient")
    for row in c.table.itertuples():
        assert row.label == int(truth.loc[row.patient, "mol_subtype"] == 0)
    assert c.table.label.isin([0, 1]).all() and c.table.label.sum() > 0


def test_wrong_root_and_unreadable_tables_are_clear_errors(tmp_path, faulty_cohort):
    with pytest.raises(FileNotFoundError, match="not found"):
        cohort.load_cohort(tmp_path / "nowhere", progress=False)
    with pytest.raises(FileNotFoundError, match="Annotation_Boxes.csv"):
        cohort.load_cohort(tmp_path, progress=False)
    broken = tmp_path / "broken"
    shutil.copytree(faulty_cohort, broken, ignore=shutil.ignore_patterns("Breast_MRI_0[1-9]*"))
    (broken / "Clinical_and_Other_Features.xlsx").write_text("not a spreadsheet")
    with pytest.raises(ValueError, match="cannot read the clinical table"):
        cohort.load_cohort(broken, progress=False)


def test_series_nested_below_a_tcia_folder_are_found(tmp_path, faulty_cohort):
    nested = tmp_path / "manifest-123" / "Duke-Breast-Cancer-MRI"
    shutil.copytree(faulty_cohort, nested, ignore=shutil.ignore_patterns("Breast_MRI_01*"))
    c = cohort.load_cohort(tmp_path, progress=False)
    flat = cohort.load_cohort(faulty_cohort, progress=False)
    assert list(c.table.patient) == [p for p in flat.table.patient if not p.startswith("Breast_MRI_01")]
    assert len(c.table) >= 8 and c.table.patient.iloc[0] == "Breast_MRI_001"


def test_resampling_keeps_the_field_of_view_and_is_bilinear():
    arr = np.tile(np.arange(12, dtype=np.float32), (3, 12, 1))  # a ramp along x
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((3.0, 3.0, 4.0))
    out = imaging.resample_inplane(img, 2.0)
    assert out.GetSpacing() == (2.0, 2.0, 4.0) and out.GetSize() == (17, 17, 3)
    ramp = sitk.GetArrayFromImage(out)[1, 5]
    assert np.allclose(ramp, np.arange(17) * 2.0 / 3.0, atol=1e-5)  # linear interpolation of a ramp is exact


def test_boxes_map_onto_the_resampled_grid():
    boxes = pd.DataFrame([{"Start Row": 11, "End Row": 21, "Start Column": 5, "End Column": 9,
                           "Start Slice": 3, "End Slice": 4, "lesion": 1}])
    regions = imaging.box_regions(boxes, factor=0.5)
    assert list(regions.slice) == [2, 3]
    assert regions.cy.iloc[0] == pytest.approx(7.5) and regions.cx.iloc[0] == pytest.approx(3.0)
    assert regions.h.iloc[0] == pytest.approx(5.5) and regions.w.iloc[0] == pytest.approx(2.5)


@pytest.mark.skipif(not (SHARED_DATA / "duke").is_dir(), reason="../shared/data/duke not present")
def test_real_box_and_clinical_files_are_accepted():
    boxes = cohort.read_boxes(SHARED_DATA / "duke" / "Annotation_Boxes.csv")
    clinical = cohort.read_clinical(SHARED_DATA / "duke" / "Clinical_and_Other_Features.xlsx")
    assert len(boxes) == 922 and boxes.patient.str.match(r"Breast_MRI_\d{3}").all()
    assert len(clinical) == 922 and set(clinical.mol_subtype.dropna().unique()) <= {0, 1, 2, 3}
    assert (clinical.mol_subtype == 0).mean() == pytest.approx(0.65, abs=0.1)  # luminal-like majority in Duke
    assert (boxes["End Row"] >= boxes["Start Row"]).all()
