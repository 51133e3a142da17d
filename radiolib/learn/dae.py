"""The denoising autoencoder of Liu & Hu 2023 (seeds/003) and its deep radiomic features (DRFs).

As published: a 64 x 64 single-channel input (the lesion-centred first subtraction slice), an encoder of three blocks
[conv 16 filters 3x3 "same", ReLU, max-pool 2] (64 -> 32 -> 16 -> 8), a mirrored decoder of three blocks
[conv 16 3x3, ReLU, up-sampling 2] (8 -> 64) and a 1-filter 3x3 sigmoid output. It is trained to reconstruct the
clean slice from the slice plus Gaussian noise of standard deviation 0.05, clipped to [0, 1]. The DRFs are the
output of the second pooling layer, 16 channels of 16 x 16 = 4,096 values per image, quantile-normalised.

The loss is a parameter (`LOSSES`). The published code used Keras' `cosine_proximity` on outputs of shape
(64, 64, 1): it L2-normalises over the last axis, of size 1, so every pixel becomes its own sign, the loss is -1
whatever the weights and its gradient zero up to rounding (7e-12 against 0.18 for mse on the test slices): Adam
then moves the weights by rounding noise only and the reconstruction does not change. `keras_cosine` reproduces
it (`tests/test_dae.py` checks all of this). `cosine` normalises over the whole image instead; `mse` is the plain
reconstruction error (default).
The paper does not give the optimiser or its settings: Adam at `lr` is our choice.

Intensities (`to_input`): the slices are in the cohort's units, as notebooks 02-05 read them (Duke: the subtraction
divided by the patient's pre-contrast 99th percentile; `imaging.subtraction_channels`), clamped to
[0, INTENSITY_CAP] and divided by INTENSITY_CAP: one fixed map for every image, so that the amplitude of enhancement
(wash-in, peak) reaches the DAE. A per-image min-max scaling would give a patch and 2.5 * patch + 0.3 the same input.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy.stats import rankdata
from torch import nn

from ..core.frontend import tqdm
from .models import autocast
from .training import INTENSITY_CAP

SIDE = 64  # input side, as published
FILTERS = 16
DRF_LAYER = "pool2"  # the second max-pooling layer: 16 x 16 x 16 = 4,096 features
LOSSES = ("mse", "cosine", "keras_cosine")


class DenoisingAutoencoder(nn.Module):
    """Conv 16 3x3 + ReLU + max-pool 2, three times; mirrored with up-sampling; 1-filter sigmoid output."""

    def __init__(self, filters: int = FILTERS):
        super().__init__()
        self.encoder = nn.ModuleList(nn.Conv2d(c, filters, 3, padding=1) for c in (1, filters, filters))
        self.decoder = nn.ModuleList(nn.Conv2d(filters, filters, 3, padding=1) for _ in range(3))
        self.output = nn.Conv2d(filters, 1, 3, padding=1)

    def encode(self, x: torch.Tensor, upto: int = 3) -> torch.Tensor:
        """The output of pooling layer `upto` (1 to 3) for a batch of shape (n, 1, 64, 64)."""
        for conv in self.encoder[:upto]:
            x = F.max_pool2d(F.relu(conv(x)), 2)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encode(x)
        for conv in self.decoder:
            z = F.interpolate(F.relu(conv(z)), scale_factor=2, mode="nearest")  # Keras UpSampling2D: nearest
        return torch.sigmoid(self.output(z))


def reconstruction_loss(name: str, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean loss of a batch (n, 1, h, w). `keras_cosine`: Keras' cosine_proximity over the size-1 channel axis,
    as the published code used it; `cosine`: 1 - cosine similarity of each whole image; `mse`."""
    if name == "mse":
        return F.mse_loss(pred, target)
    if name == "cosine":
        return 1 - F.cosine_similarity(pred.flatten(1), target.flatten(1), dim=1, eps=1e-8).mean()
    if name == "keras_cosine":  # K.l2_normalize(x, axis=-1) = x / sqrt(max(sum(x**2), 1e-12)), summed over axis 1
        def unit(t):
            return t / torch.sqrt(torch.clamp((t * t).sum(dim=1, keepdim=True), min=1e-12))
        return -(unit(pred) * unit(target)).sum(dim=1).mean()
    raise ValueError(f"unknown DAE loss {name!r}: choose one of {', '.join(LOSSES)}")


