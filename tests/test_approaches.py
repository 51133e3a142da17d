"""radiolib.steps.approaches: the settings follow the parameters, and a cross-validation through it is exactly the one
notebooks 02-04 ran through their own closures (same AUCs, same cache entry)."""
import inspect
import types
from functools import partial

import numpy as np
import pytest

from radiolib.learn import features, models, training
from radiolib.run import context, inputs, params, results
from radiolib.stats import evaluation
from radiolib.steps import approaches


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
    assert cfg.input_size == 112 == inputs.pretrained_input(P)
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
    cfg = training.TrainConfig(input_size=inputs.pretrained_input(P), epochs=P.epochs, lr=P.lr, head_lr=P.fc_lr,
                               crop=True, normalize="imagenet", patches_per_epoch=P.patches_per_epoch,
                               batch_size=P.batch_size, bf16=P.bf16, channels_last=P.channels_last, seed=P.seed)
    return training.cross_validate_net(ps, P.train_patch_size, folds,
                                       lambda: inputs.pretrained_model(net, source, P, num_classes=2, progress=False),
                                       cfg, n_jobs=P.n_jobs, desc=f"{net} from {source}, fc lr {P.fc_lr:g}",
                                       model_id="transfer/" + inputs.weights_id(net, source, P), cache_dir=cache_dir,
                                       n_boot=P.n_boot)


@pytest.mark.parametrize("approach", ["scratch", "transfer"])
@pytest.mark.slow
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


# ---------------------------------------------------------------------------------------------------------------
# The entry points: one call per approach on a run context, rows as the notebooks wrote them


def _context(stem, patch_set, tmp_path, **overrides):
    """A loaded RunContext on the session's small patch set: 2 folds, tiny training, caches under tmp_path."""
    P = _params(stem, n_folds=2, repeats=1, n_boot=50, n_jobs=1, epochs=1, patches_per_epoch=32, batch_size=16,
                pretrained_input_scale=0.25, cache_dir=str(tmp_path / "cache"), run_dir=str(tmp_path / "run"),
                **overrides)
    return context.RunContext(P, stem, progress=False, patch_set=patch_set).load()


def _check_rows(result, n_run, n_skipped):
    """Rows valid, none with a patient in both train and test, skipped rows with a reason and no numbers."""
    results.validate_rows(result.all_rows)
    evaluation.check_no_leakage(result.all_rows)
    run = [r for r in result.rows if r["skipped"] is None]
    assert len(run) == n_run and len(result.skipped) == n_skipped
    for row in run:
        assert row["folds"] and all(not set(f["train_patients"]) & set(f["test_patients"]) for f in row["folds"])
        assert 0 <= row["test_auc"] <= 1 and row["oof"]
    for row in result.skipped:
        assert row["skipped"].strip() and row["test_auc"] is None and row["folds"] == []


def test_a_run_context_holds_the_runs_data_folds_and_folders(patch_set, tmp_path):
    ctx = _context("02_training_from_scratch", patch_set, tmp_path)
    assert ctx.patch_set_ is patch_set and ctx.paths_.results == tmp_path / "run" / "results"
    assert ctx.paths_.figures.is_dir() and ctx.results_path.name == "02_training_from_scratch.json"
    assert [f["test_patients"] for f in ctx.folds_] == [f["test_patients"] for f in _folds(patch_set)]
    assert "2-fold cross-validation (paper: 10)" in ctx.deviations_ and ctx.threads_ >= 1
    assert not ctx.ceiling_.known and "01_preprocessing has not written" in ctx.ceiling_.reason  # 01 not run here
    assert ctx.describe().startswith(f"{len(patch_set.table)} patients, 2 folds. Deviations")
    assert not hasattr(context.RunContext(ctx.P, ctx.stem), "folds_")  # nothing computed before load()


