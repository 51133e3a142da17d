"""Tests for radiolib.stats.evaluation: folds, patient scores, AUC, bootstrap, DeLong, cross-validation."""

import zlib

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from radiolib.stats import evaluation as ev


def cohort(n_pos=90, n_neg=180):
    """A paper-sized cohort: 90 luminal A (1) and 180 others (0), ids P000..."""
    patients = [f"P{i:03d}" for i in range(n_pos + n_neg)]
    labels = [1] * n_pos + [0] * n_neg
    return patients, labels


def _fold_rng(fold):
    return np.random.default_rng([fold["repeat"], fold["fold"], 7])


def fit_predict_signal(fold):
    """Scores = true label + small noise: a near-perfect model."""
    rng = _fold_rng(fold)
    tr = pd.Series(np.asarray(fold["train_labels"]) + rng.normal(0, 0.3, len(fold["train_labels"])),
                   index=fold["train_patients"])
    te = pd.Series(np.asarray(fold["test_labels"]) + rng.normal(0, 0.3, len(fold["test_labels"])),
                   index=fold["test_patients"])
    return ev.FoldOutput(tr, te, curves={"train_auc": [0.5, 0.7], "test_auc": [0.5, 0.6]})


def fit_predict_noise(fold):
    """Scores independent of the labels (seeded per patient), returned as a plain dict."""
    def score(p):
        return np.random.default_rng(zlib.crc32(p.encode())).normal()
    return {"train_scores": {p: score(p) for p in fold["train_patients"]},
            "test_scores": {p: score(p) for p in fold["test_patients"]}}


# --- folds ------------------------------------------------------------------------------------------------------

def test_folds_stratified_disjoint_and_complete():
    patients, labels = cohort()
    folds = ev.patient_folds(patients, labels, n_folds=10, repeats=5, seed=0)
    assert len(folds) == 50
    label_of = dict(zip(patients, labels, strict=True))
    for r in range(5):
        rep = [f for f in folds if f["repeat"] == r]
        assert [f["fold"] for f in rep] == list(range(10))
        tested = [p for f in rep for p in f["test_patients"]]
        assert sorted(tested) == sorted(patients)  # every patient tested exactly once per repeat
        for f in rep:
            assert not set(f["train_patients"]) & set(f["test_patients"])
            assert set(f["train_patients"]) | set(f["test_patients"]) == set(patients)
            assert f["test_patients"] == sorted(f["test_patients"])
            assert f["train_patients"] == sorted(f["train_patients"])
            assert all(isinstance(p, str) for p in f["test_patients"])
            n_pos = sum(label_of[p] for p in f["test_patients"])
            assert abs(n_pos - len(f["test_patients"]) * 90 / 270) <= 1
            assert f["test_labels"] == [label_of[p] for p in f["test_patients"]]
            assert f["train_labels"] == [label_of[p] for p in f["train_patients"]]


def test_folds_depend_on_seed_only():
    patients, labels = cohort(30, 60)
    a = ev.patient_folds(patients, labels, n_folds=5, repeats=2, seed=3)
    b = ev.patient_folds(patients, labels, n_folds=5, repeats=2, seed=3)
    c = ev.patient_folds(patients, labels, n_folds=5, repeats=2, seed=4)
    shuffled = ev.patient_folds(patients[::-1], labels[::-1], n_folds=5, repeats=2, seed=3)
    assert a == b == shuffled
    assert [f["test_patients"] for f in a] != [f["test_patients"] for f in c]
    # the repeats are different shuffles of the same patients
    assert a[0]["test_patients"] != a[5]["test_patients"]


def test_folds_tiny_class_error_names_counts():
    patients, labels = cohort(n_pos=4, n_neg=30)
    with pytest.raises(ValueError, match=r"class 1 has only 4 patients.*n_folds=10.*\{0: 30, 1: 4\}"):
        ev.patient_folds(patients, labels, n_folds=10)


