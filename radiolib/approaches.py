"""The study's approaches as library calls: what notebooks 02-05 configure and cross-validate.

Each function takes the run's bound parameters `P` (`params.bind`) and the patch set and folds of the run, and
builds exactly the training configuration, model factory, cache key and SVM setting the notebooks use, so a
notebook, a batch script and a test run the same thing (and read back the same cached results).
"""
from __future__ import annotations

from functools import partial
from types import SimpleNamespace

from . import models, study, training


def scratch_config(net: str, P: SimpleNamespace, lr: float | None = None) -> training.TrainConfig:
    """Training configuration of `net` from random weights (02): input side scaled by `input_scale`, `lr` or P.lr."""
    return training.TrainConfig(input_size=training.scaled_input(net, P.input_scale), epochs=P.epochs,
                                lr=P.lr if lr is None else lr, patches_per_epoch=P.patches_per_epoch,
                                batch_size=P.batch_size, bf16=P.bf16, channels_last=P.channels_last, seed=P.seed)


def cross_validate_scratch(net: str, patch_set, folds: list[dict], P: SimpleNamespace, lr: float | None = None):
    """Train `net` from random weights on every fold (02): a CVResult, cached under "scratch/<net>"."""
    cfg = scratch_config(net, P, lr)
    make_model = partial(models.build, net, seed=P.seed, input_size=cfg.input_size)
    return training.cross_validate_net(patch_set, P.train_patch_size, folds, make_model, cfg, n_jobs=P.n_jobs,
                                       desc=f"{net}, lr {cfg.lr:g}", model_id=f"scratch/{net}",
                                       cache_dir=P.cache_dir, n_boot=P.n_boot)


def transfer_config(P: SimpleNamespace, fc_lr: float | None = None) -> training.TrainConfig:
    """Fine-tuning configuration (03): the new last layer learns at `fc_lr` (or P.fc_lr), inputs of the pretrained
    network's side (`pretrained_input_scale`) cropped at random, normalised as ImageNet."""
    return training.TrainConfig(input_size=study.pretrained_input(P), epochs=P.epochs, lr=P.lr,
                                head_lr=P.fc_lr if fc_lr is None else fc_lr, crop=True, normalize="imagenet",
                                patches_per_epoch=P.patches_per_epoch, batch_size=P.batch_size, bf16=P.bf16,
                                channels_last=P.channels_last, seed=P.seed)


def cross_validate_transfer(net: str, source: str, patch_set, folds: list[dict], P: SimpleNamespace,
                            fc_lr: float | None = None):
    """Fine-tune `net` pretrained on `source` on every fold (03): a CVResult, cached under the weights' identity."""
    cfg = transfer_config(P, fc_lr)
    make_model = partial(study.pretrained_model, net, source, P, num_classes=2, progress=False)
    return training.cross_validate_net(patch_set, P.train_patch_size, folds, make_model, cfg, n_jobs=P.n_jobs,
                                       desc=f"{net} from {source}, fc lr {cfg.head_lr:g}",
                                       model_id="transfer/" + study.weights_id(net, source, P),
                                       cache_dir=P.cache_dir, n_boot=P.n_boot)


def svm_setting(feats, index, folds: list[dict], kernel: str, P: SimpleNamespace, feature_id: str) -> dict:
    """Keyword arguments of `features.cross_validate_svm` for one feature matrix and kernel (04, 05).

    `feats` (patches x length) are the features of the patch set's `index`; `feature_id` names them for the cache.
    """
    return dict(feats=feats, index=index, folds=folds, kernel=kernel, max_train=P.svm_max_train,
                train_roles=P.svm_train_roles, seed=P.seed, feature_id=feature_id, cache_dir=P.cache_dir,
                n_boot=P.n_boot)
