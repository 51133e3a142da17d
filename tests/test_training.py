"""Approaches end to end on small synthetic cohorts: a planted signal is found, a null cohort gives chance."""
import dataclasses

import numpy as np
import pytest
import torch

from radiolib.data.dataset import build_patch_set
from radiolib.data.synth import synthesize
from radiolib.learn import features, models, pretraining, training, weights
from radiolib.stats import evaluation


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
    assert np.isfinite(out.test_scores).all() and out.test_scores.dtype == np.float64  # log-odds: any real value


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


def _toy_features(width: int, shift: float):
    """20 patients (alternating labels), 3 train + 3 test patches each, features shifted by `shift` for label 1,
    and 3 patient-level folds: (features, index, folds)."""
    import pandas as pd
    rng = np.random.default_rng(0)
    patients = [f"p{i:02d}" for i in range(20)]
    index = pd.DataFrame({"patient": np.repeat(patients, 6), "role": (["train"] * 3 + ["test"] * 3) * 20,
                          "label": np.repeat(np.arange(20) % 2, 6)})
    feats = rng.normal(size=(len(index), width)) + index.label.to_numpy()[:, None] * shift
    return feats, index, evaluation.patient_folds(patients, list(np.arange(20) % 2), 3, 1, 0)


@pytest.mark.slow
def test_svm_settings_in_parallel_give_the_same_results_as_in_sequence():
    feats, index, folds = _toy_features(16, 0.5)
    settings = {k: dict(feats=feats, index=index, folds=folds, kernel=k, max_train=None, train_roles=["train"])
                for k in ("poly", "rbf", "linear")}
    one = features.cross_validate_svms(settings, n_jobs=1, progress=False)
    two = features.cross_validate_svms(settings, n_jobs=2, progress=False)
    assert list(two) == list(settings)
    for k in settings:
        assert one[k].test_auc == two[k].test_auc and one[k].ci95 == two[k].ci95 and one[k].test_auc > 0.7


class _FixedLogits(torch.nn.Module):
    """Logits (0, 100 * mean of the patch): confident enough that softmax saturates to 1.0."""

    def forward(self, x):
        z = 100.0 * x.mean(dim=(1, 2, 3))
        return torch.stack([torch.zeros_like(z), z], dim=1)


def test_patients_are_scored_by_log_odds_not_saturated_probabilities():
    import pandas as pd
    cfg = training.TrainConfig(input_size=8, channels_last=False, device="cpu")
    scorer = training.PatchScorer(_FixedLogits(), cfg, torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1))
    patches = np.concatenate([np.full((2, 3, 8, 8), 0.3), np.full((2, 3, 8, 8), 0.4)]).astype(np.float32)
    index = pd.DataFrame({"patient": ["A", "A", "B", "B"], "role": ["test"] * 4, "label": [0, 0, 1, 1]})
    probs = scorer.probabilities(patches)
    assert np.round(probs, 6).tolist() == [1.0] * 4  # both patients' probabilities round to 1.0
    scores = training.score_patients(scorer, patches, index, ["A", "B"])
    assert scores["A"] == pytest.approx(30.0, rel=1e-5) and scores["B"] == pytest.approx(40.0, rel=1e-5)
    assert evaluation.auc([0, 1], scores.values) == 1.0  # not a tie at 0.5
    with pytest.raises(ValueError, match="2-way"):
        training.logit_difference(np.zeros((3, 3)))


def _svm_setting(tmp_path):
    feats, index, folds = _toy_features(8, 0.4)
    return dict(feats=feats, index=index, folds=folds, kernel="linear", max_train=None, progress=False,
                feature_id="test-features", cache_dir=tmp_path)


def test_n_boot_reaches_the_ci_and_the_cache_key(tmp_path):
    few = features.cross_validate_svm(**_svm_setting(tmp_path), n_boot=20)
    many = features.cross_validate_svm(**_svm_setting(tmp_path), n_boot=2000)
    assert few.test_auc == many.test_auc and few.ci95 != many.ci95
    assert len(list((tmp_path / "cv").glob("*.pkl"))) == 2  # one cache entry per n_boot
    again = features.cross_validate_svm(**_svm_setting(tmp_path), n_boot=20)
    assert again.ci95 == few.ci95


def test_layerwise_setting_is_pre_specified_not_read_from_test_results(tmp_path):
    import json
    rows = [{"network": "googlenet", "skipped": None, "test_auc": 0.99, "patch_size": 80, "kernel": "rbf",
             "source": "imagenet"}]
    (tmp_path / "04_deep_features_svm.json").write_text(json.dumps({"rows": rows}))
    assert not hasattr(features, "best_setting")  # nothing reads notebook 04's test AUCs any more
    size, kernel, why = features.layerwise_setting(patch_sizes=[80, 120])
    assert (size, kernel) == (120, "poly") and "pre-specified" in why
    assert features.layerwise_setting(80, "rbf", [80, 120])[:2] == (80, "rbf")
    with pytest.raises(ValueError, match="120 is not among the run's patch_sizes"):
        features.layerwise_setting(patch_sizes=[80])


