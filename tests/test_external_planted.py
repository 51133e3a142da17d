"""The planted check of an external in-domain source (issue 28): a source cohort whose tumour types differ as the
synthetic LGG cohort's subtypes do helps the frozen features of the glioma study, and one whose types differ by size
only does not. "Helps" is measured against an untrained control: the same initial network through the same
first-layer adaptation, its batch-norm statistics recomputed on the source's patches, with no step of pretraining.
(Random weights are not that control: they read all three channels and keep batch-norm statistics of mean 0 and
variance 1; docs/data.md.) The statistic is the study's: each layer's patient-level test AUC of a linear SVM over
the same folds, here averaged over the layers a 56-pixel input reaches."""
import dataclasses

import numpy as np
import pytest

from radiolib.data import dataset
from radiolib.data.synth.figshare import synthesize_figshare
from radiolib.data.synth.lgg import synthesize_lgg
from radiolib.learn import features, pretraining, training, weights
from radiolib.stats.evaluation import patient_folds

LAYERS = ("conv1", "conv3", "inception3a", "inception3b", "inception4a", "inception4e", "fc")
PATCH, INPUT = 80, 56
SEEDS = (1, 2)
# the recipe, fixed on the source task alone: at the study's default lr 1e-4 a draft of the planted source was learned
# to a held-out tumour-type accuracy of 0.74-0.78, at 1e-3 to 0.86-0.87 (two seeds)
RECIPE = dict(input_size=INPUT, epochs=6, patches_per_epoch=768, lr=1e-3, normalize="imagenet", channels_last=False,
              device="cpu")


def _layer_aucs(checkpoint, lgg, folds, seed: int) -> dict:
    """{layer: test AUC} of frozen features of the one-channel `checkpoint` on the LGG patches, linear SVM."""
    model = weights.load_pretrained("googlenet", "domain", domain_dir=checkpoint, contrast_channel=2)
    x, index = lgg
    f = features.extract(model, x, "googlenet", LAYERS, INPUT, channels_last=False, progress=False, device="cpu")
    return {layer: features.cross_validate_svm(f[layer], index, folds, "linear", 400, seed=seed, progress=False,
                                               train_roles=("train", "augmented"), n_boot=0).test_auc
            for layer in LAYERS}


def _one_seed(tmp, seed: int) -> dict:
    """{source: {layer: test AUC}} for the signal, null and untrained sources on one LGG cohort's folds."""
    cohort = synthesize_lgg(tmp / "lgg", patients=80, seed=seed, effect=1.0, size=256)
    ps = dataset.build_patch_set(cohort, [PATCH], cache_dir=tmp / "cache", progress=False)
    rows = np.flatnonzero(ps.index.role.isin(("train", "augmented", "test")).to_numpy())
    lgg = (ps.patches(PATCH)[rows], ps.index.iloc[rows].reset_index(drop=True))
    folds = patient_folds(ps.table.patient.tolist(), ps.table.label.tolist(), 3, 1, seed)
    cfg = training.TrainConfig(seed=seed, **RECIPE)
    out, accuracy = {}, {}
    for name, signal, epochs in (("signal", True, cfg.epochs), ("null", False, cfg.epochs), ("untrained", False, 0)):
        src = synthesize_figshare(tmp / f"source-{signal}", patients=60, seed=seed + 1, signal=signal, size=256,
                                  planted=True)
        src_set = dataset.build_patch_set(src, [PATCH], cache_dir=tmp / "cache", progress=False)
        checkpoint = pretraining.pretrain("googlenet", src_set, PATCH, tmp / f"ck-{name}",
                                          dataclasses.replace(cfg, epochs=epochs), progress=False, task="tumour_type")
        accuracy[name] = weights.domain_meta(checkpoint, "googlenet")["meta"]["held_out_accuracy"]
        out[name] = _layer_aucs(checkpoint, lgg, folds, seed)
    print(f"seed {seed}: held-out tumour-type accuracy {accuracy}; " + "; ".join(
        f"{k} " + " ".join(f"{v:.3f}" for v in aucs.values()) for k, aucs in out.items()))
    return out


@pytest.mark.slow
def test_a_source_carrying_the_subtype_pattern_helps_and_one_without_it_does_not(tmp_path):
    """Over seeds 1-6 (one seed each, before this test was written): signal minus untrained 0.03 to 0.15, signal minus
    null 0.09 to 0.21, null minus untrained -0.07 to -0.01 (mean over layers); the test takes the mean of two seeds."""
    runs = [_one_seed(tmp_path / f"seed{s}", s) for s in SEEDS]
    mean = {name: float(np.mean([np.mean(list(r[name].values())) for r in runs])) for name in runs[0]}
    print("mean test AUC over layers and seeds:", {k: round(v, 3) for k, v in mean.items()})
    assert mean["signal"] > mean["untrained"] + 0.02, mean  # what pretraining on the signal added
    assert mean["signal"] > mean["null"] + 0.05, mean
    assert mean["null"] < mean["untrained"] + 0.02, mean  # pretraining without the signal adds nothing