def test_folds_bad_input():
    with pytest.raises(ValueError, match="duplicate patients.*'A'"):
        ev.patient_folds(["A", "A", "B", "C"], [0, 1, 0, 1], n_folds=2)
    with pytest.raises(ValueError, match="labels"):
        ev.patient_folds(["A", "B"], [0, 1, 1], n_folds=2)


# --- patient scores ---------------------------------------------------------------------------------------------

def test_patient_scores_mean_per_patient():
    table = pd.DataFrame({"patient": ["B", "A", "B", "A", "C", "B"], "score": [0.2, 0.9, 0.4, 0.7, 0.5, 0.9]})
    out = ev.patient_scores(table["patient"], table["score"])
    assert list(out.index) == ["A", "B", "C"]
    assert out.to_dict() == pytest.approx({"A": 0.8, "B": 0.5, "C": 0.5})


def test_patient_scores_rejects_nan_naming_patient():
    with pytest.raises(ValueError, match="Breast_MRI_007"):
        ev.patient_scores(["Breast_MRI_001", "Breast_MRI_007"], [0.1, float("nan")])


# --- AUC and bootstrap ------------------------------------------------------------------------------------------

def test_auc_matches_sklearn_and_one_class_is_nan():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 100)
    s = np.round(rng.normal(size=100), 1)  # with ties
    assert ev.auc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert np.isnan(ev.auc([1, 1, 1], [0.1, 0.2, 0.3]))


def test_auc_aligns_pandas_series_by_patient():
    y = pd.Series([1, 0, 1, 0], index=["a", "b", "c", "d"])
    s = pd.Series([0.1, 0.9, 0.2, 0.8], index=["b", "a", "d", "c"])  # a=0.9 b=0.1 c=0.8 d=0.2
    assert ev.auc(y, s) == 1.0
    with pytest.raises(ValueError, match="'d'"):
        ev.auc(y, s.drop("d"))


def test_weighted_auc_equals_sklearn_with_sample_weight():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 60)
    s = np.round(rng.normal(size=60) + y, 1)
    w = rng.integers(0, 4, size=(20, 60))
    got = ev.weighted_auc(y, s, w)
    want = [roc_auc_score(y, s, sample_weight=wi) for wi in w]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_bootstrap_perfect_separation():
    y = np.r_[np.ones(30), np.zeros(60)]
    s = np.r_[np.linspace(2, 3, 30), np.linspace(0, 1, 60)]
    assert ev.auc(y, s) == 1.0
    assert ev.bootstrap_ci(y, s) == (1.0, 1.0)


def test_bootstrap_random_scores_contain_half_and_is_deterministic():
    rng = np.random.default_rng(2)
    y = np.r_[np.ones(133), np.zeros(267)]
    s = rng.normal(size=400)
    low, high = ev.bootstrap_ci(y, s, seed=5)
    assert low < 0.5 < high
    assert 0.08 < high - low < 0.16  # AUC SE ~0.03 on 400 patients
    assert ev.bootstrap_ci(y, s, seed=5) == (low, high)
    assert ev.bootstrap_ci(y, s, seed=6) != (low, high)


def test_bootstrap_skips_single_class_resamples():
    y = [1, 0, 0, 0, 0, 0]
    s = [0.9, 0.1, 0.2, 0.3, 0.4, 0.5]
    aucs = ev.bootstrap_aucs(y, s, n_boot=1000, seed=0)
    # P(no positive drawn) = (5/6)^6 = 0.335, so about 335 resamples are skipped
    assert 250 < 1000 - len(aucs) < 420
    assert np.all(aucs == 1.0)
    assert ev.bootstrap_ci(y, s) == (1.0, 1.0)
    assert all(np.isnan(ev.bootstrap_ci([1, 1], [0.1, 0.2])))