def test_domain_pretraining_holds_out_whole_patients(strong, tmp_path, monkeypatch):
    saved = {}
    monkeypatch.setattr(weights, "save_domain_checkpoint", lambda model, out, net, meta: saved.update(meta))
    cfg = training.TrainConfig(input_size=80, epochs=1, patches_per_epoch=32, normalize="imagenet",
                               channels_last=False, seed=0, device="cpu")
    pretraining.pretrain("cifar", strong, 80, tmp_path, cfg, progress=False)
    held = saved["held_out_patients"]
    rows, _, patients = pretraining.auxiliary_task(strong, 80)
    row_patients = strong.index.patient.to_numpy().astype(str)[rows]
    assert 0 < len(held) < len(patients)
    assert saved["held_out_patches"] == int(np.isin(row_patients, held).sum())  # every patch of those patients
    assert np.isfinite(saved["held_out_accuracy"])


def test_held_out_patients_never_split_a_patient():
    pats = np.repeat([f"p{i}" for i in range(30)], 7)
    held = pretraining.held_out_patients(pats, 0.1, np.random.default_rng(0))
    assert len(held) == 3 and set(held) <= set(pats)
    assert pretraining.held_out_patients(["a", "a"]) == []


def test_test_patches_choose_the_patches_a_patient_is_scored_from():
    """largest: the 25 test-layout patches (role test); tumour: the centred patch of every tumour slice (role
    train); the network's and the SVM's patient scores both follow it."""
    import pandas as pd
    cfg = training.TrainConfig(input_size=8, channels_last=False, device="cpu")
    scorer = training.PatchScorer(_FixedLogits(), cfg, torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1))
    values = [0.1, 0.2, 0.6, 0.3, 0.5, 0.9]
    patches = np.stack([np.full((3, 8, 8), v) for v in values]).astype(np.float32)
    index = pd.DataFrame({"patient": ["A"] * 6, "label": [1] * 6,
                          "role": ["test", "test", "train", "train", "augmented", "normal"]})
    largest = training.score_patients(scorer, patches, index, ["A"])
    tumour = training.score_patients(scorer, patches, index, ["A"], "tumour")
    assert largest["A"] == pytest.approx(15.0, rel=1e-5) and tumour["A"] == pytest.approx(45.0, rel=1e-5)
    with pytest.raises(ValueError, match="test_patches must be one of"):
        training.score_patients(scorer, patches, index, ["A"], "largets")

    feats, index, folds = _toy_features(8, 0.0)
    feats[(index.role == "train").to_numpy()] += index.label.to_numpy()[index.role == "train", None] * 3.0
    by = {tp: evaluation.cross_validate(folds, features.svm_fit_predict(feats, index, "linear", train_roles=["train"],
                                                                         test_patches=tp), progress=False)
          for tp in ("largest", "tumour")}
    assert by["tumour"].test_auc > 0.95 and by["largest"].test_auc < 0.9  # the signal is only in the train role


def test_a_later_training_setting_keeps_the_cache_key_of_its_default():
    cfg = training.TrainConfig(input_size=32, device="cpu")
    assert "test_patches" not in training._cfg_key(cfg) and "device" not in training._cfg_key(cfg)
    tumour = training._cfg_key(training.TrainConfig(input_size=32, device="cpu", test_patches="tumour"))
    assert tumour["test_patches"] == "tumour"


def _small_fold(ps, n_train: int = 6) -> dict:
    """Fold 0 with only its first `n_train` training patients: a few hundred training patches, a fast test."""
    fold = _folds(ps)[0]
    return {**fold, "train_patients": list(fold["train_patients"])[:n_train]}


def _first_norm_input(model, cfg, x, mean=None, std=None) -> torch.Tensor:
    """The input of GoogLeNet(_R)'s first batch-norm layer (conv1's convolution) over patches `x`, as evaluated."""
    with torch.no_grad():
        return model.conv1.conv(training.PatchScorer(model, cfg, mean, std).batch(x)).double()


