"""radiolib.learn.handcrafted: pyradiomics features of the tumour, the L2 logistic-regression baseline on the run's
folds
(penalty chosen inside the training folds), and how it reaches notebook 01's results file and the tables."""
import builtins
import types

import numpy as np
import pandas as pd
import pytest

from radiolib.data import dataset
from radiolib.data.synth import synthesize
from radiolib.data.synth.lgg import synthesize_lgg
from radiolib.learn import handcrafted
from radiolib.run import baselines, params, results
from radiolib.stats import evaluation

FOLDS = dict(n_folds=4, repeats=2, seed=0, n_boot=200)


def _P(cache_dir, **changes):
    return types.SimpleNamespace(**{**params.defaults("01_preprocessing"), **FOLDS, "cache_dir": str(cache_dir),
                                    "n_jobs": 1, **changes})


def _table(n=60, effect=1.0, seed=0):
    """A feature table of n patients, the first feature shifted by `effect` SD in class 1, and their folds."""
    rng = np.random.default_rng(seed)
    patients = [f"P{i:03d}" for i in range(n)]
    y = np.arange(n) % 2
    x = pd.DataFrame(rng.normal(size=(n, 5)), index=patients, columns=[f"f{j}" for j in range(5)])
    x["f0"] += effect * y
    return x, y, evaluation.patient_folds(patients, y, FOLDS["n_folds"], FOLDS["repeats"], FOLDS["seed"])


def test_box_masks_follow_the_regions_and_stay_inside_the_volume():
    regions = pd.DataFrame([{"lesion": 1, "slice": 2, "cy": 5.0, "cx": 6.5, "h": 3.0, "w": 4.0},
                            {"lesion": 1, "slice": 3, "cy": 0.0, "cx": 9.0, "h": 5.0, "w": 5.0},
                            {"lesion": 2, "slice": 9, "cy": 5.0, "cx": 5.0, "h": 2.0, "w": 2.0}])
    mask = handcrafted.box_mask(regions, (4, 10, 10))
    assert mask[2].sum() == 12 and mask[2, 4:7, 5:9].all()  # rows 4..6, columns 5..8
    assert mask[3].sum() == 3 * 3 and mask[3, 0:3, 7:10].all()  # clipped at the top and right edges
    assert mask[:2].sum() == 0  # slice 9 is outside: ignored


def test_features_of_a_sphere_are_its_volume_and_its_mean():
    z, y, x = np.mgrid[:24, :32, :32]
    mask = (2 * (z - 12)) ** 2 + (y - 16) ** 2 + (x - 16) ** 2 <= 10 ** 2  # a sphere on a 2 x 1 x 1 mm grid
    image = np.where(mask, 2.0, 0.0) + 0.01 * np.random.default_rng(0).normal(size=mask.shape)
    feats = handcrafted.volume_features(image, mask, (2.0, 1.0, 1.0))
    assert feats["firstorder_Mean"] == pytest.approx(2.0, abs=0.01)
    assert feats["shape_VoxelVolume"] == pytest.approx(mask.sum() * 2.0)
    assert feats["shape_Flatness"] == pytest.approx(1.0, abs=0.05)  # round only if the spacing was applied
    assert handcrafted.volume_features(image, mask, (1.0, 1.0, 1.0))["shape_Flatness"] < 0.6
    assert len(feats) > 25 and all(np.isfinite(v) for v in feats.values())
    with pytest.raises(ValueError, match="empty tumour mask"):
        handcrafted.volume_features(image, np.zeros_like(mask), (1.0, 1.0, 1.0))


def test_a_planted_feature_is_found_and_a_null_table_stays_at_chance():
    x, _, folds = _table(effect=2.0)
    row = baselines.baseline_row(x, {}, folds, n_boot=FOLDS["n_boot"])
    results.validate_rows([row])
    assert row["approach"] == "handcrafted" and row["test_auc"] > 0.8 and row["ci95"][0] > 0.6
    assert {c["fold"] for c in row["chosen_C"]} == set(range(FOLDS["n_folds"]))
    assert all(c["C"] in handcrafted.C_GRID for c in row["chosen_C"])
    null = baselines.baseline_row(_table(effect=0.0, seed=3)[0], {}, folds, n_boot=FOLDS["n_boot"])
    assert null["ci95"][0] < 0.5 < null["ci95"][1]


def test_the_penalty_is_chosen_on_training_patients_only(monkeypatch):
    x, _, folds = _table()
    seen = []
    real = handcrafted._pipeline

    def spy(n_inner, seed):
        search = real(n_inner, seed)
        fit = search.fit
        search.fit = lambda X, y: (seen.append(X.shape[0]), fit(X, y))[1]
        return search
    monkeypatch.setattr(handcrafted, "_pipeline", spy)
    baselines.baseline_row(x, {}, folds, n_boot=50)
    assert seen == [len(f["train_patients"]) for f in folds]


