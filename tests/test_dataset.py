"""The cached patch set: counts per patient, geometry, reuse, and no reuse of an interrupted build."""
import numpy as np
import pytest

from radiolib.core import cache
from radiolib.data import dataset, patches


def test_every_patient_has_25_test_patches_and_5_per_region(patch_set):
    idx = patch_set.index
    per_patient = idx[idx.role == "test"].groupby("patient").size()
    assert (per_patient == 25).all() and set(per_patient.index) == set(patch_set.table.patient)
    regions = idx[idx.role == "train"].groupby("patient").size()
    augmented = idx[idx.role == "augmented"].groupby("patient").size()
    assert (augmented == 4 * regions).all()
    assert set(idx.label.unique()) == {0, 1}


def test_patch_arrays_match_the_index_and_the_millimetre_scaling(patch_set):
    spacing = patch_set.meta["target_spacing_mm"]
    for size in (80, 120):
        arr = patch_set.patches(size)
        px = patches.patch_pixels(size, spacing)
        assert arr.shape == (len(patch_set.index), 3, px, px)
        assert np.isfinite(np.asarray(arr, np.float32)).all()
    assert patch_set.patches(120).shape[-1] > patch_set.patches(80).shape[-1]


def test_lesion_centre_is_brighter_than_the_patch_border(patch_set):
    """Patches are centred on enhancing lesions: post1-pre is higher in the middle than at the border."""
    arr = np.asarray(patch_set.patches(80), np.float32)
    orig = arr[(patch_set.index.role == "train").to_numpy()]
    c = orig.shape[-1] // 2
    centre = orig[:, 0, c - 1:c + 2, c - 1:c + 2].mean()
    border = np.concatenate([orig[:, 0, 0, :], orig[:, 0, -1, :]], axis=1).mean()
    assert centre > border + 0.05


def test_warm_rerun_reuses_the_cache(patch_set, faulty_cohort, monkeypatch):
    cache_dir = patch_set.path.parents[1]
    monkeypatch.setattr(dataset, "_build", lambda *a, **k: pytest.fail("rebuilt a complete cache"))
    again = dataset.build_patch_set(faulty_cohort, [80, 120], 4, 0, cache_dir, progress=False)
    assert again.path == patch_set.path and again.index.equals(patch_set.index)


def test_an_interrupted_build_is_never_reused(faulty_cohort, tmp_path, monkeypatch):
    real_save = np.save
    calls = []

    def dying_save(path, arr):
        calls.append(path)
        if len(calls) == 2:  # killed while writing the second patch size
            raise KeyboardInterrupt
        real_save(path, arr)
    monkeypatch.setattr(dataset.np, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        dataset.build_patch_set(faulty_cohort, [80, 120], 4, 0, tmp_path, progress=False)
    entries = list((tmp_path / "patches").iterdir())
    assert not any(cache.is_complete(e) for e in entries)
    monkeypatch.setattr(dataset.np, "save", real_save)
    ps = dataset.build_patch_set(faulty_cohort, [80, 120], 4, 0, tmp_path, progress=False)
    assert cache.is_complete(ps.path) and ps.patches(120).shape[0] == len(ps.index)


def test_same_parameters_same_patches_other_seed_other_augmentation(patch_set, faulty_cohort, tmp_path):
    other = dataset.build_patch_set(faulty_cohort, [80, 120], 4, 1, tmp_path, progress=False)
    assert other.path != patch_set.path
    fixed = lambda ps: ps.index.role.isin(["train", "test"]).to_numpy()  # noqa: E731 - the others are random
    a, b = np.asarray(patch_set.patches(80)), np.asarray(other.patches(80))
    assert np.array_equal(a[fixed(patch_set)], b[fixed(other)])
    aug = lambda ps: ps.index.role.eq("augmented").to_numpy()  # noqa: E731
    assert not np.array_equal(a[aug(patch_set)], b[aug(other)])