def test_bootstrap_is_one_vectorised_pass_not_a_loop_of_resamples(monkeypatch):
    """All resamples' AUCs come from one weighted_auc call on the (n_boot, n) draw counts, never one roc_auc_score
    per resample (the time it takes: benchmarks/bench_bootstrap.py); each equals that resample's own AUC."""
    rng = np.random.default_rng(3)
    y = np.r_[np.ones(30), np.zeros(60)]
    s = rng.normal(size=90) + 0.3 * y
    calls, weighted = [], ev.weighted_auc
    monkeypatch.setattr(ev, "roc_auc_score", lambda *a, **k: calls.append("roc_auc_score"))
    monkeypatch.setattr(ev, "weighted_auc", lambda yv, sv, w: calls.append(np.shape(w)) or weighted(yv, sv, w))
    aucs = ev.bootstrap_aucs(y, s, n_boot=50, seed=1)
    assert calls == [(50, 90)]
    draws = np.random.default_rng(1).integers(0, 90, size=(50, 90))
    monkeypatch.undo()
    assert np.allclose(aucs, [ev.auc(y[d], s[d]) for d in draws])


# --- DeLong -----------------------------------------------------------------------------------------------------

def test_delong_aucs_match_sklearn():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 150)
    s1 = np.round(rng.normal(size=150) + 0.8 * y, 1)
    s2 = rng.normal(size=150) + 0.3 * y
    out = ev.delong(y, s1, s2)
    assert out["auc1"] == pytest.approx(roc_auc_score(y, s1), abs=1e-12)
    assert out["auc2"] == pytest.approx(roc_auc_score(y, s2), abs=1e-12)
    assert out["diff"] == pytest.approx(out["auc1"] - out["auc2"])
    assert out["z"] == pytest.approx(out["diff"] / out["se"])


def test_delong_identical_scores():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 80)
    s = rng.normal(size=80)
    out = ev.delong(y, s, s)
    assert out["diff"] == 0 and out["p"] == 1.0 and out["z"] == 0


def test_delong_clearly_better_model():
    rng = np.random.default_rng(6)
    y = np.r_[np.ones(90), np.zeros(180)]
    good = y * 1.5 + rng.normal(size=270)
    bad = rng.normal(size=270)
    out = ev.delong(y, good, bad)
    assert out["diff"] > 0.2 and out["p"] < 0.01


def test_delong_hand_computed_3_vs_3():
    # positives (patients 1-3), negatives (4-6)
    # s1: pos 0.9 0.8 0.3 | neg 0.7 0.2 0.1 -> V10 = [1, 1, 2/3], V01 = [2/3, 1, 1], AUC1 = 8/9
    # s2: pos 0.9 0.5 0.3 | neg 0.7 0.6 0.1 -> V10 = [1, 1/3, 1/3], V01 = [1/3, 1/3, 1], AUC2 = 5/9
    # sample variances (ddof 1): S10 = [[1/27, 1/27], [1/27, 4/27]], S01 the same
    # Var(AUC1) = 1/27/3 + 1/27/3 = 2/81; Var(diff) = 2 * (1/27 + 4/27 - 2/27) / 3 = 2/27
    # z = (1/3) / sqrt(2/27) = sqrt(3/2) = 1.2247, p = 2 * (1 - Phi(1.2247)) = 0.2207
    y = [1, 1, 1, 0, 0, 0]
    s1 = [0.9, 0.8, 0.3, 0.7, 0.2, 0.1]
    s2 = [0.9, 0.5, 0.3, 0.7, 0.6, 0.1]
    out = ev.delong(y, s1, s2)
    assert out["auc1"] == pytest.approx(8 / 9)
    assert out["auc2"] == pytest.approx(5 / 9)
    assert out["se"] == pytest.approx(np.sqrt(2 / 27))
    assert out["z"] == pytest.approx(np.sqrt(1.5))
    assert out["p"] == pytest.approx(0.2207, abs=1e-4)
    assert ev.delong_variance(y, s1) == pytest.approx(2 / 81)


