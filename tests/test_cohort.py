"""The Duke-layout loader: series discovery, labels, boxes, and one exclusion reason per fault."""
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from radiolib.data import cohort, imaging, series, synth
from radiolib.data.synth import SERIES_DESCRIPTIONS

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
    assert [series.phase_of(d) for d in SERIES_DESCRIPTIONS[variant]] == ["pre", "post1", "post2", "post3", "post4"]
    folders = [cohort._folder_description(f"{7 + i}.000000-{synth.folder_safe(d)}-12345")
               for i, d in enumerate(SERIES_DESCRIPTIONS[variant])]  # TCIA folder names drop punctuation
    assert [series.phase_of(d) for d in folders] == ["pre", "post1", "post2", "post3", "post4"]


# DCE series names of the real collection besides the variants above, as headers and as TCIA folder names
@pytest.mark.parametrize("description, phase", [
    ("ax dyn 1st pas", "post1"), ("ax 3d dyn MP", "pre"), ("ax dynamic", "pre"), ("ax dyn", "pre"),
    ("ax 3d dyn pre", "pre"), ("ax 3d pre", "pre"), ("t1fl3dtradynVIEWSspair 1st pass", "post1"),
    ("t1fl3dtradynVIEWSspair2nd pass", "post2"), ("t1fl3dtradynVIEWSspair", "pre"), ("Ph1ax 3d dyn", "post1"),
    ("Ph3Ax Vibrant MultiPhase", "post3"), ("Ax Vibrant MultiPhase", "pre"), ("3rd ax dyn", "post3")])
def test_real_dce_names_map_to_their_phase(description, phase):
    assert series.phase_of(description) == phase


# the non-dynamic T1 (and other) series of the real collection: never a DCE phase, above all never 'pre'
@pytest.mark.parametrize("description", ["ax t1 pre", "ax t1", "ax t1 tse +c", "Ax 3D T1 NON FS",
                                         "ax 3d t1 bilateral", "AX IDEAL Breast", "ax t2 fs", ""])
def test_non_dynamic_series_are_ignored(description):
    assert series.phase_of(description) is None


def _headers(**columns) -> pd.DataFrame:
    n = len(columns["position"])
    base = {"file": [Path(f"1-{i + 1:03d}.dcm") for i in range(n)], "instance": np.arange(1.0, n + 1)}
    return pd.DataFrame({**base, **{k: np.full(n, np.nan) for k in series.SPLIT_KEYS}, **columns})


def test_a_shared_series_is_split_by_the_first_key_that_separates_its_phases():
    position = np.tile([3.0, 2.0, 1.0], 4)  # 4 phases x 3 slices, phase after phase
    phase = np.repeat([1.0, 2.0, 3.0, 4.0], 3)
    assert cohort.split_phases(_headers(position=position[:3]), "ax dyn pre") is None  # one phase
    key, groups = cohort.split_phases(_headers(position=position, TriggerTime=phase * 1000,
                                               AcquisitionNumber=np.ones(12)), "ax dynamic")
    assert key == "TriggerTime" and [list(g.instance) for g in groups][1] == [4, 5, 6]
    key, groups = cohort.split_phases(_headers(position=position, AcquisitionNumber=5 - phase,
                                               TemporalPositionIdentifier=phase), "ax dynamic")
    assert key == "TemporalPositionIdentifier" and list(groups[0].instance) == [1, 2, 3]
    key, _ = cohort.split_phases(_headers(position=position, AcquisitionNumber=phase), "ax dynamic")
    assert key == "AcquisitionNumber"
    with pytest.raises(cohort.UnreadableSeries) as err:
        cohort.split_phases(_headers(position=position, AcquisitionNumber=np.ones(12)), "ax 3d dyn MP")
    assert err.value.reason.startswith(cohort.REASONS["unsplit_series"]) and "'ax 3d dyn MP'" in err.value.reason


def test_box_slices_count_files_by_instance_number():
    top_down = _headers(position=[4.0, 3.0, 2.0, 1.0, 0.0])  # InstanceNumber 1 at the largest position
    order, slice_of = imaging.slice_order(top_down, "s")
    assert list(order) == [4, 3, 2, 1, 0] and list(slice_of) == [4, 3, 2, 1, 0]
    shuffled = _headers(position=[0.0, 2.0, 1.0], instance=[3.0, 1.0, 2.0])
    assert list(imaging.slice_order(shuffled, "s")[1]) == [2, 1, 0]  # file 1 at position 2 -> index 2
    shared = _headers(position=[2.0, 1.0, 0.0], instance=[7.0, 8.0, 9.0])  # a later phase of a shared series
    assert list(imaging.slice_order(shared, "s", exact=False)[1]) == [2, 1, 0]
    for bad in (dict(instance=[1.0, np.nan, 3.0]), dict(instance=[1.0, 1.0, 2.0]), dict(instance=[0.0, 1.0, 2.0])):
        with pytest.raises(cohort.UnreadableSeries) as err:
            imaging.slice_order(_headers(position=[2.0, 1.0, 0.0], **bad), "s")
        assert err.value.reason.startswith(cohort.REASONS["slice_numbering"])
    with pytest.raises(cohort.UnreadableSeries, match="repeated"):
        imaging.slice_order(_headers(position=[2.0, 1.0, 0.0], instance=[7.0, 7.0, 9.0]), "s", exact=False)
    boxes = pd.DataFrame([{"Start Row": 1, "End Row": 2, "Start Column": 1, "End Column": 2,
                           "Start Slice": 1, "End Slice": 2, "lesion": 1}])
    assert list(imaging.box_regions(boxes, 1.0, np.array([4, 3, 2, 1, 0])).slice) == [3, 4]


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


