"""Real tumour masks (issue 26, item 3) on a synthetic cohort written with `masks=True`: the loader places each
patient's SEG on its grid, the handcrafted features use it, a patient without one keeps the box and is counted, a
damaged SEG is a QC reason."""
import shutil
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest

from radiolib.data import dataset, dicom_seg
from radiolib.data.cohort import load_cohort
from radiolib.data.synth import seg, synthesize
from radiolib.data.synth.phantom import render
from radiolib.data.synth.plan import draw_cohort
from radiolib.learn import handcrafted
from radiolib.run import baselines, protocol
from radiolib.views import widgets

matplotlib.use("Agg")
pytest.importorskip("highdicom")
PATIENTS, SEED, SLICES = 5, 2, 20


def truth(patient: str) -> np.ndarray:
    """The generator's own lesion extent of a patient (the same draw as the cohort's), on its DCE grid."""
    spec = next(s for s in draw_cohort(PATIENTS, SEED, 1.0, [], SLICES) if s.patient == patient)
    mask = np.zeros(spec.shape, bool)
    render(spec, SEED, mask)
    return mask


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


@pytest.fixture(scope="module")
def masked(tmp_path_factory):
    return synthesize(tmp_path_factory.mktemp("masks") / "cohort", patients=PATIENTS, seed=SEED, masks=True,
                      progress=False, _max_slices=SLICES)


@pytest.fixture
def copy(masked, tmp_path):
    return shutil.copytree(masked, tmp_path / "cohort")


def test_the_default_cohort_writes_no_seg_and_its_images_do_not_depend_on_the_mask(tmp_path):
    plain = synthesize(tmp_path / "plain", patients=2, seed=SEED, progress=False, _max_slices=SLICES)
    assert not (plain / dicom_seg.MASK_DIR).exists()
    assert seg.MASK_FOLDER == dicom_seg.MASK_DIR  # the generator writes where `fetch --masks aimi` puts them
    loaded = load_cohort(plain, progress=False)
    assert set(loaded.table["mask"]) == {"box"} and dicom_seg.mask_source(loaded.table) is None
    assert loaded.volume(loaded.patients[0], loaded.target_spacing).mask is None
    spec = draw_cohort(2, SEED, 1.0, [], SLICES)[0]
    mask = np.zeros(spec.shape, bool)
    assert np.array_equal(render(spec, SEED)[0], render(spec, SEED, mask)[0]) and mask.any()


def test_the_loader_gives_each_patient_its_seg_mask_inside_its_box_and_on_its_lesion(masked):
    loaded = load_cohort(masked, progress=False)
    assert list(loaded.table["mask"]) == ["AIMI SEG"] * PATIENTS
    for patient in loaded.patients:
        found = loaded.tumour_mask(patient)
        assert found.phase == "post1" and found.description == "AIMI breast-tumor AI segmentation"
        assert dice(found.mask, truth(patient)) > 0.95  # measured: 1.0 on the DCE grid (the SEG is lossless)
        vol = loaded.volume(patient, loaded.target_spacing)
        box = handcrafted.box_mask(vol.regions, vol.channels.shape[1:])
        assert vol.mask.shape == box.shape and vol.mask.any()
        assert not (vol.mask & ~box).any()  # inside the annotation box on the resampled grid
        assert vol.mask.sum() < 0.8 * box.sum()  # a segmentation, smaller than its box


def test_the_handcrafted_features_are_measured_in_the_mask_not_the_box(masked):
    pytest.importorskip("radiomics")
    loaded = load_cohort(masked, progress=False)
    patient = loaded.patients[0]
    _, reason, feats = handcrafted._patient(loaded, patient, loaded.target_spacing, 0)
    assert reason is None
    vol = loaded.volume(patient, loaded.target_spacing)
    box = handcrafted.volume_features(vol.channels[0], handcrafted.box_mask(vol.regions, vol.channels.shape[1:]),
                                      vol.spacing)
    voxel = float(np.prod(vol.spacing))
    assert feats["shape_VoxelVolume"] == pytest.approx(vol.mask.sum() * voxel)
    assert feats["shape_VoxelVolume"] < 0.8 * box["shape_VoxelVolume"]
    assert feats["shape_Sphericity"] != pytest.approx(box["shape_Sphericity"], rel=0.02)