def test_delong_variance_matches_bootstrap():
    rng = np.random.default_rng(7)
    y = np.r_[np.ones(100), np.zeros(200)]
    s = rng.normal(size=300) + 0.7 * y
    boot_var = np.var(ev.bootstrap_aucs(y, s, n_boot=4000, seed=1))
    assert ev.delong_variance(y, s) == pytest.approx(boot_var, rel=0.2)
    low, high = ev.delong_ci(y, s)
    a = ev.auc(y, s)
    assert low < a < high and (a - low) == pytest.approx(high - a)
    assert high - low == pytest.approx(2 * 1.959964 * np.sqrt(ev.delong_variance(y, s)))


def test_delong_needs_two_of_each_class():
    with pytest.raises(ValueError, match="at least 2 positives"):
        ev.delong([1, 0, 0], [0.3, 0.2, 0.1], [0.1, 0.2, 0.3])


# --- cross-validation -------------------------------------------------------------------------------------------

def test_cross_validate_signal_gives_high_auc():
    folds = ev.patient_folds(*cohort(), n_folds=10, repeats=5, seed=0)
    res = ev.cross_validate(folds, fit_predict_signal, progress=False)
    assert len(res.folds) == 50 and len(res.repeat_aucs) == 5
    assert res.test_auc > 0.95 and res.train_auc > 0.95
    assert res.ci95[0] > 0.9
    assert sorted(res.repeat_aucs)[2] == res.test_auc
    assert res.repeat_aucs[res.median_repeat] == res.test_auc
    assert list(res.oof_scores.index) == sorted(cohort()[0])
    assert res.oof_labels.sum() == 90
    assert res.curves[0] == {"train_auc": [0.5, 0.7], "test_auc": [0.5, 0.6]}
    assert list(res.fold_table().columns) == ["repeat", "fold", "n_train", "n_test", "auc", "train_auc"]


def test_cross_validate_noise_ci_contains_half():
    folds = ev.patient_folds(*cohort(), n_folds=10, repeats=3, seed=1)
    res = ev.cross_validate(folds, fit_predict_noise, progress=False)
    assert res.ci95[0] < 0.5 < res.ci95[1]
    assert 0.35 < res.test_auc < 0.65


def fit_predict_by_repeat(fold):
    """Label + noise whose spread depends on the repeat: repeat 0 best, then 2, 1, 3."""
    sd = [0.5, 2.0, 1.0, 4.0][fold["repeat"]]
    rng = _fold_rng(fold)
    te = pd.Series(np.asarray(fold["test_labels"]) + rng.normal(0, sd, len(fold["test_labels"])),
                   index=fold["test_patients"])
    return ev.FoldOutput(None, te)


def test_cross_validate_lower_median_for_even_repeats():
    folds = ev.patient_folds(*cohort(40, 80), n_folds=5, repeats=4, seed=2)
    res = ev.cross_validate(folds, fit_predict_by_repeat, progress=False)
    assert np.argsort(res.repeat_aucs).tolist() == [3, 1, 2, 0]
    assert res.median_repeat == 1  # lower of the two middle repeats (1 and 2)
    fold_aucs = [f["auc"] for f in res.folds if f["repeat"] == 1]
    assert res.test_auc == pytest.approx(np.mean(fold_aucs))
    assert np.isnan(res.train_auc)  # no train scores returned


def test_cross_validate_parallel_equals_serial():
    folds = ev.patient_folds(*cohort(30, 60), n_folds=5, repeats=2, seed=3)
    a = ev.cross_validate(folds, fit_predict_signal, n_jobs=1, progress=False)
    b = ev.cross_validate(folds, fit_predict_signal, n_jobs=2, progress=True, desc="test")
    assert a.folds == b.folds and a.repeat_aucs == b.repeat_aucs and a.ci95 == b.ci95
    pd.testing.assert_series_equal(a.oof_scores, b.oof_scores)


