"""End-to-end training on patches, scored per patient (Zhu et al. 2019, approaches 1 and 2: from scratch, transfer).

Patch-level training on each fold's training patients (their original and augmented lesion patches), patient-level
scoring: a patient's score is the mean over its 25 test patches of the logit difference (class-1 logit minus
class-0 logit, i.e. the log-odds of class 1), which still ranks patients whose softmax probabilities saturate.
Learning curves record train and test AUC after every epoch (Figure 2).
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..core.cache import memo
from ..data.patches import scoring_role
from ..stats.evaluation import VERSION, FoldOutput, auc, cross_validate, patient_scores
from . import models
from .weights import imagenet_normalize

INTENSITY_CAP = 1.5  # subtraction channels (units of pre-contrast p99) mapped to [0, 1] for ImageNet-style input
# A fixed bin width (IBSI's FBS, for intensities in relative units such as the subtraction over the pre-contrast 99th
# percentile), fixed in advance from the units: 32 bins over [0, INTENSITY_CAP], the range notebooks 02-05 and the DAE
# read, so that a slice that enhances over that range has the 32 grey levels a fixed bin count gave every slice, and a
# slice that hardly enhances has few (a bin count would stretch its noise over 32).
CRF_BIN_WIDTH = INTENSITY_CAP / 32

TRAIN_ROLES = ("train", "augmented")
BN_PATCHES = 1024  # training patches (a random sample per fold) the batch-norm statistics are recomputed over


@dataclass
class TrainConfig:
    """One training recipe. Paper: lr 1e-4 halved every 5 epochs, 40 epochs, L2 on conv weights, dropout 0.5."""

    input_size: int
    epochs: int = 40
    lr: float = 1e-4
    head_lr: float | None = None  # transfer learning: the re-initialised last layer learns 10x faster
    lr_step: int = 5
    lr_gamma: float = 0.5
    weight_decay: float = 5e-4  # Caffe's customary value; the paper gives none
    batch_size: int = 64
    patches_per_epoch: int | None = None  # a class-balanced subsample per epoch (CPU budget); None = all
    crop: bool = False  # transfer: resize to input*256/224 and crop `input_size` at random each epoch
    normalize: str = "fold"  # "fold": standardise with the fold's training patches; "imagenet": as pretrained nets
    bn_stats: str = "recomputed"  # batch-norm statistics the network is evaluated with (BN_STATS)
    bn_patches: int | None = BN_PATCHES  # "recomputed": training patches the statistics are taken over (None: all)
    bf16: bool = False  # opt-in: bf16 features differ from fp32 (benchmarks/bench_models.py)
    channels_last: bool = True
    curve_patients: int | None = 60  # training patients scored per epoch for the train-AUC curve and train AUC
    test_patches: str = "largest"  # the patches a patient is scored from (patches.SCORING_ROLES)
    seed: int = 0
    device: str = field(default_factory=lambda: str(models.default_device()))  # CUDA: mixed precision (autocast)


# "recomputed": after every epoch, before the network is scored, each batch-norm layer's statistics are recomputed with
# that epoch's weights, without gradient, over the fold's training patches (at most `bn_patches`, drawn once per fold):
# the mean and variance of the layer's input over all of them (`recompute_batchnorm`), so every point of the curves,
# and the last epoch's scores, use the statistics of the weights scored. Cost, measured on the smoke profile's sizes
# (all 705 training patches of a fold, 2 epochs of 256): about a third (32-38%) of a GoogLeNet or GoogLeNet_R fold's
# time; on the demo's (1,024 of ~14,000 patches, epochs of 768) about 1.2 s per epoch on one core against 4.8 s for
# the epoch's training and scoring. CIFAR and VGG_R have no batch-norm layer: nothing to recompute.
# "epoch": every epoch starts the statistics afresh as a plain average (momentum None) of that epoch's training
# batches, taken while the weights still moved. "running": PyTorch's exponential average (momentum 0.1) from its
# initial mean 0 and variance 1: after the few dozen steps of a CPU-sized run it still remembers that start, while
# GoogLeNet's layers (initialised with std 0.01) give variances near 0.02, so each of its batch-norm layers shrinks
# its input in evaluation and the logits become the same for every patch (measured on the demo: patient scores with
# a spread of 0.0004 and AUCs below 0.5 from ranking round-off).
BN_STATS = ("recomputed", "epoch", "running")
BN_BATCH = 256  # patches per forward pass of the recomputation


def _norms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def start_epoch_statistics(model: nn.Module, bn_stats: str) -> None:
    """At the start of a training epoch: with "epoch", reset every batch-norm layer's statistics and make them the
    plain average of the batches to come (training itself is unchanged: it normalises by each batch's own)."""
    if bn_stats not in BN_STATS:
        raise ValueError(f"bn_stats {bn_stats!r}: choose one of {', '.join(BN_STATS)}")
    if bn_stats == "epoch":
        for m in _norms(model):
            m.reset_running_stats()
            m.momentum = None


@torch.no_grad()
def recompute_batchnorm(model: nn.Module, batches) -> None:
    """Set each batch-norm layer's statistics to the mean and (unbiased) variance of its input over all `batches`.

    One pass without gradient, dropout off, the batch-norm layers in training mode (each normalises by its batch's
    own statistics, as in training). Each layer's batch moments are read from the layer itself (momentum 1: its
    statistics are then the batch's, from PyTorch's own kernel) and pooled exactly over the batches.
    """
    norms = _norms(model)
    counts: dict[nn.Module, int] = {}
    moments: dict[nn.Module, list] = {m: [] for m in norms}

    def count(module, args):
        counts[module] = args[0].numel() // args[0].shape[1]  # values per channel in this batch

    handles = [m.register_forward_pre_hook(count) for m in norms]
    momenta = [m.momentum for m in norms]
    was_training = model.training
    model.eval()
    for m in norms:
        m.train()
        m.momentum = 1.0
    try:
        for xb in batches:
            model(xb)
            for m in norms:
                n = counts[m]
                moments[m].append((n, m.running_mean.clone().double(), m.running_var.clone().double() * (n - 1) / n))
    finally:
        for h in handles:
            h.remove()
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.train(was_training)
    for m in norms:
        if not moments[m]:
            continue
        n = torch.tensor([k for k, _, _ in moments[m]], dtype=torch.float64)[:, None]
        means, variances = torch.stack([a for _, a, _ in moments[m]]), torch.stack([v for _, _, v in moments[m]])
        mean = (n * means).sum(0) / n.sum()
        var = (n * (variances + (means - mean) ** 2)).sum(0) / (n.sum() - 1)
        m.running_mean.copy_(mean.to(m.running_mean.dtype))
        m.running_var.copy_(var.to(m.running_var.dtype))


def statistics_rows(n: int, cfg: TrainConfig, rng: np.random.Generator) -> np.ndarray:
    """The training patches (of `n`) the statistics are recomputed over: all, or `cfg.bn_patches` drawn at random."""
    if cfg.bn_patches is None or cfg.bn_patches >= n:
        return np.arange(n)
    return np.sort(rng.choice(n, cfg.bn_patches, replace=False))


def refresh_statistics(scorer: PatchScorer, x: np.ndarray, rows: np.ndarray) -> None:
    """With bn_stats "recomputed": recompute the batch-norm statistics of the scorer's model over patches `x[rows]`,
    fed as in evaluation (no random crop), in near-equal batches of at most BN_BATCH (never a batch of one patch)."""
    if scorer.cfg.bn_stats != "recomputed" or not _norms(scorer.model) or len(rows) < 2:
        return
    chunks = np.array_split(np.asarray(rows), -(-len(rows) // BN_BATCH))
    with scorer.autocast():
        recompute_batchnorm(scorer.model, (scorer.batch(x[part]) for part in chunks))


def _standardiser(x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of the training patches (computed inside the fold)."""
    t = torch.from_numpy(np.asarray(x, np.float32))
    return t.mean(dim=(0, 2, 3)).view(1, -1, 1, 1), t.std(dim=(0, 2, 3)).clamp_min(1e-6).view(1, -1, 1, 1)


class PatchScorer:
    """Resizes patches to the network input, standardises with the fold's statistics, runs the network."""

    def __init__(self, model: nn.Module, cfg: TrainConfig, mean: torch.Tensor, std: torch.Tensor):
        self.model, self.cfg = model, cfg
        self.device = torch.device(cfg.device)
        self.mean, self.std = (None if v is None else v.to(self.device) for v in (mean, std))

    def batch(self, x: np.ndarray | torch.Tensor, train: bool = False,
              rng: np.random.Generator | None = None) -> torch.Tensor:
        """Patches (a float32 tensor, pinned on CUDA, or an array) as the network's input on its device: moved there
        first, then standardised, resized (and cropped) there."""
        t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x, np.float32))
        t = t.to(self.device, non_blocking=True)
        if self.cfg.normalize == "imagenet":
            t = t.clamp(0, INTENSITY_CAP) / INTENSITY_CAP
        else:
            t = (t - self.mean) / self.std
        size = self.cfg.input_size
        if self.cfg.crop:
            big = int(round(size * 256 / 224))
            t = F.interpolate(t, size=(big, big), mode="bilinear", align_corners=False)
            if train:
                offs = rng.integers(0, big - size + 1, size=(len(t), 2))
                t = torch.stack([t[i, :, oy:oy + size, ox:ox + size] for i, (oy, ox) in enumerate(offs)])
            else:
                o = (big - size) // 2
                t = t[:, :, o:o + size, o:o + size]
        elif t.shape[-1] != size:
            t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
        if self.cfg.normalize == "imagenet":
            t = imagenet_normalize(t)
        return t.contiguous(memory_format=torch.channels_last) if self.cfg.channels_last else t

    @property
    def mixed(self) -> bool:
        """Autocast: on CPU when `cfg.bf16` is set; on CUDA always (bfloat16, or float16 where it is unsupported)."""
        return self.cfg.bf16 or self.device.type == "cuda"

    def autocast(self):
        return models.autocast(self.device) if self.mixed else contextlib.nullcontext()

    @torch.no_grad()
    def logits(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """(N, classes) float64 network outputs of the patches (evaluation mode)."""
        self.model.eval()
        out = []
        for i in range(0, len(x), batch_size):
            with self.autocast():
                out.append(self.model(self.batch(x[i:i + batch_size])).float().cpu().numpy().astype(np.float64))
        return np.concatenate(out) if out else np.zeros((0, 2))

    def log_odds(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Class-1 logit minus class-0 logit per patch: the log-odds of class 1, never saturated like softmax."""
        return logit_difference(self.logits(x, batch_size))

    def probabilities(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Softmax probability of class 1 per patch (saturates at 0 or 1 for confident patches)."""
        return 1.0 / (1.0 + np.exp(-self.log_odds(x, batch_size)))


def logit_difference(logits: np.ndarray) -> np.ndarray:
    """Class-1 minus class-0 logit of (N, 2) outputs: the patch score patients are ranked by."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] != 2:
        raise ValueError(f"logit_difference: expected (N, 2) logits of a 2-way head, got shape {logits.shape}")
    return logits[:, 1] - logits[:, 0]


def epoch_indices(labels: np.ndarray, n: int | None, rng: np.random.Generator) -> np.ndarray:
    """One epoch's patch order: all patches shuffled, or (`n` given) n // 2 drawn from each class (with replacement
    only where a class has fewer)."""
    if n is None or n >= len(labels):
        return rng.permutation(len(labels))
    per_class = n // 2
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=(labels == c).sum() < per_class)
             for c in (0, 1)]
    return rng.permutation(np.concatenate(picks))


class _Gather(Dataset):
    """Item i: the patches of batch i (rows `chunks[i]` of `x`) as one float32 tensor."""

    def __init__(self, x: np.ndarray, chunks: list[np.ndarray]):
        self.x, self.chunks = x, chunks

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.x[self.chunks[i]], np.float32))


def loader_workers(device: torch.device) -> int:
    """DataLoader workers that gather the batches: none on CPU (the training threads use the cores), on CUDA half the
    cores (at most 4) so the next batches are ready while the GPU works."""
    return 0 if device.type != "cuda" else min(4, max(1, (os.cpu_count() or 2) // 2))


def patch_batches(x: np.ndarray, order: np.ndarray, batch_size: int, device: torch.device):
    """(rows, patches) of each batch of `x[order]` in turn: on CPU plain slices; on CUDA gathered by DataLoader workers
    into pinned memory, so each copy to the GPU overlaps the work (same batches, same order)."""
    chunks = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if device.type != "cuda":
        return ((rows, x[rows]) for rows in chunks)
    loader = DataLoader(_Gather(x, chunks), batch_size=None, shuffle=False, num_workers=loader_workers(device),
                        pin_memory=True)
    return zip(chunks, loader)


def score_patients(scorer: PatchScorer, patches: np.ndarray, index: pd.DataFrame, patients,
                   test_patches: str = "largest") -> pd.Series:
    """Patient score = mean over its scoring patches (`test_patches`: patches.SCORING_ROLES) of the class-1 log-odds
    (logit difference), unrounded."""
    role = scoring_role(test_patches)
    rows = index.index[index.role.eq(role) & index.patient.isin(list(patients))].to_numpy()
    return patient_scores(index.patient.to_numpy()[rows], scorer.log_odds(patches[rows]))


def fold_seed(seed: int, fold: dict) -> int:
    """The torch seed of one fold's model initialisation (distinct per repeat and fold)."""
    return int(np.random.SeedSequence([seed, fold["repeat"], fold["fold"]]).generate_state(1)[0])


def train_fold(model: nn.Module, patches: np.ndarray, index: pd.DataFrame, fold: dict, cfg: TrainConfig,
               progress: Callable | None = None) -> FoldOutput:
    """Train on the fold's training patients, score test patients (and `curve_patients` training patients, for
    the train AUC) after every epoch, with batch-norm statistics of that epoch's weights (`cfg.bn_stats`); the last
    epoch's scores are the fold's result."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng([cfg.seed, fold["repeat"], fold["fold"]])
    train_rows = index.index[index.role.isin(TRAIN_ROLES) & index.patient.isin(fold["train_patients"])].to_numpy()
    x_train = np.asarray(patches[train_rows], np.float32)
    y_train = index.label.to_numpy()[train_rows]
    stats_rows = statistics_rows(len(x_train), cfg, np.random.default_rng([cfg.seed, fold["repeat"], fold["fold"], 1]))
    mean, std = _standardiser(x_train)
    device = torch.device(cfg.device)
    model = models.to_device(model, device, cfg.channels_last)
    scorer = PatchScorer(model, cfg, mean, std)
    scaler = models.grad_scaler(device, scorer.mixed)
    opt = torch.optim.Adam(models.l2_param_groups(model, cfg.weight_decay, cfg.lr, cfg.head_lr))
    sched = torch.optim.lr_scheduler.StepLR(opt, cfg.lr_step, cfg.lr_gamma)
    curve_pats = list(fold["train_patients"])
    if cfg.curve_patients and len(curve_pats) > cfg.curve_patients:
        curve_pats = sorted(rng.choice(curve_pats, cfg.curve_patients, replace=False).tolist())
    labels = dict(zip(index.patient, index.label))
    curves = {"epoch": [], "loss": [], "train_auc": [], "test_auc": [], "lr": []}
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        start_epoch_statistics(model, cfg.bn_stats)
        order = epoch_indices(y_train, cfg.patches_per_epoch, rng)
        losses = []
        for idx, patches_b in patch_batches(x_train, order, cfg.batch_size, device):
            xb = scorer.batch(patches_b, train=True, rng=rng)
            yb = torch.from_numpy(y_train[idx]).long().to(device)
            with scorer.autocast():
                loss = F.cross_entropy(model(xb).float(), yb)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            losses.append(loss.item())
        curves["lr"].append(opt.param_groups[0]["lr"])
        sched.step()
        refresh_statistics(scorer, x_train, stats_rows)
        tr = score_patients(scorer, patches, index, curve_pats, cfg.test_patches)
        te = score_patients(scorer, patches, index, fold["test_patients"], cfg.test_patches)
        curves["epoch"].append(epoch)
        curves["loss"].append(float(np.mean(losses)))
        curves["train_auc"].append(auc([labels[p] for p in tr.index], tr.values))
        curves["test_auc"].append(auc([labels[p] for p in te.index], te.values))
        if progress:
            progress(epoch)
    return FoldOutput(train_scores=tr, test_scores=te, curves=curves)


def cross_validate_net(patch_set, patch_size: int, folds: list[dict], make_model: Callable[[], nn.Module] | None,
                       cfg: TrainConfig, n_jobs: int = 1, progress: bool = True, desc: str = "",
                       model_id: str | None = None, cache_dir=None, n_boot: int = 1000,
                       fold_model: Callable[[dict], tuple[nn.Module, dict]] | None = None):
    """The paper's protocol for one network: train a fresh model per fold, patient-level AUCs (CVResult).

    With `model_id` (what `make_model` builds, e.g. "scratch/cifar" or "transfer/googlenet/domain/<checkpoint>")
    the finished cross-validation is cached: a re-run or a resumed run reads it back instead of training again.
    `n_boot` (bootstrap resamples of the CI) is part of the cache key. `fold_model(fold)`, given instead of
    `make_model`, builds a fold's own model (in-cohort pretraining) and the keys its fold record gains.
    """

    patches, index = patch_set.patches(patch_size), patch_set.index

    def fit_predict(fold: dict) -> FoldOutput:
        # the fresh model's random layers are drawn from a seed of this fold, not from whatever a joblib worker
        # ran before (which depends on scheduling): the same fold gives the same model on any worker, any load
        torch.manual_seed(fold_seed(cfg.seed, fold))
        if fold_model is None:
            return train_fold(make_model(), patches, index, fold, cfg)
        model, record = fold_model(fold)
        out = train_fold(model, patches, index, fold, cfg)
        out.record = record
        return out

    def run():
        return cross_validate(folds, fit_predict, n_jobs=n_jobs, progress=progress, desc=desc, n_boot=n_boot)
    if model_id is None:
        return run()
    parts = {"evaluation": VERSION, "init": "per-fold seed", "patches": patch_set.path.name, "patch_size": patch_size,
             "model": model_id,
             "cfg": _cfg_key(cfg), "folds": folds, "n_boot": n_boot}
    return memo(cache_dir, "cv", parts, run)


def _cfg_key(cfg: TrainConfig) -> dict:
    """The configuration as it enters a cache key: not the device, and a setting added later only when it differs
    from its default (so the results cached before it existed are still read back); CUDA's mixed precision."""
    later = {"test_patches": "largest"}
    return {**{k: v for k, v in asdict(cfg).items() if k != "device" and not (k in later and v == later[k])},
            **precision_key(cfg)}


def precision_key(cfg: TrainConfig) -> dict:
    """What a cache key adds for a training on CUDA, whose mixed precision gives other numbers: nothing on CPU (the
    keys stay those cached before the device was a parameter)."""
    if torch.device(cfg.device).type != "cuda":
        return {}
    return {"precision": "cuda " + ("bfloat16" if torch.cuda.is_bf16_supported() else "float16")}


def scaled_input(net: str, scale: float, minimum: int = 32) -> int:
    """The network's input side times `scale` (a CPU-budget reduction), never below `minimum`."""
    return max(minimum, int(round(models.INPUT_SIZE.get(net, 224) * scale)))
