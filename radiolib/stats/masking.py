"""From genes to imaging phenotypes, and gene masking (Smedley, Aberle & Hsu 2021, seeds/004; issue 13, notebook 09).

`GeneNet`: stacked dense layers with batch norm, tanh and dropout, from a patient's expression profile to several
binary imaging phenotypes at once (binarised radiomic features, receptor status); optionally its hidden layers start
from a gene autoencoder trained on the same training patients (`fit_gene_net(pretrain=True)`), never on test ones.

Gene masking reads which genes a fitted model relies on: on held-out patients, keep one gene set as measured and set
every other gene to its *training* mean, then score. A set that carries the phenotype keeps most of the full model's
AUC; random sets of the same size give the empirical null. Keeping every gene is the full model; keeping none gives
every patient the same input, so chance.

The test (`masking_summary`): picking the best of several programmes on the held-out patients and comparing it with
single random sets of its size clears their 95th percentile far more often than 5% when no gene carries the
phenotype. So the best programme's AUC is compared with the maximum over one size-matched random set per programme,
in each of many replicates (a max statistic: the choice among programmes is in the null), and each programme with the
random sets of its size, Holm-adjusted over every programme and phenotype; p = (1 + null at or above) / (1 + null).
The smallest p is 1 / (1 + random sets): Holm over m tests reaches 0.05 only with 20 m random sets or more.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.stats import rankdata
from torch import nn

from .evaluation import holm


def _kept(columns: pd.Index, sets: Sequence[Sequence[str]]) -> np.ndarray:
    """Sets x genes: True where the set keeps the gene of `columns` (a set's genes missing from the table are named)."""
    where = {g: i for i, g in enumerate(columns)}
    out = np.zeros((len(sets), len(columns)), bool)
    for row, keep in zip(out, sets):
        unknown = sorted(set(keep) - where.keys())
        if unknown:
            raise ValueError(f"gene set has genes the table does not: {unknown[:5]}")
        row[[where[g] for g in keep]] = True
    return out


def masked(x: pd.DataFrame, train_mean: pd.Series, keep: Sequence[str]) -> pd.DataFrame:
    """`x` with every gene not in `keep` set to its training mean (genes of `keep` missing from `x` are named)."""
    values = np.where(_kept(x.columns, [keep])[0], x.to_numpy(dtype=float), train_mean[x.columns].to_numpy(float))
    return pd.DataFrame(values, index=x.index, columns=x.columns)


def aucs(y, scores: np.ndarray) -> np.ndarray:
    """AUC of each row of `scores` (score vectors x patients) for the 0/1 labels `y`, ties 1/2 (mid-ranks); nan if
    `y` has a single class."""
    y = np.asarray(y, float)
    scores = np.atleast_2d(np.asarray(scores, float))
    pos = y == 1
    n1, n0 = int(pos.sum()), int((y == 0).sum())
    if n1 == 0 or n0 == 0:
        return np.full(len(scores), np.nan)
    ranks = rankdata(scores, axis=1)
    return (ranks[:, pos].sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def mask_aucs(predict: Callable[[pd.DataFrame], np.ndarray], x_test: pd.DataFrame, y_test: pd.DataFrame,
              train_mean: pd.Series, gene_sets: Mapping[str, Sequence[str]], batch: int = 20_000) -> pd.DataFrame:
    """Gene sets x phenotypes: the test AUC of each phenotype (a 0/1 column of `y_test`) with one set kept and the
    other genes at their training mean. `predict` maps a gene table to patients x phenotypes scores (a fitted model);
    it is called on many masked copies of `x_test` stacked, about `batch` rows at a time. nan: a single class."""
    names = list(gene_sets)
    keep = _kept(x_test.columns, [gene_sets[k] for k in names])
    values, mean = x_test.to_numpy(float), train_mean[x_test.columns].to_numpy(float)
    n = len(x_test)
    per = max(1, batch // max(n, 1))
    scores = []
    for i in range(0, len(names), per):
        stacked = np.where(keep[i:i + per, None, :], values[None], mean).reshape(-1, values.shape[1])
        out = np.asarray(predict(pd.DataFrame(stacked, columns=x_test.columns)), float)
        scores.append(out.reshape(len(keep[i:i + per]), n, -1))
    scores = np.concatenate(scores) if scores else np.zeros((0, n, y_test.shape[1]))
    return pd.DataFrame({ph: aucs(y_test[ph], scores[:, :, j]) for j, ph in enumerate(y_test.columns)}, index=names)


def mask_scores(score: Callable[[pd.DataFrame], np.ndarray], x_test: pd.DataFrame, y_test, train_mean: pd.Series,
                gene_sets: Mapping[str, Sequence[str]]) -> pd.Series:
    """Test AUC of `score` (a fitted model's scores for a gene table) with each gene set kept and the rest masked;
    "all genes" (the full model) and "no genes" beside them."""
    sets = {"all genes": list(x_test.columns), **{k: list(v) for k, v in gene_sets.items()}, "no genes": []}
    y = pd.DataFrame({"y": np.asarray(y_test, float)})
    if y.y.nunique() < 2:
        raise ValueError("mask_scores: the test patients have a single class")
    table = mask_aucs(lambda t: np.asarray(score(t), float).reshape(-1, 1), x_test, y, train_mean, sets)
    return table.y.rename(None)


def random_sets(genes: Sequence[str], size: int, n: int, seed: int = 0) -> dict[str, list[str]]:
    """`n` random gene sets of `size` genes (the empirical null of a named set of that size)."""
    rng = np.random.default_rng(seed)
    genes = list(genes)
    return {f"random {i}": sorted(rng.choice(genes, size, replace=False).tolist()) for i in range(n)}


def matched_random_sets(genes: Sequence[str], sets: Mapping[str, Sequence[str]], n: int,
                        seed: int = 0) -> dict[str, dict[str, list[str]]]:
    """For each named set, `n` random sets of its size ("random 0", ...), drawn afresh for each: two programmes of one
    size get different random sets, so that each replicate of the max statistic has one random set per programme."""
    rng = np.random.default_rng(seed)
    genes = np.asarray(list(genes), dtype=object)
    return {name: {f"random {b}": sorted(genes[rng.choice(len(genes), len(members), replace=False)].tolist())
                   for b in range(n)} for name, members in sets.items()}


def null_percentile(observed: float, null: Sequence[float]) -> float:
    """Share of the random sets whose AUC is below `observed` (1.0: above every random set)."""
    null = np.asarray(null, float)
    return float((null < observed).mean())


def empirical_p(observed: float, null: Sequence[float]) -> float:
    """(1 + random sets at or above `observed`) / (1 + random sets): a p-value that is never 0."""
    null = np.asarray(null, float)
    return float((1 + (null >= observed).sum()) / (1 + len(null)))


def max_p(observed: pd.Series, null: pd.DataFrame) -> pd.Series:
    """Each programme's p with the choice among programmes accounted for (a single-step max statistic): its AUC against
    the maximum over one random set per programme, of that programme's size, in each replicate. `observed`: the
    programmes' AUCs; `null`: replicates (rows) x programmes. p = (1 + replicates whose maximum is at or above) /
    (1 + replicates); the best programme's is the phenotype's p."""
    largest = np.sort(null[observed.index].to_numpy(float).max(axis=1))
    above = len(largest) - np.searchsorted(largest, observed.to_numpy(float), side="left")
    return pd.Series((1 + above) / (1 + len(largest)), index=observed.index)


def masking_summary(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The test, from the fold-mean masking table (phenotype, gene set, kind: "programme", "all genes", "no genes" or
    "random, <size> genes", matched to: the programme a random set is sized for, AUC).

    Per programme: its AUC, the random sets of its size (95th percentile) and its p against them (`empirical_p`), its
    p with the choice among the phenotype's programmes accounted for (`max_p`), and Holm of the first over every
    programme and phenotype. Per phenotype: the best programme (highest AUC) and its AUC, all genes and no genes, the
    random sets of its size (95th percentile, share below: descriptive, not a test), the 95th percentile of the
    maximum over one random set per programme, the phenotype's p (the best programme's `max_p`) and Holm over the
    phenotypes."""
    random = table.kind.str.startswith("random")
    nulls = table[random].pivot(index=["phenotype", "gene set"], columns="matched to", values="AUC").sort_index()
    named = table[~random].set_index(["phenotype", "kind", "gene set"]).AUC.sort_index()
    order = list(dict.fromkeys(table.loc[table.kind == "programme", "gene set"]))  # the programmes as listed
    summary, rows = [], []
    for ph in table.phenotype.unique():
        progs = named.loc[ph, "programme"].reindex(order).dropna()
        null = nulls.loc[ph][progs.index]
        top = null.quantile(0.95)
        one = pd.DataFrame({"phenotype": ph, "programme": progs.index, "AUC": progs.round(4).to_numpy(),
                            "random sets' 95th pct": top.round(4).to_numpy(),
                            "p": [empirical_p(v, null[k]) for k, v in progs.items()],
                            "p (max over programmes)": max_p(progs, null).to_numpy()})
        best = progs.idxmax()
        summary.append({"phenotype": ph, "best programme": best, "its AUC": round(progs[best], 4),
                        "all genes": round(named.loc[ph, "all genes", "all genes"], 4),
                        "no genes": round(named.loc[ph, "no genes", "no genes"], 4),
                        "random sets' 95th pct": round(float(top[best]), 4),
                        "share of random sets below": null_percentile(progs[best], null[best]),
                        "random sets' max, 95th pct": round(float(null.max(axis=1).quantile(0.95)), 4),
                        "p (max over programmes)": float(one["p (max over programmes)"].min()),
                        "random sets": len(null)})
        rows.append(one)
    summary, programmes = pd.DataFrame(summary), pd.concat(rows, ignore_index=True)
    summary["p (max, Holm over phenotypes)"] = holm(summary["p (max over programmes)"])
    programmes["p (Holm)"] = holm(programmes.p)
    return summary, programmes


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