def test_cross_validate_detects_leakage():
    folds = ev.patient_folds(*cohort(20, 40), n_folds=5, repeats=1)
    bad = [dict(f) for f in folds]
    bad[2]["train_patients"] = bad[2]["train_patients"] + [bad[2]["test_patients"][0]]
    leaked = bad[2]["test_patients"][0]
    with pytest.raises(ValueError, match=f"repeat 0 fold 2.*{leaked}"):
        ev.cross_validate(bad, fit_predict_signal, progress=False)
    with pytest.raises(ValueError, match=leaked):
        ev.check_no_leakage(bad)
    ev.check_no_leakage(folds)  # clean folds pass
    row = {"approach": "scratch", "network": "CIFAR", "folds": bad}
    with pytest.raises(ValueError, match=f"scratch CIFAR: repeat 0 fold 2.*{leaked}"):
        ev.check_no_leakage([row])


def test_cross_validate_rejects_test_patient_in_train_scores():
    folds = ev.patient_folds(*cohort(20, 40), n_folds=5, repeats=1)

    def cheating(fold):
        out = fit_predict_signal(fold)
        return ev.FoldOutput(pd.concat([out.train_scores, out.test_scores]), out.test_scores)

    with pytest.raises(ValueError, match="outside the training set"):
        ev.cross_validate(folds, cheating, progress=False)


def test_cross_validate_rejects_incomplete_test_scores():
    folds = ev.patient_folds(*cohort(20, 40), n_folds=5, repeats=1)
    first_test = folds[0]["test_patients"][0]

    def dropping(fold):
        out = fit_predict_signal(fold)
        return ev.FoldOutput(out.train_scores, out.test_scores.iloc[1:])

    with pytest.raises(ValueError, match=f"repeat 0 fold 0.*missing \\['{first_test}'\\]"):
        ev.cross_validate(folds, dropping, progress=False)


def test_cross_validate_names_failing_fold():
    folds = ev.patient_folds(*cohort(20, 40), n_folds=5, repeats=1)

    def failing(fold):
        if fold["fold"] == 3:
            raise KeyError("boom")
        return fit_predict_signal(fold)

    with pytest.raises(RuntimeError, match="repeat 0 fold 3.*KeyError.*boom"):
        ev.cross_validate(folds, failing, progress=False)


def test_cross_validate_with_external_labels():
    patients, labels = cohort(20, 40)
    folds = [{k: f[k] for k in ("repeat", "fold", "train_patients", "test_patients")}
             for f in ev.patient_folds(patients, labels, n_folds=5, repeats=1)]
    with pytest.raises(ValueError, match="labels="):
        ev.cross_validate(folds, fit_predict_noise, progress=False)
    res = ev.cross_validate(folds, fit_predict_noise, progress=False, labels=dict(zip(patients, labels, strict=True)))
    assert res.oof_labels.to_dict() == dict(zip(patients, labels, strict=True))


def test_cross_validate_rejects_wrong_return_type():
    folds = ev.patient_folds(*cohort(20, 40), n_folds=5, repeats=1)
    with pytest.raises(TypeError, match="repeat 0 fold 0.*FoldOutput"):
        ev.cross_validate(folds, lambda fold: [0.5] * len(fold["test_patients"]), progress=False)


def test_the_ci_surrounds_the_reported_fold_mean_auc():
    """The CI is of the statistic reported (mean of fold AUCs), so it contains it even when folds differ in scale."""
    from radiolib.stats.evaluation import auc, fold_mean_bootstrap_ci
    rng = np.random.default_rng(4)
    per_fold = []
    for shift in (0.0, 5.0, -5.0):  # scores on different scales per fold: pooled AUC != mean of fold AUCs
        y = np.repeat([0, 1], 15)
        per_fold.append((y, y * 0.8 + rng.normal(size=30) + shift))
    mean_auc = np.mean([auc(y, s) for y, s in per_fold])
    low, high = fold_mean_bootstrap_ci(per_fold, n_boot=500, seed=0)
    assert low < mean_auc < high and high - low < 0.4