def _truth(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "synthetic_truth.csv", keep_default_na=False).set_index("patient")


def _series_dir(root: Path, patient: str, description: str) -> Path:
    (found,) = [d for d in (root / patient).glob("*/*") if f"-{synth.folder_safe(description)}-" in d.name]
    return found


def test_loader_reads_shared_series_and_skips_non_dynamic_t1(faulty_cohort):
    import pydicom
    c, truth = cohort.load_cohort(faulty_cohort, progress=False), _truth(faulty_cohort)
    clean = truth.index[truth.fault == ""]
    shared = [p for p in clean if truth.loc[p, "series_variant"] in synth.MULTIPHASE_VARIANTS]
    extra = [p for p in clean if truth.loc[p, "extra_series"]]
    assert shared and extra and set(clean) <= set(c.table.patient)  # the cohort exercises both; all are read
    for p in extra:  # the pre-contrast phase is the DCE series, not the T1 series numbered before it
        variant = truth.loc[p, "series_variant"]
        assert c.series[p]["pre"].description == SERIES_DESCRIPTIONS.get(variant, [variant])[0]
    for p in shared:
        phases = [c.series[p][ph] for ph in cohort.PHASES]
        assert len({s.dir for s in phases}) == 1 and all(s.split_key == "TemporalPositionIdentifier" for s in phases)
        files = [set(s.paths()) for s in phases]
        assert all(len(f) == truth.loc[p, "slices"] for f in files) and len(set.union(*files)) == 4 * len(files[0])
        tpi = [{pydicom.dcmread(f, stop_before_pixels=True).TemporalPositionIdentifier for f in fs} for fs in files]
        assert tpi == [{1}, {2}, {3}, {4}]


def test_box_regions_sit_on_the_lesion_for_both_slice_numberings(faulty_cohort):
    """Box slice k is the file with InstanceNumber k: the regions hold each lesion's true centre slice (in the
    position-sorted volume) and enhance far more than the same window on the other slices."""
    c, truth = cohort.load_cohort(faulty_cohort, progress=False), _truth(faulty_cohort)
    lesions = pd.read_csv(faulty_cohort / "synthetic_lesions.csv")
    ratios = {"top-down": [], "bottom-up": []}
    for p in truth.index[truth.fault == ""]:
        vol = c.volume(p, c.target_spacing)
        for les in lesions[lesions.patient == p].itertuples():
            regions = vol.regions[vol.regions.lesion == les.lesion]
            assert round(les.centre_z) in set(regions.slice), (p, les.lesion, les.centre_z, list(regions.slice))
            r = regions.iloc[len(regions) // 2]
            window = vol.channels[0, :, max(int(r.cy - r.h / 2), 0):int(r.cy + r.h / 2) + 1,
                                  max(int(r.cx - r.w / 2), 0):int(r.cx + r.w / 2) + 1].mean(axis=(1, 2))
            outside = [z for z in range(len(window)) if z not in set(regions.slice)]
            if outside:
                ratios[truth.loc[p, "slice_numbering"]].append(window[regions.slice].mean()
                                                               / max(window[outside].mean(), 1e-3))
    for numbering, values in ratios.items():
        assert len(values) >= 2 and np.median(values) > 4, (numbering, values)


def test_bad_slice_numbering_and_unsplittable_series_exclude_the_patient(tmp_path):
    import pydicom

    from radiolib.data.dataset import build_patch_set
    root = synth.synthesize(tmp_path / "c", patients=5, seed=4, progress=False, _max_slices=4)
    truth = _truth(root)
    assert truth.loc["Breast_MRI_005", "series_variant"] in synth.MULTIPHASE_VARIANTS

    def rewrite(patient, phase, change, names=None):
        descriptions = SERIES_DESCRIPTIONS.get(truth.loc[patient, "series_variant"])
        sdir = _series_dir(root, patient, descriptions[phase] if descriptions else truth.loc[patient, "series_variant"])
        for f in sorted(sdir.glob("*.dcm")) if names is None else [sdir / n for n in names]:
            ds = pydicom.dcmread(f)
            change(ds)
            ds.save_as(f)

    rewrite("Breast_MRI_001", 2, lambda ds: setattr(ds, "InstanceNumber", 1), ["1-002.dcm"])  # duplicated
    rewrite("Breast_MRI_002", 0, lambda ds: delattr(ds, "InstanceNumber"), ["1-003.dcm"])  # missing
    rewrite("Breast_MRI_003", 1, lambda ds: setattr(ds, "InstanceNumber", ds.InstanceNumber - 1))  # 0..N-1
    rewrite("Breast_MRI_005", 0, lambda ds: delattr(ds, "TemporalPositionIdentifier"))  # phases not separable
    scanned = cohort.load_cohort(root, progress=False)
    (unsplit,) = scanned.qc.reason[scanned.qc.patient == "Breast_MRI_005"]
    assert unsplit.startswith(cohort.REASONS["unsplit_series"]) and truth.loc["Breast_MRI_005", "series_variant"] \
        in unsplit
    qc = build_patch_set(root, [80], 0, 0, tmp_path / "cache", progress=False).qc.set_index("patient").reason
    assert set(qc.index) == {"Breast_MRI_001", "Breast_MRI_002", "Breast_MRI_003", "Breast_MRI_005"}
    for p in ("Breast_MRI_001", "Breast_MRI_002", "Breast_MRI_003"):
        assert qc[p].startswith(cohort.REASONS["slice_numbering"]), qc[p]
    assert "repeated" in qc["Breast_MRI_001"] and "no InstanceNumber" in qc["Breast_MRI_002"] \
        and "0..3 is not 1..4" in qc["Breast_MRI_003"]