def test_scratch_runs_every_network_and_the_sweep(patch_set, tmp_path):
    ctx = _context("02_training_from_scratch", patch_set, tmp_path, networks=["cifar"], input_scale=0.4,
                   lr_sweep=[1e-4, 5e-4], sweep_network="cifar")
    result = approaches.scratch(ctx)
    _check_rows(result, 1, 0)
    P = ctx.P
    again = approaches.cross_validate_scratch("cifar", patch_set, ctx.folds_, P)  # read back from the cache
    assert result.rows[0] == results.make_row("scratch", "cifar", "none", 80, cv=again, lr=P.lr,
                                              input_size=approaches.scratch_config("cifar", P).input_size)
    assert [(r["lr"], r["sweep"]) for r in result.sweep_rows] == [(1e-4, "lr"), (5e-4, "lr")]
    assert result.sweep_rows[0]["test_auc"] == result.rows[0]["test_auc"]  # the run at P.lr is reused
    assert result.ceiling is ctx.ceiling_  # shown beside its tables
    assert list(result.browsable_curves()) == ["cifar", "cifar, lr 0.0001", "cifar, lr 0.0005"]
    assert list(result.sweep_table().lr) == [1e-4, 5e-4]
    result.save_figures(ctx.paths_.figures)
    assert sorted(p.name for p in ctx.paths_.figures.iterdir()) == ["02_learning_curves.png", "02_lr_sweep.png"]
    doc = ctx.write_results(result.all_rows)
    assert [r["test_auc"] for r in doc["rows"]] == [r["test_auc"] for r in result.all_rows]


@pytest.mark.slow
def test_transfer_skips_a_source_that_cannot_run_and_sweeps_the_first_that_ran(patch_set, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no ImageNet weights here
    ctx = _context("03_transfer_learning", patch_set, tmp_path, networks=["googlenet"],
                   sources=["imagenet", "random"], fc_lr_sweep=[1e-3], sweep_network="googlenet")
    result = approaches.transfer(ctx)
    _check_rows(result, 1, 1)
    assert [(r["source"], bool(r["skipped"])) for r in result.rows] == [("imagenet", True), ("random", False)]
    assert "weights file missing" in result.skipped[0]["skipped"]
    assert result.sweep_source == "random" and [r["fc_lr"] for r in result.sweep_rows] == [1e-3]
    assert result.ceiling is ctx.ceiling_
    assert result.sweep_rows[0]["oof"] == result.rows[1]["oof"]  # the run at P.fc_lr is reused
    assert list(result.curves) == ["googlenet from random"]
    assert len(result.pairwise()) == 0  # one usable row: nothing to compare


@pytest.mark.slow
def test_features_svm_and_layerwise_give_a_row_per_setting(patch_set, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no ImageNet weights here: its rows are skipped
    common = dict(sources=["random", "imagenet"], svm_max_train=60, patch_sizes=[120])
    ctx = _context("04_deep_features_svm", patch_set, tmp_path, networks=["googlenet"], kernels=["linear"],
                   **common)
    feats = approaches.deep_features(ctx)
    assert list(feats.table().patch) == [120] and set(feats.table().layer) == {"fc"}
    result = approaches.features_svm(ctx, feats)
    _check_rows(result, 1, 1)  # random runs; imagenet is skipped
    assert [(r["source"], r["patch_size"], r["layer"]) for r in result.rows] == [("random", 120, "fc"),
                                                                                ("imagenet", 120, "fc")]
    assert result.rows[1]["skipped"] and not result.rows[0]["skipped"]
    assert approaches.features_svm(ctx).rows == result.rows  # features computed by the call itself: the same
    assert result.ceiling is ctx.ceiling_

    ctx = _context("05_layerwise_analysis", patch_set, tmp_path, **common)
    result = approaches.layerwise(ctx)
    n = len(approaches.weights.GOOGLENET_LAYERS)
    _check_rows(result, n, n)
    assert result.setting == {"patch_size": 120, "kernel": "poly", "chosen_by": result.setting["chosen_by"]}
    assert result.ceiling is ctx.ceiling_
    assert [r["layer"] for r in result.rows[:n]] == list(approaches.weights.GOOGLENET_LAYERS)
    assert [r["length"] for r in result.rows[:n - 1]] == list(approaches.paper.TABLE6_LENGTH[:-1])
    result.save_figures(ctx.paths_.figures)
    assert {p.stem for p in ctx.paths_.figures.iterdir()} == {"05_layerwise", "05_maps_conv3", "05_maps_inception4e"}