def test_a_patient_without_features_keeps_its_place_and_is_named(monkeypatch):
    x, _, folds = _table(effect=2.0)
    x.loc["P007"] = np.nan
    row = baselines.baseline_row(x, {"P007": "UnreadableSeries: phase 1 missing"}, folds, n_boot=50)
    assert row["imputed"] == {"P007": "UnreadableSeries: phase 1 missing"}
    assert "P007" in row["oof"] and set(row["oof"]) == set(x.index)
    assert baselines.baseline_row(x * np.nan, {p: "x" for p in x.index}, folds)["skipped"]


def test_without_pyradiomics_the_baseline_is_skipped_with_the_install_command(monkeypatch, tmp_path):
    real_import = builtins.__import__

    def no_radiomics(name, *args, **kwargs):
        if name == "radiomics" or name.startswith("radiomics."):
            raise ImportError("No module named 'radiomics'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_radiomics)
    row = baselines.baseline_of_patch_set(tmp_path, None, _P(tmp_path))
    assert row["skipped"].startswith("pyradiomics is not installed") and handcrafted.INSTALL in row["skipped"]
    assert row["test_auc"] is None and handcrafted.sentence(row).startswith("Handcrafted baseline skipped")
    assert handcrafted.entries(row) == {"baseline": row, "baseline_reason": row["skipped"]}


def test_duke_features_are_of_the_first_subtraction_in_the_box_and_cached(tmp_path, monkeypatch):
    root = synthesize(tmp_path / "duke", patients=16, seed=2, effect=1.5, progress=False, _max_slices=8)
    ps = dataset.build_patch_set(root, [80], 1, 0, tmp_path / "cache", progress=False)
    P = _P(tmp_path / "cache", n_folds=3, repeats=1)
    row = baselines.baseline_of_patch_set(root, ps, P, progress=False)
    assert row["skipped"] is None and row["channel"] == ps.descriptor.channels[0]
    assert "annotation box" in row["mask"] and "shape_VoxelVolume" in row["features"]
    assert set(row["oof"]) == set(ps.table.patient) and row["imputed"] == {}
    cached = sorted((tmp_path / "cache" / "handcrafted").glob("*.pkl"))
    assert len(cached) == len(ps.table)
    mtimes = [p.stat().st_mtime_ns for p in cached]
    for module in (dataset, handcrafted):  # handcrafted imports open_cohort by name
        monkeypatch.setattr(module, "open_cohort", lambda *a, **k: pytest.fail("the cohort was scanned again"))
    assert baselines.baseline_of_patch_set(root, ps, P, progress=False) == row  # read back, not recomputed
    assert [p.stat().st_mtime_ns for p in cached] == mtimes


def test_lgg_features_are_of_flair_inside_the_tumour_mask(tmp_path):
    root = synthesize_lgg(tmp_path / "lgg", patients=6, seed=0, progress=False)
    cohort = dataset.open_cohort(root, progress=False)
    patients = cohort.patients
    table, reasons, measured = handcrafted.feature_table(root, patients, tmp_path / "cache", progress=False)
    assert measured == {"channel": "FLAIR", "mask": handcrafted.MASK["lgg"]} and reasons == {}
    vol = cohort.volume(patients[0], 1.0)
    assert vol.mask is not None and vol.mask.sum() == int(cohort.table.set_index("patient").tumour_voxels[patients[0]])
    flair = vol.channels[cohort.channel_names.index("FLAIR")]
    assert table.loc[patients[0], "firstorder_Mean"] == pytest.approx(float(flair[vol.mask].mean()), rel=1e-4)
    assert table.loc[patients[0], "shape_VoxelVolume"] == pytest.approx(float(vol.mask.sum()))


def test_the_real_lgg_sample_gives_features_of_its_flair_masks(tmp_path):
    from conftest import SHARED_DATA
    sample = SHARED_DATA / "lgg-sample"
    if not (sample / "kaggle_3m" / "data.csv").is_file():
        pytest.skip("the real lgg-mri-segmentation sample (../shared/data/lgg-sample) is not available")
    cohort = dataset.open_cohort(sample, progress=False)
    table, reasons, measured = handcrafted.feature_table(sample, cohort.patients, tmp_path, progress=False)
    assert reasons == {} and len(table) == 3 and measured["channel"] == "FLAIR"
    voxels = cohort.table.set_index("patient").tumour_voxels
    assert table.shape_VoxelVolume.to_dict() == pytest.approx(voxels.astype(float).to_dict())
    assert table.notna().all().all() and (table.firstorder_Mean > 0).all()
