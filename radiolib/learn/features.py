"""Off-the-shelf deep features + SVM (Zhu et al. 2019, approach 3, Table 5; the layer-wise analysis, Table 6).

Features of every patch are extracted once per (network, weights, patch size, input size) in ONE forward pass for
all requested layers, cached on disk, then reused by every kernel and fold. The SVM is fitted per fold on the
training patients' patches (features standardised inside the fold) and a patient's score is the mean decision
function over its 25 test patches.
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from joblib import Parallel, delayed
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from torchvision.models.feature_extraction import create_feature_extractor

from ..core import cache
from ..core.frontend import tqdm
from ..data.descriptor import contrast_channel
from ..data.patches import scoring_role
from ..stats.evaluation import VERSION, FoldOutput, cross_validate, patient_scores
from . import models, weights
from .training import INTENSITY_CAP

LAST_FC = {"googlenet": "fc", "vgg16": "classifier.6"}  # the paper's default feature layer (1000 ImageNet logits)
PENULTIMATE = {"googlenet": "flatten", "vgg16": "classifier.4"}  # for nets whose own head is 2-way (domain)


def to_network_input(x: np.ndarray, size: int, net: str) -> torch.Tensor:
    """Patches (B, 3, px, px) -> ImageNet-normalised (B, 3, size, size); fold-independent, so no leakage."""
    t = torch.from_numpy(np.asarray(x, np.float32)).clamp(0, INTENSITY_CAP) / INTENSITY_CAP
    if t.shape[-1] != size:
        t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
    return weights.imagenet_normalize(t, net if net in weights.PRETRAINED else "googlenet")


def feature_layer(net: str, source: str) -> str:
    """The paper's layer (last FC); for in-domain nets, whose head is 2-way, the layer below it."""
    return PENULTIMATE[net] if source == "domain" else LAST_FC[net]


@torch.no_grad()
def extract(model: torch.nn.Module, patches: np.ndarray, net: str, layers: tuple[str, ...], size: int,
            batch_size: int = 64, bf16: bool = False, channels_last: bool = True,
            progress: bool = True, desc: str = "features", device=None) -> dict[str, np.ndarray]:
    """{layer: (N, length) float32} for every patch, all layers from one forward pass per batch, on `device` (None:
    `models.default_device()`)."""
    device = torch.device(device) if device is not None else models.default_device()
    extractor = models.to_device(weights.layer_extractor(model, layers), device, channels_last)
    out: dict[str, list] = {name: [] for name in layers}
    for i in tqdm(range(0, len(patches), batch_size), desc=desc, disable=not progress, leave=False):
        x = to_network_input(patches[i:i + batch_size], size, net).to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with models.autocast(device, bf16):
            feats = extractor(x)
        for name in layers:
            out[name].append(feats[name].float().cpu().numpy())
    return {name: np.concatenate(v) for name, v in out.items()}


