"""Approaches end to end on small synthetic cohorts: a planted signal is found, a null cohort gives chance."""
import numpy as np
import pytest

from radiolib import evaluation, features, models, pretraining, training, weights
from radiolib.dataset import build_patch_set
from radiolib.synth import synthesize


def _patch_set(tmp_path_factory, effect):
    root = tmp_path_factory.mktemp(f"effect{effect}")
    cohort = synthesize(root / "cohort", patients=36, seed=5, effect=effect, progress=False, _max_slices=16, n_jobs=2)
    return build_patch_set(cohort, [80], 4, 0, root / "cache", n_jobs=2, progress=False)


@pytest.fixture(scope="module")
def strong(tmp_path_factory):
    return _patch_set(tmp_path_factory, 3.0)


@pytest.fixture(scope="module")
def null(tmp_path_factory):
    return _patch_set(tmp_path_factory, 0.0)


def _folds(ps):
    return evaluation.patient_folds(ps.table.patient.tolist(), ps.table.label.tolist(), 3, 1, 0)


def _cifar(ps):
    cfg = training.TrainConfig(input_size=32, epochs=3, lr=1e-3, patches_per_epoch=512, seed=0)
    return training.cross_validate_net(ps, 80, _folds(ps), lambda: models.build("cifar", seed=0, input_size=32), cfg,
                                       progress=False)


def _svm(ps):
    net = weights.load_pretrained("googlenet", "random")
    feats = features.extract(net, ps.patches(80), "googlenet", ("flatten",), 56, progress=False)["flatten"]
    return evaluation.cross_validate(_folds(ps), features.svm_fit_predict(feats, ps.index, "linear", 600,
                                                                          train_roles=["train"]), progress=False)


@pytest.mark.slow
def test_planted_signal_is_found_by_the_cifar_net_and_the_svm(strong):
    for cv in (_cifar(strong), _svm(strong)):
        assert cv.test_auc > 0.7 and cv.ci95[0] > 0.5, (cv.test_auc, cv.ci95)


@pytest.mark.slow
def test_null_cohort_gives_a_ci_containing_chance(null):
    for cv in (_cifar(null), _svm(null)):
        assert cv.ci95[0] < 0.5 < cv.ci95[1], (cv.test_auc, cv.ci95)


def test_a_fold_is_trained_on_its_training_patients_and_scored_on_its_test_patients(strong):
    fold = _folds(strong)[0]
    cfg = training.TrainConfig(input_size=32, epochs=2, patches_per_epoch=64, curve_patients=5, seed=0)
    out = training.train_fold(models.build("cifar", seed=0, input_size=32), strong.patches(80), strong.index, fold, cfg)
    assert list(out.test_scores.index) == sorted(fold["test_patients"])
    assert set(out.train_scores.index) <= set(fold["train_patients"]) and len(out.train_scores) == 5
    assert out.curves["epoch"] == [1, 2] and len(out.curves["test_auc"]) == 2
    assert ((out.test_scores >= 0) & (out.test_scores <= 1)).all()


def test_transfer_input_is_cropped_at_random_to_the_network_side():
    cfg = training.TrainConfig(input_size=32, crop=True, normalize="imagenet", bf16=False, channels_last=False)
    scorer = training.PatchScorer(None, cfg, None, None)
    x = np.random.default_rng(0).random((6, 3, 20, 20)).astype(np.float32)
    a = scorer.batch(x, train=True, rng=np.random.default_rng(1))
    b = scorer.batch(x, train=True, rng=np.random.default_rng(2))
    assert a.shape == (6, 3, 32, 32) and not np.allclose(a.numpy(), b.numpy())
    assert np.allclose(scorer.batch(x).numpy(), scorer.batch(x).numpy())  # evaluation: the centre crop


def test_domain_pretraining_task_never_uses_the_subtype(strong):
    rows, y, patients = pretraining.auxiliary_task(strong, 80)
    roles = strong.index.role.to_numpy()[rows]
    assert set(roles) == {"train", "augmented", "normal"}
    assert np.array_equal(y, (roles != "normal").astype(int))
    assert 0.2 < y.mean() < 0.9


def test_svm_settings_in_parallel_give_the_same_results_as_in_sequence():
    import pandas as pd
    rng = np.random.default_rng(0)
    patients = [f"p{i:02d}" for i in range(20)]
    index = pd.DataFrame({"patient": np.repeat(patients, 6), "role": (["train"] * 3 + ["test"] * 3) * 20,
                          "label": np.repeat(np.arange(20) % 2, 6)})
    feats = rng.normal(size=(len(index), 16)) + index.label.to_numpy()[:, None] * 0.5
    folds = evaluation.patient_folds(patients, list(np.arange(20) % 2), 3, 1, 0)
    settings = {k: dict(feats=feats, index=index, folds=folds, kernel=k, max_train=None, train_roles=["train"])
                for k in ("poly", "rbf", "linear")}
    one = features.cross_validate_svms(settings, n_jobs=1, progress=False)
    two = features.cross_validate_svms(settings, n_jobs=2, progress=False)
    assert list(two) == list(settings)
    for k in settings:
        assert one[k].test_auc == two[k].test_auc and one[k].ci95 == two[k].ci95 and one[k].test_auc > 0.7