def test_a_patient_without_a_seg_keeps_the_box_and_is_counted(copy):
    gone = "Breast_MRI_002"
    shutil.rmtree(copy / dicom_seg.MASK_DIR / gone)
    loaded = load_cohort(copy, progress=False)
    assert loaded.table.set_index("patient").loc[gone, "mask"] == "box"
    assert loaded.tumour_mask(gone) is None and loaded.volume(gone, loaded.target_spacing).mask is None
    others = [p for p in loaded.patients if p != gone]
    source = dicom_seg.mask_source(loaded.table)
    assert source == {"AIMI SEG": PATIENTS - 1, "box": 1, "patients": {"AIMI SEG": others, "box": [gone]}}
    assert baselines.masked(loaded.table)["mask_source"] == source
    patch_set = SimpleNamespace(table=loaded.table)
    sentence = protocol.mask_statement("01_preprocessing", patch_set)
    assert len(sentence) == 1 and f"for {PATIENTS - 1} patients" in sentence[0] and "box for 1 " in sentence[0]
    assert protocol.mask_statement("02_training_from_scratch", patch_set) == []


def test_a_damaged_seg_is_a_qc_reason_naming_the_patient(copy):
    victim = "Breast_MRI_003"
    damaged = dicom_seg.seg_files(copy, victim)[0]
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])  # a partial download
    loaded = load_cohort(copy, progress=False)
    patient, reason, layout, _ = dataset._patient_patches(loaded, victim, loaded.target_spacing, [80], 0, 0)
    assert patient == victim and layout is None
    assert reason.startswith(dicom_seg.MASK_REASON) and victim in reason and damaged.name in reason
    assert dataset._patient_patches(loaded, "Breast_MRI_001", loaded.target_spacing, [80], 0, 0)[1] is None


def test_the_patch_explorer_draws_the_mask_outline(masked):
    loaded = load_cohort(masked, progress=False)
    vol = loaded.volume(loaded.patients[0], loaded.target_spacing)
    z = int(np.argmax(vol.mask.sum(axis=(1, 2))))
    args = (vol.channels, vol.regions, z, 0, 20, 1, vol.patient)
    outlined = widgets.slice_with_patch(*args, mask=vol.mask)
    plain = widgets.slice_with_patch(*args)
    assert len(outlined.axes[0].collections) > len(plain.axes[0].collections)
    matplotlib.pyplot.close("all")


def test_the_crfs_are_measured_in_the_mask_cut_as_the_lesion_image(masked, tmp_path):
    pytest.importorskip("radiomics")
    from radiolib.learn import dae
    from radiolib.steps import radiogenomics
    patch_set = dataset.build_patch_set(masked, [80], 0, 0, tmp_path / "cache", progress=False)
    P = SimpleNamespace(data_dir=str(masked), target=None, dae_patch_size=80)
    source = dicom_seg.mask_source(patch_set.table)
    rois = radiogenomics.crf_rois(P, patch_set, source)
    units, meta = dae.lesion_intensities(patch_set, 80)
    assert rois.shape == units.shape and rois.any((1, 2)).mean() > 0.5  # most lesion slices reach the mask
    covered = rois.mean((1, 2))[rois.any((1, 2))]
    assert covered.max() < 0.9  # the mask, not the whole image
    some = np.flatnonzero(rois.any((1, 2)))[:4]
    masked_crf, _ = radiogenomics.slice_crfs(units[some], rois=rois[some])
    border_crf, _ = radiogenomics.slice_crfs(units[some])
    assert not np.allclose(masked_crf["firstorder_Mean"], border_crf["firstorder_Mean"])
    assert (masked_crf["firstorder_Mean"] > border_crf["firstorder_Mean"]).all()  # the enhancing lesion itself
