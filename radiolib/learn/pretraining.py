"""The `domain` pretraining source: a network pretrained on an auxiliary task that never sees the target labels.

Task: lesion patches (the training and augmented patches of every lesion region) against normal-tissue patches.
Either on a source cohort disjoint from the study cohort (for the synthetic data: another synthetic cohort, other
seed), saved once; or in-cohort, inside each outer fold on that fold's training patients only (`patients`), saved
once per fold. Each checkpoint is saved with what it was trained on (its patients) and reused by transfer learning
and deep features.

Why patch classification rather than tumour segmentation from the masks: it trains the very network (and 2-way
head) that transfer learning fine-tunes and whose layers feed the SVMs, on the very patches of the study (the
boxes, or the masks' boxes, give the lesion patches; normal tissue is cut clear of them), with no decoder to add
or discard, and the same code serves the Duke boxes and the LGG masks.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..core import cache
from ..core.frontend import tqdm
from . import models, weights
from .training import (
    PatchScorer,
    TrainConfig,
    epoch_indices,
    patch_batches,
    precision_key,
    refresh_statistics,
    start_epoch_statistics,
    statistics_rows,
)

LESION_ROLES = ("train", "augmented")


def auxiliary_task(patch_set, patch_size: int, patients=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(patch rows, labels 1 = lesion / 0 = normal tissue, patients): never the subtype label.

    With `patients` (in-cohort pretraining: one fold's training patients) only their patches, and the patients
    returned are those whose patches are in the task; else every patient of the patch set.
    """
    idx = patch_set.index
    keep = idx.role.isin(LESION_ROLES + ("normal",))
    if patients is not None:
        keep &= idx.patient.astype(str).isin([str(p) for p in patients])
    rows = idx.index[keep].to_numpy()
    y = idx.role.to_numpy()[rows] != "normal"
    used = sorted(idx.patient.unique()) if patients is None else sorted(idx.patient.astype(str)[rows].unique())
    return rows, y.astype(np.int64), used


HELD_OUT_FRACTION = 0.1  # patients of the source cohort held out to report the auxiliary task's accuracy


def held_out_patients(patients, fraction: float = HELD_OUT_FRACTION, rng=None) -> list[str]:
    """A random `fraction` of the distinct patients (at least one when there are two or more), sorted.

    Whole patients are held out, so no held-out patch has a sibling patch (same lesion) in the training set.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    distinct = sorted({str(p) for p in patients})
    if len(distinct) < 2:
        return []
    k = min(len(distinct) - 1, max(1, int(round(fraction * len(distinct)))))
    return sorted(rng.choice(distinct, k, replace=False).tolist())


def pretrain(net: str, source_set, patch_size: int, out_dir: Path, cfg: TrainConfig, progress: bool = True,
             source_name: str = "source cohort", patients=None) -> Path:
    """Train `net` (2-way) on lesion vs normal tissue of `source_set` (of its `patients` only, when given); save it
    with its provenance (`meta["patients"]`: the patients whose patches it saw); return dir."""
    if cfg.normalize != "imagenet":
        raise ValueError("domain pretraining feeds ImageNet-style input (cfg.normalize='imagenet'), as transfer does")
    rows, y, patients = auxiliary_task(source_set, patch_size, patients)
    if len(np.unique(y)) < 2:
        raise ValueError(f"domain pretraining of {net} on {source_name}: {len(patients)} patients give no lesion "
                         "and normal-tissue patches to tell apart")
    x = np.asarray(source_set.patches(patch_size)[rows], np.float32)
    rng = np.random.default_rng([cfg.seed, 7])
    model = weights.architecture(net, num_classes=2, seed=cfg.seed)
    device = torch.device(cfg.device)
    model = models.to_device(model, device, cfg.channels_last)
    scorer = PatchScorer(model, cfg, None, None)
    scaler = models.grad_scaler(device, scorer.mixed)
    opt = torch.optim.Adam(models.l2_param_groups(model, cfg.weight_decay, cfg.lr))
    row_patients = source_set.index.patient.to_numpy().astype(str)[rows]
    held_patients = held_out_patients(row_patients, rng=rng)  # to report how well the auxiliary task was learned
    held = np.isin(row_patients, held_patients)
    train_idx = np.flatnonzero(~held)
    for _ in tqdm(range(cfg.epochs), desc=f"domain pretraining {net}", disable=not progress, leave=False):
        model.train()
        start_epoch_statistics(model, cfg.bn_stats)
        order = train_idx[epoch_indices(y[train_idx], cfg.patches_per_epoch, rng)]
        for b, patches_b in patch_batches(x, order, cfg.batch_size, device):
            with scorer.autocast():
                loss = F.cross_entropy(model(scorer.batch(patches_b, train=True, rng=rng)).float(),
                                       torch.from_numpy(y[b]).to(device))
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
    # the held-out accuracy and the features use the final weights' statistics, over the training patches
    refresh_statistics(scorer, x, train_idx[statistics_rows(len(train_idx), cfg, np.random.default_rng([cfg.seed, 8]))])
    probs = scorer.probabilities(x[held])
    accuracy = float(((probs > 0.5) == y[held]).mean()) if held.any() else float("nan")
    meta = {"task": "lesion vs normal-tissue patches (no subtype labels)", "patients": patients,
            "source": source_name, "patch_size": patch_size, "input_size": cfg.input_size, "epochs": cfg.epochs,
            "patches": int(len(y)), "held_out_accuracy": round(accuracy, 4),
            "held_out_patients": held_patients, "held_out_patches": int(held.sum())}
    weights.save_domain_checkpoint(model.to("cpu").to(memory_format=torch.contiguous_format), out_dir, net, meta)
    return out_dir


def recipe(net: str, patch_size: int, cfg: TrainConfig) -> dict:
    """What a domain checkpoint is made of besides its data: network, patch size and training recipe (bf16 only
    when set, so the fp32 checkpoints cached before keep their keys)."""
    return dict(net=net, patch_size=patch_size, input=cfg.input_size, epochs=cfg.epochs,
                per_epoch=cfg.patches_per_epoch, lr=cfg.lr, seed=cfg.seed, held_out="patients", bn_stats=cfg.bn_stats,
                bn_patches=cfg.bn_patches, **({"bf16": True} if cfg.bf16 else {}), **precision_key(cfg))


def domain_checkpoint(net: str, source_set, patch_size: int, cfg: TrainConfig, cache_dir=None,
                      progress: bool = True, source_name: str = "source cohort", patients=None) -> Path:
    """The cached domain folder holding `net`'s checkpoint for this source and recipe (trained on first use).

    With `patients` (one fold's training patients, in-cohort) the checkpoint is trained on them only and cached
    under them: another fold gives another entry.
    """
    chosen = {} if patients is None else {"patients": sorted(str(p) for p in patients)}
    key = cache.key_of(source=source_set.path.name, **recipe(net, patch_size, cfg), **chosen)
    final = cache.cache_root(cache_dir) / "domain" / key
    if not cache.usable(final, "in-domain checkpoint"):  # absent, incomplete or damaged (named, removed)
        with cache.building(final, {"net": net, "source": source_name}) as tmp:
            pretrain(net, source_set, patch_size, tmp, cfg, progress, source_name, patients)
    return final
