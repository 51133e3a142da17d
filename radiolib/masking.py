"""From genes to imaging phenotypes, and gene masking (Smedley, Aberle & Hsu 2021, seeds/004; issue 13, notebook 09).

`GeneNet`: stacked dense layers with batch norm, tanh and dropout, from a patient's expression profile to several
binary imaging phenotypes at once (binarised radiomic features, receptor status); optionally its hidden layers start
from a gene autoencoder trained on the same training patients (`fit_gene_net(pretrain=True)`), never on test ones.

Gene masking reads which genes a fitted model relies on: on held-out patients, keep one gene set as measured and set
every other gene to its *training* mean, then score. A set that carries the phenotype keeps most of the full model's
AUC; random sets of the same size give the empirical null (`random_sets`). Keeping every gene is the full model;
keeping none gives every patient the same input, so chance.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn


def masked(x: pd.DataFrame, train_mean: pd.Series, keep: Sequence[str]) -> pd.DataFrame:
    """`x` with every gene not in `keep` set to its training mean (genes of `keep` missing from `x` are named)."""
    unknown = sorted(set(keep) - set(x.columns))
    if unknown:
        raise ValueError(f"gene set has genes the table does not: {unknown[:5]}")
    values = x.to_numpy(dtype=float, copy=True)
    others = ~x.columns.isin(pd.Index(keep))
    values[:, others] = train_mean[x.columns[others]].to_numpy(float)
    return pd.DataFrame(values, index=x.index, columns=x.columns)


def mask_scores(score: Callable[[pd.DataFrame], np.ndarray], x_test: pd.DataFrame, y_test, train_mean: pd.Series,
                gene_sets: Mapping[str, Sequence[str]]) -> pd.Series:
    """Test AUC of `score` (a fitted model's scores for a gene table) with each gene set kept and the rest masked;
    "all genes" (the full model) and "no genes" beside them."""
    from .evaluation import weighted_auc
    sets = {"all genes": list(x_test.columns), **{k: list(v) for k, v in gene_sets.items()}, "no genes": []}
    y = np.asarray(y_test, float)
    if len(np.unique(y)) < 2:
        raise ValueError("mask_scores: the test patients have a single class")
    ones = np.ones((1, len(y)))  # weighted_auc with unit weights: the AUC (ties 1/2), without scikit-learn's checks
    return pd.Series({name: float(weighted_auc(y, np.asarray(score(masked(x_test, train_mean, keep)), float), ones)[0])
                      for name, keep in sets.items()})


def random_sets(genes: Sequence[str], size: int, n: int, seed: int = 0) -> dict[str, list[str]]:
    """`n` random gene sets of `size` genes (the empirical null of a named set of that size)."""
    rng = np.random.default_rng(seed)
    genes = list(genes)
    return {f"random {i}": sorted(rng.choice(genes, size, replace=False).tolist()) for i in range(n)}


def null_percentile(observed: float, null: Sequence[float]) -> float:
    """Share of the random sets whose AUC is below `observed` (1.0: above every random set)."""
    null = np.asarray(null, float)
    return float((null < observed).mean())


class GeneNet(nn.Module):
    """Dense layers [linear, batch norm, tanh, dropout] x len(hidden), then one logit per phenotype."""

    def __init__(self, n_genes: int, n_outputs: int, hidden: Sequence[int] = (128, 32), dropout: float = 0.3):
        super().__init__()
        sizes = [n_genes, *hidden]
        self.hidden = nn.Sequential(*[nn.Sequential(nn.Linear(a, b), nn.BatchNorm1d(b), nn.Tanh(), nn.Dropout(dropout))
                                      for a, b in zip(sizes[:-1], sizes[1:])])
        self.out = nn.Linear(sizes[-1], n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(x))


@dataclass(frozen=True)
class GeneNetConfig:
    hidden: tuple[int, ...] = (128, 32)
    dropout: float = 0.3
    epochs: int = 150
    lr: float = 1e-3
    weight_decay: float = 1e-4
    pretrain: bool = False  # start the hidden layers from a gene autoencoder of the training patients
    pretrain_epochs: int = 100
    seed: int = 0


@dataclass
class FittedGeneNet:
    model: GeneNet
    mean: np.ndarray  # the training patients' gene means and SDs (the input standardisation)
    sd: np.ndarray
    outputs: list[str]

    @torch.no_grad()
    def predict(self, x: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Logits, patients x phenotypes."""
        z = (np.asarray(x, np.float32) - self.mean) / self.sd
        return self.model.eval()(torch.from_numpy(z.astype(np.float32))).numpy()


def _autoencoder_init(net: GeneNet, z: torch.Tensor, cfg: GeneNetConfig) -> None:
    """Train net.hidden as the encoder of an autoencoder (mirrored linear decoder, MSE) on `z`: the training genes."""
    decoder = nn.Linear(net.out.in_features, z.shape[1])
    opt = torch.optim.Adam([*net.hidden.parameters(), *decoder.parameters()], lr=cfg.lr)
    for _ in range(cfg.pretrain_epochs):
        net.train()
        loss = nn.functional.mse_loss(decoder(net.hidden(z)), z)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def fit_gene_net(x: pd.DataFrame, y: pd.DataFrame, cfg: GeneNetConfig = GeneNetConfig()) -> FittedGeneNet:
    """Fit on training patients only: `x` genes (patients x genes), `y` binary phenotypes (patients x outputs, 0/1)."""
    if len(x) != len(y):
        raise ValueError(f"{len(x)} gene profiles but {len(y)} phenotype rows")
    values = np.asarray(x, np.float32)
    mean, sd = values.mean(axis=0), values.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0).astype(np.float32)
    z = torch.from_numpy((values - mean) / sd)
    target = torch.from_numpy(np.asarray(y, np.float32))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        net = GeneNet(z.shape[1], target.shape[1], cfg.hidden, cfg.dropout)
        if cfg.pretrain:
            _autoencoder_init(net, z, cfg)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        for _ in range(cfg.epochs):  # full batch: a few hundred patients
            net.train()
            loss = nn.functional.binary_cross_entropy_with_logits(net(z), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return FittedGeneNet(net.eval(), mean, sd, [str(c) for c in getattr(y, "columns", range(target.shape[1]))])