def weights_tag(net: str, source: str, domain_dir) -> str:
    """What the weights are, for the cache key: the checkpoint's bytes hash (imagenet / domain) or the seed."""
    if source == "random":
        return "random-seed0"
    path = weights.expected_path(net) if source == "imagenet" else weights.domain_checkpoint_path(domain_dir, net)
    st = Path(path).stat()
    return hashlib.sha256(f"{path.name}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]


def pass_layers(net: str, layers: tuple[str, ...]) -> tuple[str, ...]:
    """The layers one forward pass keeps when `layers` are asked for: for GoogLeNet every layer the study reads
    (05's twelve and the in-domain network's penultimate) with them, so notebook 04's pass at a patch size serves
    05 too (the pass costs the same; keeping a layer only averages it); for other networks `layers` alone."""
    if net != "googlenet":
        return tuple(layers)
    return tuple(dict.fromkeys((*weights.GOOGLENET_LAYERS, PENULTIMATE[net], *layers)))


def _contrast_channel(patch_set, net: str, source: str, domain_dir) -> int | None:
    """The study's post-contrast channel when `net`'s in-domain checkpoint was pretrained on one channel (its first
    layer is moved there, `weights.adapt_first_conv`), else None."""
    if source != "domain" or weights.domain_input_channels(domain_dir, net) != 1:
        return None
    return contrast_channel(patch_set.descriptor)


def cached_features(patch_set, patch_size: int, net: str, source: str, layers: tuple[str, ...], size: int,
                    domain_dir=None, cache_dir=None, bf16: bool = False, progress: bool = True,
                    roles=("train", "augmented", "test"), device=None) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """(index of the patches used, {layer: features}) for the patches of `roles`, computed once and reused.

    Only the roles an analysis needs are passed through the network (the SVM's training roles and the test
    patches); the cache entry is written atomically.
    """
    rows = np.flatnonzero(patch_set.index.role.isin(list(roles)).to_numpy())
    computed = pass_layers(net, layers)
    contrast = _contrast_channel(patch_set, net, source, domain_dir)
    key = cache.key_of(patches=patch_set.path.name, patch_size=patch_size, net=net, source=source,
                       layers=list(computed), size=size, weights=weights_tag(net, source, domain_dir), bf16=bf16,
                       roles=sorted(roles), **({} if contrast is None else {"contrast_channel": contrast}))
    final = cache.cache_root(cache_dir) / "features" / key
    if not cache.usable(final, "feature cache"):  # absent, incomplete or damaged (named, removed)
        model = weights.load_pretrained(net, source, domain_dir=domain_dir, contrast_channel=contrast)
        feats = extract(model, patch_set.patches(patch_size)[rows], net, computed, size, bf16=bf16,
                        progress=progress, desc=f"{net}/{source} features, patch {patch_size}", device=device)
        with cache.building(final, {"net": net, "source": source, "layers": list(computed), "size": size}) as tmp:
            for name, arr in feats.items():
                np.save(tmp / f"{name}.npy", arr)
    index = patch_set.index.iloc[rows].reset_index(drop=True)
    return index, {name: np.load(final / f"{name}.npy") for name in layers}


class PerFold(dict):
    """One feature matrix per outer fold, {(repeat, fold): matrix}: features of the in-cohort `domain` source, whose
    network each fold pretrains on its own training patients. `records`: {(repeat, fold): keys the fold's results
    record gains (`pretraining_patients`)}. `shape` is that of every matrix."""

    def __init__(self, matrices: dict, records: dict | None = None):
        super().__init__(matrices)
        self.records = dict(records or {})

    @property
    def shape(self) -> tuple[int, ...]:
        return next(iter(self.values())).shape

    def of(self, fold: dict) -> np.ndarray:
        """The matrix of `fold` (a fold dict with repeat and fold); KeyError naming the fold when it has none."""
        key = (fold["repeat"], fold["fold"])
        if key not in self:
            raise KeyError(f"no in-cohort features for repeat {key[0]} fold {key[1]}; computed for {sorted(self)}")
        return self[key]


def cached_fold_features(patch_set, patch_size: int, net: str, layers: tuple[str, ...], size: int,
                         fold_dirs: dict, cache_dir=None, bf16: bool = False, progress: bool = True,
                         roles=("train", "augmented", "test"), device=None) -> tuple[pd.DataFrame, dict[str, PerFold]]:
    """`cached_features` of the in-cohort `domain` source: (index, {layer: PerFold}), each fold's features from its
    own checkpoint (`fold_dirs`: {(repeat, fold): checkpoint folder}), with the patients it was pretrained on."""
    per_fold = {key: cached_features(patch_set, patch_size, net, "domain", layers, size, d, cache_dir, bf16,
                                     progress, roles, device) for key, d in fold_dirs.items()}
    records = {key: weights.pretraining_record(d, net) for key, d in fold_dirs.items()}
    index = next(iter(per_fold.values()))[0]
    return index, {name: PerFold({key: f[name] for key, (_, f) in per_fold.items()}, records) for name in layers}


def fold_feature_id(patch_set, patch_size: int, net: str, layer: str, size: int, fold_dirs: dict, roles=()) -> str:
    """`feature_id` of in-cohort features: one name for the matrices of all folds (their checkpoints' tags)."""
    ids = [feature_id(patch_set, patch_size, net, "domain", layer, size, d, roles)
           for _, d in sorted(fold_dirs.items())]
    return (f"{patch_set.path.name}/{patch_size}/{net}/domain/in-cohort-{cache.key_of(ids=ids)}/{layer}/{size}/"
            + ",".join(sorted(roles)))


def balanced_subsample(labels: np.ndarray, n: int | None, rng: np.random.Generator) -> np.ndarray:
    """Indices of at most n items, half from each class when possible (the CPU budget of the SVM)."""
    if n is None or n >= len(labels):
        return np.arange(len(labels))
    picks = []
    for c in (0, 1):
        idx = np.flatnonzero(labels == c)
        picks.append(rng.choice(idx, min(len(idx), n // 2), replace=False))
    return np.sort(np.concatenate(picks))


def svm_fit_predict(features: np.ndarray, index: pd.DataFrame, kernel: str, max_train: int | None = None,
                    C: float = 1.0, seed: int = 0, train_roles=("train", "augmented"), test_patches: str = "largest"):
    """A `fit_predict(fold)` for evaluation.cross_validate: SVM on training patches, patient = mean decision over
    its scoring patches (`test_patches`: patches.SCORING_ROLES).

    `features` is one matrix, or a `PerFold` (a matrix per fold, whose record the fold's result carries)."""
    roles = index.role.to_numpy()
    patients = index.patient.to_numpy()
    labels = index.label.to_numpy()
    is_train_patch = np.isin(roles, list(train_roles))
    is_test_patch = roles == scoring_role(test_patches)

    def fit_predict(fold: dict) -> FoldOutput:
        x = features.of(fold) if isinstance(features, PerFold) else features
        rng = np.random.default_rng([seed, fold["repeat"], fold["fold"]])
        train_rows = np.flatnonzero(is_train_patch & np.isin(patients, fold["train_patients"]))
        train_rows = train_rows[balanced_subsample(labels[train_rows], max_train, rng)]
        clf = make_pipeline(StandardScaler(), SVC(kernel=kernel, C=C, gamma="scale", degree=3))
        clf.fit(x[train_rows], labels[train_rows])

        def scores(pats):
            rows = np.flatnonzero(is_test_patch & np.isin(patients, pats))
            return patient_scores(patients[rows], clf.decision_function(x[rows]))
        record = features.records.get((fold["repeat"], fold["fold"])) if isinstance(features, PerFold) else None
        return FoldOutput(train_scores=scores(fold["train_patients"]), test_scores=scores(fold["test_patients"]),
                          record=record)
    return fit_predict


def cross_validate_svm(feats: np.ndarray, index: pd.DataFrame, folds: list[dict], kernel: str,
                       max_train: int | None, train_roles=("train",), seed: int = 0, n_jobs: int = 1,
                       progress: bool = True, desc: str = "", feature_id: str | None = None, cache_dir=None,
                       n_boot: int = 1000, test_patches: str = "largest"):
    """The patient-level protocol for one SVM setting (CVResult); cached when `feature_id` names the features
    (`n_boot`, the CI's bootstrap resamples, is part of the key)."""

    def run():
        fit = svm_fit_predict(feats, index, kernel, max_train, seed=seed, train_roles=train_roles,
                              test_patches=test_patches)
        return cross_validate(folds, fit, n_jobs=n_jobs, progress=progress, desc=desc, n_boot=n_boot)
    if feature_id is None:
        return run()
    parts = {"evaluation": VERSION, "features": feature_id, "kernel": kernel, "max_train": max_train,
             "roles": list(train_roles), "seed": seed, "folds": folds, "n_boot": n_boot}
    if test_patches != "largest":  # added later: the key of the default is unchanged
        parts["test_patches"] = test_patches
    return cache.memo(cache_dir, "cv", parts, run)


def feature_id(patch_set, patch_size: int, net: str, source: str, layer: str, size: int, domain_dir=None,
               roles=()) -> str:
    """A name for one feature matrix, precise enough to key cached SVM results."""
    return (f"{patch_set.path.name}/{patch_size}/{net}/{source}/{weights_tag(net, source, domain_dir)}/{layer}/{size}/"
            + ",".join(sorted(roles)))


LAYERWISE_SETTING = (120, "poly")  # Table 6: its FC1 row (0.84 / 0.65) is Table 5's GoogLeNet 120 px poly row


def layerwise_setting(patch_size: int | None = None, kernel: str | None = None,
                      patch_sizes=None) -> tuple[int, str, str]:
    """(patch size, kernel, why) of the layer-wise analysis, fixed before any test fold is seen.

    The paper's pre-specified setting (120 px, polynomial kernel) unless the parameters set one; never chosen from
    another notebook's test AUCs. Raises ValueError when the patch size is not among the run's `patch_sizes`.
    """
    size = patch_size or LAYERWISE_SETTING[0]
    kern = kernel or LAYERWISE_SETTING[1]
    if patch_sizes is not None and size not in list(patch_sizes):
        raise ValueError(f"layer-wise patch size {size} is not among the run's patch_sizes {list(patch_sizes)}; "
                         "add it to patch_sizes or set layer_patch_size")
    why = ("set by parameters" if (patch_size or kernel) else
           "pre-specified: the paper's Table 6 setting (120 px, poly), chosen before seeing any test fold")
    return size, kern, why


@torch.no_grad()
def feature_maps(model: torch.nn.Module, patches: np.ndarray, net: str, layer: str, size: int) -> np.ndarray:
    """Un-pooled (B, C, H, W) activations of one layer for a few patches (the layer-wise viewer)."""
    body = create_feature_extractor(model.eval(), return_nodes={layer: "out"})
    return body(to_network_input(patches, size, net))["out"].float().numpy()


def cross_validate_svms(settings: dict, n_jobs: int = 1, progress: bool = True, desc: str = "SVM settings") -> dict:
    """Several SVM settings, {key: keyword arguments of `cross_validate_svm`}, run in parallel through joblib.

    Each setting's folds run in sequence inside its worker, so a joblib backend (loky, Dask, Ray) spreads the
    settings; large feature arrays are passed as arguments, which joblib memory-maps instead of copying.
    """
    keys = list(settings)
    jobs = (delayed(cross_validate_svm)(**{**settings[k], "n_jobs": 1, "progress": False}) for k in keys)
    out = Parallel(n_jobs=n_jobs, return_as="generator")(jobs)
    with warnings.catch_warnings():  # loky restarting idle workers says so; results are unaffected
        warnings.filterwarnings("ignore", message="A worker stopped while some jobs were given")
        return dict(zip(keys, tqdm(out, total=len(keys), desc=desc, disable=not progress)))
