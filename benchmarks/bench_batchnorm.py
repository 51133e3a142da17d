"""Why the GoogLeNets scored below chance in the demo (issue 10): batch-norm statistics at evaluation.

One fold of a profile's notebook 02 (default: the demo's first fold), each network trained with `training.train_fold`
exactly as the notebook trains it, once with PyTorch's running statistics (`bn_stats="running"`, the study's recipe
before issue 10) and once with the last epoch's own (`"epoch"`, the study's now). Training is the same in both (train
mode normalises by each batch's own statistics: the losses match); only the statistics the network is scored with
differ. Printed per network and mode: the loss, train and test AUC per epoch, the spread (SD) of the test
patients' scores (near 0: every patient gets the same score, and the AUC ranks round-off), and seconds.

Beside them, the yardstick of what the patches hold: an L2 logistic regression (C = 1) on 12 intensity features per
patch (each channel's mean, SD, 90th percentile and central 8 x 8 mean), trained on the fold's training patches and
scored like the networks (mean log-odds over a patient's test patches), on the same 60 training patients and the test
patients.

Run: `python benchmarks/bench_batchnorm.py [--profile demo] [--fold 0] [--networks googlenet_r googlenet vgg_r cifar]`
(demo, four networks: about 8 minutes on 2 cores after notebook 01 has built the patch set, else 4 more).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch
from bench_training import notebook_params

from radiolib.learn import models, training
from radiolib.run import inputs
from radiolib.stats import evaluation
from radiolib.steps import approaches

SCRATCH = "02_training_from_scratch"


def intensity_features(x: np.ndarray) -> np.ndarray:
    """(patches, 12): per channel the mean, SD, 90th percentile and the mean of the central 8 x 8 pixels."""
    x = np.asarray(x, np.float32)
    c = x.shape[-1] // 2
    centre = x[:, :, c - 4:c + 4, c - 4:c + 4].mean(axis=(2, 3))
    flat = x.reshape(len(x), x.shape[1], -1)
    return np.concatenate([flat.mean(-1), flat.std(-1), np.percentile(flat, 90, axis=-1), centre], axis=1)


def yardstick(ps, patch_size: int, fold: dict, curve_patients: list, test_patches: str) -> dict:
    """Train and test AUC of the logistic regression on intensity features, scored as the networks are."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from radiolib.data.patches import scoring_role
    index, patches = ps.index, ps.patches(patch_size)
    train = index.index[index.role.isin(training.TRAIN_ROLES) & index.patient.isin(fold["train_patients"])]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    model.fit(intensity_features(patches[train]), index.label.to_numpy()[train])
    labels = dict(zip(index.patient, index.label))
    out = {}
    for name, patients in (("train_auc", curve_patients), ("test_auc", fold["test_patients"])):
        rows = index.index[index.role.eq(scoring_role(test_patches)) & index.patient.isin(list(patients))]
        scores = evaluation.patient_scores(index.patient.to_numpy()[rows],
                                           model.decision_function(intensity_features(patches[rows])))
        out[name] = evaluation.auc([labels[p] for p in scores.index], scores.values)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--fold", type=int, default=0, help="which fold of the first repeat")
    parser.add_argument("--networks", nargs="+", default=["googlenet_r", "googlenet", "vgg_r", "cifar"])
    args = parser.parse_args()
    P = notebook_params(args.profile, SCRATCH)
    ps = inputs.patch_set(P)
    fold = inputs.folds(ps, P)[args.fold]
    print(f"profile {args.profile}, fold {args.fold}: {len(fold['train_patients'])} training, "
          f"{len(fold['test_patients'])} test patients; {P.epochs} epochs of {P.patches_per_epoch} patches, "
          f"batch {P.batch_size}, lr {P.lr:g}")
    curve = None
    for net in args.networks:
        for bn_stats in training.BN_STATS:
            cfg = replace(approaches.scratch_config(net, P), bn_stats=bn_stats)
            start = time.perf_counter()
            torch.manual_seed(training.fold_seed(cfg.seed, fold))  # as cross_validate_net: the same in both modes
            model = models.build(net, seed=P.seed, input_size=cfg.input_size)  # as approaches.cross_validate_scratch
            out = training.train_fold(model, ps.patches(P.train_patch_size), ps.index, fold, cfg)
            seconds = time.perf_counter() - start
            curve = list(out.train_scores.index)
            c = out.curves
            print(f"{net:12s} {cfg.input_size:3d}px bn_stats={bn_stats:8s} loss {_row(c['loss'], 4)}  "
                  f"train AUC {_row(c['train_auc'])}  test AUC {_row(c['test_auc'])}  "
                  f"test score SD {np.std(out.test_scores):.4g}  {seconds:.0f} s")
    if curve is not None:
        ref = yardstick(ps, P.train_patch_size, fold, curve, P.test_patches)
        print(f"logistic regression on 12 intensity features: train AUC {ref['train_auc']:.3f} (the same "
              f"{len(curve)} training patients), test AUC {ref['test_auc']:.3f}")


def _row(values, digits: int = 2) -> str:
    return " ".join(f"{v:.{digits}f}" for v in values)


if __name__ == "__main__":
    main()
