"""The `domain` pretraining source: a network pretrained on an auxiliary task that never sees the target labels.

Task: lesion patches (the training and augmented patches of every lesion region) against normal-tissue patches.
Either on a source cohort disjoint from the study cohort (for the synthetic data: another synthetic cohort, other
seed), saved once; or in-cohort, inside each outer fold on that fold's training patients only (`patients`), saved
once per fold. Each checkpoint is saved with what it was trained on (its patients) and reused by transfer learning
and deep features.

Tasks (`TASKS`): "lesion" (above) and "tumour_type": the tumour-centred patches (roles train and augmented) labelled
by their patient's tumour type in the source's cohort table (`tumour_type` column: e.g. glioma / meningioma /
pituitary of the Figshare brain-tumour cohort), k-way with k the types present. Neither uses the study's labels.

Why patch classification rather than tumour segmentation from the masks: it trains the very network (and 2-way
head) that transfer learning fine-tunes and whose layers feed the SVMs, on the very patches of the study (the
boxes, or the masks' boxes, give the lesion patches; normal tissue is cut clear of them), with no decoder to add
or discard, and the same code serves the Duke boxes and the LGG masks.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
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
TASKS = {"lesion": "lesion vs normal-tissue patches (no subtype labels)",
         "tumour_type": "tumour type of tumour-centred patches (no subtype labels)"}
LESION_CLASSES = ("normal", "lesion")
NETWORK_CHANNELS = 3  # every network takes three input channels (ImageNet RGB; the study's three MRI channels)


def _task_rows(patch_set, roles, patients=None) -> np.ndarray:
    """The index rows of the patches of `roles` (of `patients` only, when given)."""
    idx = patch_set.index
    keep = idx.role.isin(roles)
    if patients is not None:
        keep &= idx.patient.astype(str).isin([str(p) for p in patients])
    return idx.index[keep].to_numpy()


def auxiliary_task(patch_set, patch_size: int, patients=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(patch rows, labels 1 = lesion / 0 = normal tissue, patients): never the subtype label.

    With `patients` (in-cohort pretraining: one fold's training patients) only their patches, and the patients
    returned are those whose patches are in the task; else every patient of the patch set.
    """
    idx = patch_set.index
    rows = _task_rows(patch_set, LESION_ROLES + ("normal",), patients)
    y = idx.role.to_numpy()[rows] != "normal"
    used = sorted(idx.patient.unique()) if patients is None else sorted(idx.patient.astype(str)[rows].unique())
    return rows, y.astype(np.int64), used


def tumour_type_task(patch_set, patch_size: int, patients=None) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """(patch rows, labels 0..k-1, patients, the k tumour types in label order) of the tumour-centred patches (roles
    train and augmented), each labelled by its patient's `tumour_type` in `patch_set.table`; k = the types present.

    A source whose cohort table has no `tumour_type` column (a Duke or LGG cohort) is refused (ValueError).
    """
    table = patch_set.table
    if "tumour_type" not in table.columns:
        raise ValueError(f"the tumour_type pretraining task needs a `tumour_type` column in the source's cohort "
                         f"table; {Path(patch_set.path).name} has only {list(table.columns)}: pretrain it with "
                         f"task 'lesion'")
    idx = patch_set.index
    rows = _task_rows(patch_set, LESION_ROLES, patients)
    types = {str(p): t for p, t in zip(table.patient, table.tumour_type) if not pd.isna(t)}
    row_patients = idx.patient.astype(str).to_numpy()[rows]
    untyped = sorted(set(row_patients) - set(types))
    if untyped:
        raise ValueError(f"the tumour_type pretraining task: {len(untyped)} patient(s) of {Path(patch_set.path).name} "
                         f"have no tumour_type in its cohort table: {', '.join(untyped[:5])}")
    row_types = np.array([str(types[p]) for p in row_patients], dtype=object)
    classes = sorted(set(row_types))
    y = np.searchsorted(np.array(classes, dtype=object), row_types)
    return rows, y.astype(np.int64), sorted(set(row_patients)), classes


def task_labels(patch_set, patch_size: int, task: str = "lesion",
                patients=None) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """(patch rows, labels, patients, class names in label order) of the pretraining `task` (one of `TASKS`)."""
    if task == "lesion":
        rows, y, used = auxiliary_task(patch_set, patch_size, patients)
        return rows, y, used, list(LESION_CLASSES)
    if task == "tumour_type":
        return tumour_type_task(patch_set, patch_size, patients)
    raise ValueError(f"unknown pretraining task {task!r}; expected one of {tuple(TASKS)}")


def held_out_unit(patch_set) -> str:
    """What the held-out units of the pretraining are: "slices" when the source's cohort table says its units are
    slices (`unit` column "slice": a copy without patient ids, each slice its own unit, so neighbouring slices of one
    patient may fall on both sides and the held-out accuracy is optimistic), else "patients"."""
    unit = patch_set.table.get("unit")
    return "slices" if unit is not None and unit.astype(str).eq("slice").any() else "patients"


def three_channels(x: np.ndarray) -> tuple[np.ndarray, int]:
    """(patches as the networks' three input channels, the source's own channel count).

    A one-channel source (the Figshare cohort: post-contrast T1 only) is replicated into the three channels (a
    read-only broadcast view: batches are copied out of it by row): the networks take three, and filling RGB with
    one grey image is how ImageNet-style input is filled from a single channel. The first layer then only ever sees
    equal channels, so what it learns is each filter's SUM over the channels; `weights.load_pretrained(...,
    contrast_channel=c)` puts that sum on the study's post-contrast channel c.
    """
    channels = x.shape[1]
    if channels == NETWORK_CHANNELS:
        return x, channels
    if channels != 1:
        raise ValueError(f"domain pretraining takes patches of 1 or {NETWORK_CHANNELS} channels, got {channels}")
    return np.broadcast_to(x, (len(x), NETWORK_CHANNELS, *x.shape[2:])), channels