def add_noise(x: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """The corrupted input: x plus Gaussian noise of `std`, clipped to [0, 1]."""
    return (x + std * torch.randn(x.shape, generator=generator)).clamp(0.0, 1.0)


def lesion_slices(patch_set, patch_size: int = 80, channel: int = 0, role: str = "train",
                  ) -> tuple[np.ndarray, pd.DataFrame]:
    """The DAE's inputs from a study's patch set: `lesion_intensities` mapped to [0, 1] by `to_input`.
    Returns (images (n, 64, 64) float32, their rows of the patch index: patient, lesion, slice, label)."""
    units, meta = lesion_intensities(patch_set, patch_size, channel, role)
    return to_input(units), meta


def lesion_intensities(patch_set, patch_size: int = 80, channel: int = 0, role: str = "train",
                       ) -> tuple[np.ndarray, pd.DataFrame]:
    """Every lesion-centred patch of `role` ("train": one centred, unaugmented patch per lesion region and slice),
    channel `channel` (Duke: 0 = the first subtraction, post1 - pre; LGG: 0 = pre-contrast), resized to 64 x 64
    (area) and left in the patch set's units (units of the patient's pre-contrast 99th percentile, as 02-05 read
    them). Returns (images (n, 64, 64) float32, their rows of the patch index: patient, lesion, slice, label)."""
    idx = patch_set.index
    if role not in set(idx.role):
        raise ValueError(f"the patch set has no patches of role {role!r} (it has {sorted(set(idx.role))})")
    rows = idx.index[idx.role == role].to_numpy()
    x = torch.from_numpy(np.asarray(patch_set.patches(patch_size)[rows, channel], np.float32)).unsqueeze(1)
    meta = idx.loc[rows, [c for c in ("patient", "lesion", "slice", "label") if c in idx]].reset_index(drop=True)
    return _resized(x), meta


def whole_slices(source, meta: pd.DataFrame, channel: int = 0, progress: bool = False) -> np.ndarray:
    """The DAE's inputs as whole axial slices (the `dae_input` "slice" option): for each row of `meta` (patient,
    slice, as `lesion_slices` gives them), that slice of channel `channel` of the patient's volume from the data
    source (`radiolib.data.source`, on its target grid, in the units of the patches: `Volume.channels`, from which the
    patch set is cut), resized to 64 x 64 (area) and mapped to [0, 1] by `to_input`."""
    out = np.zeros((len(meta), SIDE, SIDE), np.float32)
    groups = meta.groupby(meta.patient.astype(str), sort=False)
    for patient, rows in tqdm(groups, desc="whole slices", disable=not progress, leave=False):
        vol = source.volume(patient, source.target_spacing)
        depth = vol.channels.shape[1]
        bad = rows.slice[(rows.slice < 0) | (rows.slice >= depth)]
        if len(bad):
            raise ValueError(f"patient {patient}: slice {int(bad.iloc[0])} is outside its volume of {depth} slices")
        x = torch.from_numpy(np.asarray(vol.channels[channel, rows.slice.to_numpy()], np.float32)).unsqueeze(1)
        out[rows.index.to_numpy()] = to_input(_resized(x))
    return out


def _resized(x: torch.Tensor) -> np.ndarray:
    """(n, 1, h, w) images -> (n, 64, 64), area-resized (an average: the intensities keep their units)."""
    return F.interpolate(x, size=(SIDE, SIDE), mode="area")[:, 0].numpy()


def to_input(units: np.ndarray) -> np.ndarray:
    """Images in the cohort's units as the DAE reads them: clamped to [0, INTENSITY_CAP] and divided by it, the map
    notebooks 02-05 apply to the networks' inputs (`training.INTENSITY_CAP`), the same for every image."""
    return (np.clip(np.asarray(units, np.float32), 0.0, INTENSITY_CAP) / np.float32(INTENSITY_CAP)).astype(np.float32)


@dataclass(frozen=True)
class DaeConfig:
    loss: str = "mse"
    noise: float = 0.05
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0
    bf16: bool = False  # autocast the training steps (a CPU budget: about 2x faster here); features stay fp32


@dataclass
class TrainedDae:
    model: DenoisingAutoencoder
    losses: list[float]  # mean training loss per epoch
    config: DaeConfig


def check_images(images: np.ndarray) -> np.ndarray:
    """(n, 64, 64) float32 in [0, 1], or a ValueError saying what is wrong."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 3 or x.shape[1:] != (SIDE, SIDE):
        raise ValueError(f"the DAE takes single-channel {SIDE} x {SIDE} slices, shape (n, {SIDE}, {SIDE}); got "
                         f"{x.shape}")
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise ValueError("the DAE's input must be finite and scaled to [0, 1] (its output is a sigmoid); got "
                         f"values in [{np.nanmin(x):.3g}, {np.nanmax(x):.3g}]")
    return x


def train(images: np.ndarray, config: DaeConfig = DaeConfig(), progress: bool = False) -> TrainedDae:
    """Train the DAE to reconstruct `images` (n, 64, 64) in [0, 1] from their noisy copies."""
    if config.loss not in LOSSES:
        raise ValueError(f"unknown DAE loss {config.loss!r}: choose one of {', '.join(LOSSES)}")
    x = torch.from_numpy(check_images(images)).unsqueeze(1)
    gen = torch.Generator().manual_seed(config.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = DenoisingAutoencoder()
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    losses = []
    for _ in tqdm(range(config.epochs), desc="denoising autoencoder", disable=not progress, leave=False):
        model.train()
        order, total = torch.randperm(len(x), generator=gen), 0.0
        for i in range(0, len(x), config.batch_size):
            clean = x[order[i:i + config.batch_size]]
            with autocast("cpu", config.bf16):
                loss = reconstruction_loss(config.loss, model(add_noise(clean, config.noise, gen)).float(), clean)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(clean)
        losses.append(total / len(x))
    return TrainedDae(model.eval(), losses, config)


@torch.no_grad()
def reconstruct(model: DenoisingAutoencoder, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The DAE's output for clean `images`, (n, 64, 64)."""
    x = torch.from_numpy(check_images(images)).unsqueeze(1)
    return torch.cat([model.eval()(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])[:, 0].numpy()


@torch.no_grad()
def deep_radiomic_features(model: DenoisingAutoencoder, images: np.ndarray, batch_size: int = 256,
                           normalise: bool = True) -> np.ndarray:
    """(n, 4096): the second pooling layer's output of each image (channel, row, column order), quantile-normalised
    across the images (`quantile_normalise`) unless `normalise` is False."""
    x = torch.from_numpy(check_images(images)).unsqueeze(1)
    feats = torch.cat([model.eval().encode(x[i:i + batch_size], upto=2).flatten(1)
                       for i in range(0, len(x), batch_size)]).numpy()
    return quantile_normalise(feats) if normalise else feats


def quantile_normalise(features: np.ndarray) -> np.ndarray:
    """Quantile normalisation with each image (row) as a sample: every row's values replaced, rank for rank, by the
    mean over rows of the sorted values, so all images share one distribution and keep their own order (a run of tied
    values gets the mean of the reference over the ranks it spans: ReLU and pooling give many zeros)."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"quantile normalisation takes (images, features); got shape {x.shape}")
    reference = np.sort(x, axis=1).mean(axis=0)
    cumulative = np.concatenate([[0.0], np.cumsum(reference)])
    first = rankdata(x, method="min", axis=1).astype(int) - 1  # a run of ties spans ranks first .. last - 1
    last = rankdata(x, method="max", axis=1).astype(int)
    return (cumulative[last] - cumulative[first]) / (last - first)
