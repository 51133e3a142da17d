"""Issue 24, item 1: the features of 07-09 see the amplitude of enhancement. The DAE reads the subtraction through
one fixed intensity map for the cohort (02-05's units, clamped at INTENSITY_CAP), and pyradiomics measures the
intensities themselves with a fixed bin width, so scaling one class's enhancement moves both feature sets and, on a
planted cohort, the first-order CRFs follow the true wash-in."""
import dataclasses
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from radiolib.data.dataset import build_patch_set
from radiolib.data.synth import synthesize
from radiolib.learn import dae
from radiolib.learn.training import INTENSITY_CAP
from radiolib.run import params
from radiolib.steps import radiogenomics as rg

GAIN, OFFSET = 2.5, 0.3  # the enhancement of one class made 2.5 times larger, on a raised baseline


def _params(cache, **kw) -> SimpleNamespace:
    """07's defaults with the shortest DAE training, caching in `cache`."""
    return SimpleNamespace(**{**params.defaults("07_receptors"), "dae_epochs": 1, "cache_dir": str(cache),
                              "n_jobs": 1, **kw})


def _with_label_one_enhanced(patch_set, folder) -> object:
    """A copy of the patch set (size 80) whose label-1 patients' patches are GAIN * patch + OFFSET."""
    x = np.asarray(patch_set.patches(80), np.float32).copy()
    one = (patch_set.index.label == 1).to_numpy()
    x[one] = GAIN * x[one] + OFFSET
    folder.mkdir()
    np.save(folder / "patches_80.npy", x.astype(np.float16))
    meta = {**patch_set.meta, "data_fingerprint": f"{patch_set.fingerprint} label 1 enhanced"}
    return dataclasses.replace(patch_set, path=folder, meta=meta)


def test_scaling_one_class_s_enhancement_changes_its_dae_inputs_drfs_and_crfs(patch_set, tmp_path):
    enhanced = _with_label_one_enhanced(patch_set, tmp_path / "enhanced")
    before, meta = dae.lesion_slices(patch_set)
    after, _ = dae.lesion_slices(enhanced)
    one = (meta.label == 1).to_numpy()
    assert 0 < one.sum() < len(one)
    assert np.array_equal(before[~one], after[~one])
    assert all(not np.allclose(a, b, atol=1e-3) for a, b in zip(before[one], after[one]))  # each image of label 1
    # the DRFs of one DAE: those of label 1 move, image by image
    model = dae.train(before, dae.DaeConfig(epochs=1)).model
    drf0, drf1 = (dae.deep_radiomic_features(model, x, normalise=False) for x in (before, after))
    assert np.array_equal(drf0[~one], drf1[~one])
    assert all(not np.allclose(a, b, atol=1e-3) for a, b in zip(drf0[one], drf1[one]))
    # the CRFs as 07-09 compute them: the first-order mean is the mean intensity, so it follows the map exactly
    crf0 = rg.image_features(_params(tmp_path / "a"), patch_set, progress=False).crf
    crf1 = rg.image_features(_params(tmp_path / "b"), enhanced, progress=False).crf
    pd.testing.assert_frame_equal(crf0[~one], crf1[~one])
    np.testing.assert_allclose(crf1.firstorder_Mean[one], GAIN * crf0.firstorder_Mean[one] + OFFSET, rtol=1e-3)
    np.testing.assert_allclose(crf1.firstorder_Variance[one], GAIN ** 2 * crf0.firstorder_Variance[one], rtol=1e-2)
    # a fixed bin width: 2.5 times the range spans about 2.5 times the grey levels
    assert (crf1.firstorder_Entropy[one] > crf0.firstorder_Entropy[one]).all()


class _Enhanced:
    """A data source whose volumes of `patients` hold GAIN * channel + OFFSET (the others as they are)."""

    def __init__(self, source, patients):
        self.source, self.patients, self.target_spacing = source, set(patients), source.target_spacing

    def volume(self, patient, spacing):
        vol = self.source.volume(patient, spacing)
        return dataclasses.replace(vol, channels=GAIN * vol.channels + OFFSET) if patient in self.patients else vol


def test_whole_slices_are_read_on_the_same_map_and_see_enhancement(patch_set, faulty_cohort):
    from radiolib.data import dataset
    _, meta = dae.lesion_slices(patch_set)
    first = meta.groupby("label").patient.first()  # one patient of each class
    meta = meta[meta.patient.isin(first)].reset_index(drop=True)
    source = dataset.open_cohort(faulty_cohort, progress=False)
    plain = dae.whole_slices(source, meta)
    enhanced = dae.whole_slices(_Enhanced(source, [first[1]]), meta)
    one = (meta.label == 1).to_numpy()
    assert np.array_equal(plain[~one], enhanced[~one])
    assert all(not np.allclose(a, b, atol=1e-3) for a, b in zip(plain[one], enhanced[one]))
    # the slices' own units are those the patches were cut in (Volume.channels), on the DAE's one map
    vol = source.volume(first[0], source.target_spacing)
    z = int(meta[~one].slice.iloc[0])
    block = torch.nn.functional.interpolate(torch.from_numpy(vol.channels[None, :1, z]), size=(64, 64), mode="area")
    np.testing.assert_allclose(plain[np.flatnonzero(~one)[0]], dae.to_input(block[0, 0].numpy()), atol=1e-6)


def test_the_dae_input_is_one_map_for_the_cohort_clamped_at_the_cap_of_02_05():
    patch = np.random.default_rng(0).uniform(-0.1, 0.5, (64, 64)).astype(np.float32)
    units = np.stack([patch, GAIN * patch + OFFSET, np.full((64, 64), 0.01, np.float32)])
    x = dae.check_images(dae.to_input(units))
    assert not np.allclose(x[0], x[1])
    np.testing.assert_allclose(x, np.clip(units, 0, INTENSITY_CAP) / INTENSITY_CAP, rtol=1e-6)
    assert x[2].max() < 0.01  # a slice that does not enhance stays dark (min-max scaling stretched its noise)


@pytest.mark.slow
def test_on_a_planted_cohort_the_first_order_mean_carries_the_true_wash_in(tmp_path):
    data = synthesize(tmp_path / "cohort", patients=60, seed=0, effect=1.0, progress=False, _max_slices=8)
    patch_set = build_patch_set(data, [80], 0, 0, tmp_path / "cache", progress=False)
    feats = rg.image_features(_params(tmp_path / "cache"), patch_set, progress=False)
    mean = feats.per_patient("CRF").firstorder_Mean  # 09's "enhancement level" phenotype, before binarising
    truth = pd.read_csv(data / "synthetic_lesions.csv").astype({"patient": str}).groupby("patient").wash_in.mean()
    truth = truth.loc[mean.index]
    auc = roc_auc_score(truth > truth.median(), mean)
    print(f"AUC of the patients' firstorder_Mean for the true wash-in above its median: {auc:.3f}")
    assert auc > 0.6, auc  # per-image min-max inputs: 0.2-0.4 on such cohorts (a mean relative to each slice's range)