def _assert_statistics_of(norm, first: torch.Tensor) -> None:
    """The layer's statistics are the mean and unbiased variance of `first` over patches and pixels."""
    np.testing.assert_allclose(norm.running_mean.double(), first.mean((0, 2, 3)), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(norm.running_var.double(), first.var((0, 2, 3)), rtol=1e-4, atol=1e-8)


@pytest.mark.slow
def test_batch_norm_statistics_are_recomputed_with_the_final_weights_over_the_training_patches(strong):
    """By default a briefly trained GoogLeNet_R is scored with the batch-norm statistics of its final weights over the
    fold's training patches: its first layer's are the mean and variance of that layer's input over all of them
    (computed here directly), not an average of batches taken while the weights moved; its scores are not constant."""
    fold = _small_fold(strong)
    cfg = training.TrainConfig(input_size=32, epochs=1, patches_per_epoch=128, batch_size=32, lr=1e-3,
                               curve_patients=4, channels_last=False, seed=0, device="cpu")
    model = models.build("googlenet_r", seed=0, input_size=32)
    out = training.train_fold(model, strong.patches(80), strong.index, fold, cfg)
    idx = strong.index
    rows = idx.index[idx.role.isin(training.TRAIN_ROLES) & idx.patient.isin(fold["train_patients"])].to_numpy()
    x = np.asarray(strong.patches(80)[rows], np.float32)
    assert 128 < len(x) <= 1024  # more patches than an epoch sees, all of them in the statistics
    _assert_statistics_of(model.conv1.bn, _first_norm_input(model, cfg, x, *training._standardiser(x)))
    assert np.std(out.test_scores) > 0.01, out.test_scores


@pytest.mark.slow
def test_the_batch_norm_modes_train_alike_and_only_running_statistics_give_a_constant_output(strong):
    """Training normalises by each batch's own statistics in every mode (identical losses); only the statistics the
    network is scored with differ. PyTorch's running ones still hold their start after a few steps (every patient
    gets the same score); the recomputed ones (the default) and the last epoch's do not. Each mode is cached apart."""
    fold = _small_fold(strong)
    spread, losses, keys = {}, {}, []
    for bn_stats in training.BN_STATS:
        cfg = training.TrainConfig(input_size=32, epochs=1, patches_per_epoch=128, batch_size=32, curve_patients=4,
                                   bn_stats=bn_stats, channels_last=False, seed=0, device="cpu")
        out = training.train_fold(models.build("googlenet_r", seed=0, input_size=32), strong.patches(80),
                                  strong.index, fold, cfg)
        spread[bn_stats], losses[bn_stats] = float(np.std(out.test_scores)), out.curves["loss"]
        keys.append(training._cfg_key(cfg))
    assert training.TrainConfig(input_size=32).bn_stats == "recomputed"
    assert losses["recomputed"] == losses["epoch"] == losses["running"]
    assert spread["running"] < 0.01 < min(spread["recomputed"], spread["epoch"]), spread
    default = training._cfg_key(training.TrainConfig(input_size=32, device="cpu"))
    assert default["bn_stats"] == "recomputed" and "bn_patches" in default  # no result of before is read back
    assert len({str(k) for k in keys}) == 3
    with pytest.raises(ValueError, match="bn_stats 'ema': choose one of recomputed, epoch, running"):
        training.start_epoch_statistics(models.build("cifar"), "ema")


@pytest.mark.slow
def test_domain_pretraining_saves_the_batch_norm_statistics_of_its_final_weights(strong, tmp_path, monkeypatch):
    """The in-domain checkpoint (whose features 04-05 read and which 03 fine-tunes) holds the statistics of its final
    weights over its training patches (the held-out patients' left out), and its recipe names how they were made."""
    saved = {}
    monkeypatch.setattr(weights, "save_domain_checkpoint",
                        lambda model, out, net, meta: saved.update(model=model, meta=meta))
    patients = sorted(strong.table.patient)[:6]
    cfg = training.TrainConfig(input_size=32, epochs=1, patches_per_epoch=64, batch_size=32, lr=1e-3,
                               normalize="imagenet", channels_last=False, seed=0, device="cpu")
    pretraining.pretrain("googlenet_r", strong, 80, tmp_path, cfg, progress=False, patients=patients)
    rows, _, _ = pretraining.auxiliary_task(strong, 80, patients)
    row_patients = strong.index.patient.to_numpy().astype(str)[rows]
    train = rows[~np.isin(row_patients, saved["meta"]["held_out_patients"])]
    assert 64 < len(train) <= 1024 and len(train) < len(rows)
    x = np.asarray(strong.patches(80)[train], np.float32)
    _assert_statistics_of(saved["model"].conv1.bn, _first_norm_input(saved["model"], cfg, x))
    assert pretraining.recipe("googlenet_r", 80, cfg)["bn_stats"] == "recomputed"


def test_a_bf16_domain_checkpoint_is_cached_apart_from_the_fp32_one():
    """bf16 gives other weights: its checkpoint must not be read back by an fp32 run (the fp32 key is unchanged)."""
    cfg = training.TrainConfig(input_size=32, epochs=1, patches_per_epoch=64, batch_size=32, lr=1e-3, seed=0,
                               device="cpu")
    fp32 = pretraining.recipe("googlenet_r", 80, cfg)
    bf16 = pretraining.recipe("googlenet_r", 80, dataclasses.replace(cfg, bf16=True))
    assert "bf16" not in fp32 and bf16 == {**fp32, "bf16": True}
