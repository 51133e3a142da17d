"""radiolib.approaches: the settings follow the parameters, and a cross-validation through it is exactly the one
notebooks 02-04 ran through their own closures (same AUCs, same cache entry)."""
import inspect
import types
from functools import partial

import numpy as np
import pytest

from radiolib import approaches, evaluation, features, models, params, study, training


def _params(stem, **overrides):
    return types.SimpleNamespace(**{**params.defaults(stem), **overrides})


def _folds(ps):
    return evaluation.patient_folds(ps.table.patient.tolist(), ps.table.label.tolist(), n_folds=2, repeats=1, seed=0)


def _same_result(a, b):
    assert [f["auc"] for f in a.folds] == [f["auc"] for f in b.folds]
    assert [f["train_auc"] for f in a.folds] == [f["train_auc"] for f in b.folds]
    assert (a.test_auc, a.train_auc, a.ci95) == (b.test_auc, b.train_auc, b.ci95)
    assert a.oof_scores.equals(b.oof_scores)


def _cv_entries(cache_dir):
    return sorted(p.name for p in cache_dir.rglob("*.pkl") if p.parent.name == "cv")


def test_scratch_config_follows_the_parameters():
    P = _params("02_training_from_scratch", input_scale=0.5, epochs=7, lr=3e-4, patches_per_epoch=128,
                batch_size=16, bf16=True, channels_last=False, seed=11)
    cfg = approaches.scratch_config("vgg_r", P)
    assert cfg.input_size == 40 == training.scaled_input("vgg_r", 0.5)  # Table 2's 80 px, halved
    assert (cfg.epochs, cfg.lr, cfg.patches_per_epoch, cfg.batch_size) == (7, 3e-4, 128, 16)
    assert (cfg.bf16, cfg.channels_last, cfg.seed) == (True, False, 11)
    assert (cfg.head_lr, cfg.crop, cfg.normalize) == (None, False, "fold")  # from scratch: no head, no crop
    assert approaches.scratch_config("vgg_r", P, lr=2e-5).lr == 2e-5  # the sweep's learning rate
    assert approaches.scratch_config("googlenet", P).input_size == 112


def test_transfer_config_follows_the_parameters():
    P = _params("03_transfer_learning", pretrained_input_scale=0.5, epochs=3, lr=2e-4, fc_lr=4e-3, bf16=True,
                batch_size=8, seed=5)
    cfg = approaches.transfer_config(P)
    assert cfg.input_size == 112 == study.pretrained_input(P)
    assert (cfg.epochs, cfg.lr, cfg.head_lr, cfg.batch_size, cfg.bf16, cfg.seed) == (3, 2e-4, 4e-3, 8, True, 5)
    assert (cfg.crop, cfg.normalize) == (True, "imagenet")
    swept = approaches.transfer_config(P, fc_lr=2e-4)
    assert (swept.head_lr, swept.lr) == (2e-4, 2e-4)  # the sweep changes the last layer's rate only


def test_svm_setting_is_the_keyword_arguments_of_one_svm_cross_validation():
    P = _params("04_deep_features_svm", svm_max_train=50, svm_train_roles=["train", "augmented"], seed=3,
                n_boot=200, cache_dir="/somewhere")
    feats, index, folds = np.zeros((4, 2)), object(), [{"fold": 0}]
    setting = approaches.svm_setting(feats, index, folds, "rbf", P, "ps/80/googlenet/imagenet")
    accepted = set(inspect.signature(features.cross_validate_svm).parameters)
    assert set(setting) <= accepted and accepted - set(setting) == {"n_jobs", "progress", "desc"}
    assert setting["feats"] is feats and setting["index"] is index and setting["folds"] is folds
    assert (setting["kernel"], setting["max_train"], setting["train_roles"]) == ("rbf", 50, ["train", "augmented"])
    assert (setting["seed"], setting["n_boot"], setting["cache_dir"]) == (3, 200, "/somewhere")
    assert setting["feature_id"] == "ps/80/googlenet/imagenet"


def _old_scratch_call(ps, folds, P, net, cache_dir):
    """Notebook 02's `run(net)` before the approaches module, word for word but for the cache folder."""
    cfg = training.TrainConfig(input_size=training.scaled_input(net, P.input_scale), epochs=P.epochs, lr=P.lr,
                               patches_per_epoch=P.patches_per_epoch, batch_size=P.batch_size, bf16=P.bf16,
                               channels_last=P.channels_last, seed=P.seed)
    return training.cross_validate_net(ps, P.train_patch_size, folds,
                                       lambda: models.build(net, seed=P.seed, input_size=cfg.input_size), cfg,
                                       n_jobs=P.n_jobs, desc=f"{net}, lr {P.lr:g}", model_id=f"scratch/{net}",
                                       cache_dir=cache_dir, n_boot=P.n_boot)


def _old_transfer_call(ps, folds, P, net, source, cache_dir):
    """Notebook 03's `run(net, source)` before the approaches module, word for word but for the cache folder."""
    cfg = training.TrainConfig(input_size=study.pretrained_input(P), epochs=P.epochs, lr=P.lr, head_lr=P.fc_lr,
                               crop=True, normalize="imagenet", patches_per_epoch=P.patches_per_epoch,
                               batch_size=P.batch_size, bf16=P.bf16, channels_last=P.channels_last, seed=P.seed)
    return training.cross_validate_net(ps, P.train_patch_size, folds,
                                       lambda: study.pretrained_model(net, source, P, num_classes=2, progress=False),
                                       cfg, n_jobs=P.n_jobs, desc=f"{net} from {source}, fc lr {P.fc_lr:g}",
                                       model_id="transfer/" + study.weights_id(net, source, P), cache_dir=cache_dir,
                                       n_boot=P.n_boot)


@pytest.mark.parametrize("approach", ["scratch", "transfer"])
def test_a_cross_validation_is_the_notebooks_old_call_with_the_same_cache_entry(approach, patch_set, tmp_path):
    stem = {"scratch": "02_training_from_scratch", "transfer": "03_transfer_learning"}[approach]
    P = _params(stem, input_scale=0.4, pretrained_input_scale=0.25, epochs=1, patches_per_epoch=32, batch_size=16,
                n_boot=50, n_jobs=1, cache_dir=str(tmp_path / "new"))
    folds = _folds(patch_set)
    if approach == "scratch":
        new = approaches.cross_validate_scratch("cifar", patch_set, folds, P)
        old = partial(_old_scratch_call, patch_set, folds, P, "cifar")
    else:
        new = approaches.cross_validate_transfer("googlenet", "random", patch_set, folds, P)
        old = partial(_old_transfer_call, patch_set, folds, P, "googlenet", "random")
    _same_result(new, old(tmp_path / "old"))  # trained again in a cache of its own: the same AUCs
    assert _cv_entries(tmp_path / "new") == _cv_entries(tmp_path / "old") and len(_cv_entries(tmp_path / "new")) == 1
    _same_result(new, old(tmp_path / "new"))  # the old call reads the new call's entry back: the same key
    assert len(_cv_entries(tmp_path / "new")) == 1