# ---------------------------------------------------------------------------------------------------------------
# Tests of the statistic the tables report (issue 8, part 4)


def _scaled_folds(signal: float, seed: int, n_folds: int = 4, per_class: int = 12):
    """Per-fold (labels, scores) Series whose score scale and offset differ per fold (as different folds' models)."""
    rng = np.random.default_rng(seed)
    out = []
    for f in range(n_folds):
        pats = [f"F{f}P{i:02d}" for i in range(2 * per_class)]
        y = pd.Series(np.repeat([0, 1], per_class), index=pats)
        scale, shift = 10.0 ** (f - 1), 20.0 * (f - 1.5)
        out.append((y, pd.Series(scale * (signal * y.to_numpy() + rng.normal(size=len(y))) + shift, index=pats)))
    return out


def test_paired_bootstrap_tests_the_fold_mean_even_when_pooled_auc_is_chance():
    good = _scaled_folds(2.0, seed=1)  # strong within each fold, fold scales and offsets differ
    noise = [(y, pd.Series(np.random.default_rng(9 + i).normal(size=len(y)), index=y.index))
             for i, (y, _) in enumerate(good)]
    fold_mean = np.mean([ev.auc(y, s) for y, s in good])
    pooled = ev.auc(pd.concat([y for y, _ in good]), pd.concat([s for _, s in good]))
    assert fold_mean > 0.85 and abs(pooled - 0.5) < 0.2  # the 0.838 in the table vs 0.532 pooled
    out = ev.paired_fold_mean_bootstrap(good, noise, n_boot=400, seed=0)
    assert out["auc_a"] == pytest.approx(fold_mean)  # the statistic of the tables, not the pooled AUC
    assert out["auc_b"] == pytest.approx(np.mean([ev.auc(y, s) for y, s in noise]))
    assert out["diff"] == pytest.approx(out["auc_a"] - out["auc_b"])
    assert out["p"] < 0.01 and out["ci95"][0] > 0 and out["strata"] == "folds"
    back = ev.paired_fold_mean_bootstrap(noise, good, n_boot=400, seed=0)  # same resamples: a mirror image
    assert back["diff"] == pytest.approx(-out["diff"]) and back["p"] == pytest.approx(out["p"])
    assert back["ci95"][1] == pytest.approx(-out["ci95"][0])


def test_paired_bootstrap_of_a_row_against_itself_is_no_difference():
    rows = _scaled_folds(0.5, seed=2)
    out = ev.paired_fold_mean_bootstrap(rows, rows, n_boot=200, seed=0)
    assert out["diff"] == 0 and out["p"] == 1.0 and out["ci95"] == (0.0, 0.0)


def test_paired_bootstrap_pairs_the_resamples():
    """Two highly correlated rows with a small consistent gap: paired resampling detects it, unpaired would not."""
    a = _scaled_folds(1.0, seed=3)
    rng = np.random.default_rng(5)
    b = [(y, s + 0.15 * s.std() * rng.normal(size=len(s))) for y, s in a]
    out = ev.paired_fold_mean_bootstrap(a, b, n_boot=400, seed=0)
    width_paired = out["ci95"][1] - out["ci95"][0]
    la, ha = ev.fold_mean_bootstrap_ci(a, n_boot=400, seed=0)
    assert width_paired < (ha - la) / 2  # the difference of paired resamples varies far less than one AUC