def balanced_order(y: np.ndarray, n: int | None, rng: np.random.Generator, k: int) -> np.ndarray:
    """One epoch's patch order: `training.epoch_indices` for two classes (the lesion task, unchanged); for k classes
    all patches shuffled, or (`n` given) n // k drawn from each class present (with replacement where one has fewer)."""
    if k == 2:
        return epoch_indices(y, n, rng)
    if n is None or n >= len(y):
        return rng.permutation(len(y))
    present = np.unique(y)
    per_class = n // len(present)
    picks = [rng.choice(np.flatnonzero(y == c), per_class, replace=(y == c).sum() < per_class) for c in present]
    return rng.permutation(np.concatenate(picks))


def held_out_by_class(predicted: np.ndarray, y: np.ndarray, classes) -> dict:
    """{class: {"patches": held-out patches of it, "correct": those predicted as it}}."""
    return {name: {"patches": int((y == c).sum()), "correct": int(((y == c) & (predicted == c)).sum())}
            for c, name in enumerate(classes)}


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
             source_name: str = "source cohort", patients=None, task: str = "lesion") -> Path:
    """Train `net` on the pretraining `task` (`TASKS`; "lesion": 2-way, lesion vs normal tissue; "tumour_type":
    k-way) over `source_set` (of its `patients` only, when given); save it with its provenance (`meta["patients"]`:
    the patients whose patches it saw; `input_channels`: 1 for a one-channel source, fed replicated); return dir.

    The held-out accuracy (argmax over the k classes) is over whole held-out units: patients, or slices where the
    source's table says its units are slices (`held_out_unit`, recorded)."""
    if cfg.normalize != "imagenet":
        raise ValueError("domain pretraining feeds ImageNet-style input (cfg.normalize='imagenet'), as transfer does")
    rows, y, patients, classes = task_labels(source_set, patch_size, task, patients)
    if len(np.unique(y)) < 2:
        what = ("no lesion and normal-tissue patches" if task == "lesion" else f"fewer than two {task} classes")
        raise ValueError(f"domain pretraining of {net} on {source_name}: {len(patients)} patients give {what} "
                         "to tell apart")
    x, input_channels = three_channels(np.asarray(source_set.patches(patch_size)[rows], np.float32))
    rng = np.random.default_rng([cfg.seed, 7])
    model = weights.architecture(net, num_classes=len(classes), seed=cfg.seed)
    torch.manual_seed(cfg.seed)  # dropout's draws: the same network whatever ran before in this process
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
        order = train_idx[balanced_order(y[train_idx], cfg.patches_per_epoch, rng, len(classes))]
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
    if len(classes) == 2:
        predicted = (scorer.probabilities(x[held]) > 0.5).astype(np.int64)
    else:
        predicted = scorer.logits(x[held]).argmax(1) if held.any() else np.zeros(0, np.int64)
    accuracy = float((predicted == y[held]).mean()) if held.any() else float("nan")
    meta = {"task": TASKS[task], "patients": patients,
            "source": source_name, "patch_size": patch_size, "input_size": cfg.input_size, "epochs": cfg.epochs,
            "patches": int(len(y)), "held_out_accuracy": round(accuracy, 4),
            "held_out_patients": held_patients, "held_out_patches": int(held.sum()),
            "task_name": task, "classes": list(classes), "input_channels": input_channels,
            "held_out_unit": held_out_unit(source_set),
            "held_out_by_class": held_out_by_class(predicted, y[held], classes)}
    weights.save_domain_checkpoint(model.to("cpu").to(memory_format=torch.contiguous_format), out_dir, net, meta)
    return out_dir


def recipe(net: str, patch_size: int, cfg: TrainConfig) -> dict:
    """What a domain checkpoint is made of besides its data: network, patch size and training recipe (bf16 only
    when set, so the fp32 checkpoints cached before keep their keys)."""
    return dict(net=net, patch_size=patch_size, input=cfg.input_size, epochs=cfg.epochs,
                per_epoch=cfg.patches_per_epoch, lr=cfg.lr, seed=cfg.seed, held_out="patients", bn_stats=cfg.bn_stats,
                bn_patches=cfg.bn_patches, **({"bf16": True} if cfg.bf16 else {}), **precision_key(cfg))


def domain_checkpoint(net: str, source_set, patch_size: int, cfg: TrainConfig, cache_dir=None,
                      progress: bool = True, source_name: str = "source cohort", patients=None,
                      task: str = "lesion") -> Path:
    """The cached domain folder holding `net`'s checkpoint for this source, recipe and `task` (trained on first use).

    With `patients` (one fold's training patients, in-cohort) the checkpoint is trained on them only and cached
    under them: another fold gives another entry. The task enters the key only when it is not "lesion", so the
    lesion checkpoints cached before keep their keys.
    """
    if task not in TASKS:
        raise ValueError(f"unknown pretraining task {task!r}; expected one of {tuple(TASKS)}")
    chosen = {} if patients is None else {"patients": sorted(str(p) for p in patients)}
    chosen.update({} if task == "lesion" else {"task": task})
    key = cache.key_of(source=source_set.path.name, **recipe(net, patch_size, cfg), **chosen)
    final = cache.cache_root(cache_dir) / "domain" / key
    if not cache.usable(final, "in-domain checkpoint"):  # absent, incomplete or damaged (named, removed)
        with cache.building(final, {"net": net, "source": source_name}) as tmp:
            pretrain(net, source_set, patch_size, tmp, cfg, progress, source_name, patients, task)
    return final
