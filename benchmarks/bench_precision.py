"""Is bf16 autocast's change to the results within their run-to-run noise? (issue 27, item 1)

One fold of a demo-like setting (a synthetic cohort with the demo's signal, `synth_effect` 1.0, 80 px patches, 4
augmented per region), each network of notebook 02 trained as the demo profile trains it (`approaches.scratch_config`
of params/demo: 32 px inputs, 3 epochs of 768 class-balanced patches, lr 1e-4, batch 64, channels_last), with
`--seeds` training seeds (the model's initialisation and the patch order), in fp32 (the study's default) and under
bf16 autocast. Printed per network and precision: the fold's test AUC for each seed, their mean and standard
deviation (the seed noise), seconds per training; then per seed the bf16 - fp32 difference of the same seed, and the
Spearman correlation of the test patients' scores between the two precisions.

Run: `python benchmarks/bench_precision.py [--patients 72] [--folds 3] [--seeds 0 1 2] [--threads 2]`
(45 minutes on 2 cores shared with other jobs, 2026-12-06, most of it GoogLeNet_R's 6 trainings). The cohort and
patch set are built in a temporary folder (or `--cache`, reused by a second run).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from scipy.stats import spearmanr

from radiolib.data.dataset import build_patch_set
from radiolib.data.synth import synthesize
from radiolib.learn import models, training
from radiolib.run import params
from radiolib.stats import evaluation
from radiolib.steps import approaches

REPO = Path(__file__).resolve().parents[1]
SCRATCH = params.SCRATCH
PRECISIONS = {"fp32": False, "bf16": True}  # both with channels_last, as the study trains


def demo_params() -> SimpleNamespace:
    """Notebook 02's parameters in the demo profile."""
    return SimpleNamespace(**{**params.defaults(SCRATCH), **params.load_profile("demo", SCRATCH, REPO / "params")})


def patch_set(root: Path, patients: int, effect: float):
    """A synthetic Duke-layout cohort (no faults) cut into 80 px patches, built once under `root`."""
    cohort = synthesize(root / f"cohort-{patients}-{effect}", patients=patients, seed=0, effect=effect,
                        progress=False, n_jobs=1)
    return build_patch_set(cohort, [80], 4, 0, root / "cache", n_jobs=1, progress=False)


def train_once(ps, fold: dict, net: str, cfg: training.TrainConfig) -> tuple[float, object, float]:
    """(test AUC, test patient scores, seconds) of one training of `net` on `fold` as 02 trains it."""
    start = time.perf_counter()
    torch.manual_seed(training.fold_seed(cfg.seed, fold))
    model = models.build(net, seed=cfg.seed, input_size=cfg.input_size)
    out = training.train_fold(model, ps.patches(80), ps.index, fold, cfg)
    return out.curves["test_auc"][-1], out.test_scores, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=72)
    ap.add_argument("--effect", type=float, default=1.0, help="synth_effect (demo: 1.0)")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--networks", nargs="+", default=["cifar", "googlenet_r"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=None, help="folder for the cohort and patches (default: temporary)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    P = demo_params()
    with tempfile.TemporaryDirectory() as tmp:
        ps = patch_set(args.cache or Path(tmp), args.patients, args.effect)
        fold = evaluation.patient_folds(ps.table.patient.tolist(), ps.table.label.tolist(), args.folds, 1, 0)[args.fold]
        print(f"{len(ps.table)} patients, fold {args.fold} of {args.folds}: {len(fold['train_patients'])} training, "
              f"{len(fold['test_patients'])} test patients; torch threads {torch.get_num_threads()} "
              f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}), load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the start")
        for net in args.networks:
            base = replace(approaches.scratch_config(net, P), device="cpu", channels_last=True)
            print(f"\n{net}: input {base.input_size} px, {base.epochs} epochs of {base.patches_per_epoch} patches, "
                  f"lr {base.lr:g}, batch {base.batch_size}, channels_last")
            runs = {name: [train_once(ps, fold, net, replace(base, bf16=bf16, seed=s)) for s in args.seeds]
                    for name, bf16 in PRECISIONS.items()}
            for name, rows in runs.items():
                aucs = np.array([r[0] for r in rows])
                print(f"  {name:5s} test AUC per seed {' '.join(f'{a:.3f}' for a in aucs)}   mean {aucs.mean():.3f}"
                      f"  sd {aucs.std(ddof=1):.3f}   {np.mean([r[2] for r in rows]):.1f} s per training")
            diffs = [b[0] - f[0] for f, b in zip(runs["fp32"], runs["bf16"])]
            rhos = [spearmanr(f[1].sort_index().values, b[1].sort_index().values)[0]
                    for f, b in zip(runs["fp32"], runs["bf16"])]
            print(f"  bf16 - fp32 per seed {' '.join(f'{d:+.3f}' for d in diffs)}   mean {np.mean(diffs):+.3f};"
                  f" Spearman of the test scores per seed {' '.join(f'{r:.3f}' for r in rhos)}")
        print(f"\nload average {os.getloadavg()[0]:.1f} at the end (other processes share the machine)")


if __name__ == "__main__":
    main()