def test_paired_bootstrap_with_different_fold_partitions_resamples_the_cohort():
    a = _scaled_folds(1.5, seed=4, n_folds=2)
    pooled_y = pd.concat([y for y, _ in a])
    pooled_s = pd.concat([s for _, s in a])
    halves = [pooled_y.index[::2], pooled_y.index[1::2]]  # another partition of the same patients
    b = [(pooled_y[h], pooled_s[h]) for h in halves]
    out = ev.paired_fold_mean_bootstrap(a, b, n_boot=200, seed=0)
    assert out["strata"] == "cohort" and out["n_boot"] > 150 and np.isfinite(out["p"])


def test_holm_adjustment():
    adjusted = ev.holm([0.01, 0.04, 0.03, 0.005])
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> monotone 0.06
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(ev.holm([0.5, 0.9]), [1.0, 1.0])
    out = ev.holm([0.01, float("nan"), 0.02])
    assert np.isnan(out[1]) and out[0] == pytest.approx(0.02) and out[2] == pytest.approx(0.02)


def test_a_fold_whose_test_scores_are_all_tied_is_flagged(caplog):
    patients, labels = cohort(10, 20)
    folds = ev.patient_folds(patients, labels, n_folds=3, repeats=1)

    def constant_on_fold_1(fold):
        y = np.asarray(fold["test_labels"], dtype=float)
        s = np.full(len(y), 0.7) if fold["fold"] == 1 else y + np.linspace(0, 0.1, len(y))
        return ev.FoldOutput(None, pd.Series(s, index=fold["test_patients"]))

    with caplog.at_level("INFO", logger="radiolib.stats.evaluation"):
        res = ev.cross_validate(folds, constant_on_fold_1, progress=False)
    assert "repeat 0 fold 1: all" in caplog.text and "test scores are tied" in caplog.text
    assert res.tied_folds == ["repeat 0 fold 1"]
    assert res.folds[1]["auc"] == 0.5  # the number itself is what roc_auc_score gives; the flag says what it means
    from radiolib.run import results as rs
    row = rs.make_row("scratch", "cifar", cv=res)
    assert row["tied_folds"] == ["repeat 0 fold 1"]
    warned = rs.tied_fold_warnings([row])
    assert len(warned) == 1 and "repeat 0 fold 1" in warned[0] and warned[0].startswith("WARNING")


def _two_rows(rng, n: int, k: int, gain_a: float) -> tuple[list, list]:
    """Two rows scored on the same k folds of n patients: each patient's scores are label * gain + noise, the noise
    independent between the rows (row b's gain 1.0)."""
    y = (np.arange(n) % 5 < 2).astype(float)[rng.permutation(n)]  # 40% class 1, both classes in every fold
    a, b = gain_a * y + rng.normal(size=n), y + rng.normal(size=n)
    names = np.array([f"p{i}" for i in range(n)])
    rows = []
    for s in (a, b):
        rows.append([(pd.Series(y[i::k], index=names[i::k]), pd.Series(s[i::k], index=names[i::k]))
                     for i in range(k)])
    return rows[0], rows[1]


def test_the_paired_bootstrap_is_calibrated_on_null_rows_and_finds_a_planted_difference():
    """The test behind every comparison of the report: on rows with the same true AUC its p < 0.05 in at most about
    5% of draws (measured 0.045 on 60 patients x 3 folds and 0.047 on 110 x 10 folds, 1,000 draws each); a row
    planted better (+1 SD of signal) is found in most draws."""
    rng = np.random.default_rng(0)
    null = [ev.paired_fold_mean_bootstrap(*_two_rows(rng, 60, 3, 1.0), n_boot=200, seed=i)["p"] for i in range(1000)]
    planted = [ev.paired_fold_mean_bootstrap(*_two_rows(rng, 60, 3, 2.0), n_boot=200, seed=i)["p"]
               for i in range(100)]
    assert np.mean(np.array(null) < 0.05) <= 0.064  # nominal 0.05 plus 2 sd of a rate over 1,000 draws
    assert np.mean(np.array(planted) < 0.05) >= 0.4
