"""Imaging features against genomic factors (genes, programme scores): Liu & Hu 2023's linear mixed models with
Benjamini-Hochberg FDR (issue 13, notebook 08).

Each (feature, factor) pair is one model, feature ~ factor, both standardised, so the slope is on one scale for
every pair. With several rows (slices) per patient the model has a random intercept per patient
(statsmodels MixedLM, as the paper); with one row per patient the random intercept cannot be told from the residual
and the model is ordinary least squares, computed for all pairs at once from the correlation matrix (`ols`,
checked against statsmodels' OLS in the tests). q-values: Benjamini-Hochberg over every pair tested.

The null (`permutation_null`, `null_summary`): the factor rows permuted among the patients many times, each
permutation one matrix product on the once-standardised tables; the counts of associated pairs under it (median,
95th percentile) and the permutation p of the observed count. With thousands of correlated features one permutation's
count is too noisy to read an observed count against.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.tools.sm_exceptions import ConvergenceWarning

COLUMNS = ("feature", "factor", "slope", "t", "p", "q", "n")


def _standardise(table: pd.DataFrame) -> pd.DataFrame:
    sd = table.std(ddof=1)
    return (table - table.mean()) / sd.where(sd > 0)


def fdr(p) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (statsmodels' multipletests, fdr_bh); NaN stays NaN."""
    p = np.asarray(p, float)
    q = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = multipletests(p[ok], method="fdr_bh")[1]
    return q


def _prepared(features: pd.DataFrame, factors: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both tables on the patients they share, standardised (a constant column all NaN)."""
    common = features.index.intersection(factors.index)
    if len(common) < 4:
        raise ValueError(f"only {len(common)} patients have both imaging features and genomic factors")
    return _standardise(features.loc[common].astype(float)), _standardise(factors.loc[common].astype(float))


def _correlations(x: pd.DataFrame, g: np.ndarray) -> np.ndarray:
    """Features x factors correlations of standardised `x` with the standardised factor rows `g` (NaN: 0, the mean;
    a constant column gives NaN)."""
    n = len(x)
    r = (x.fillna(0).T.to_numpy() @ np.nan_to_num(g)) / (n - 1)
    r[x.isna().all().to_numpy()] = np.nan
    r[:, np.isnan(g).all(axis=0)] = np.nan
    return np.clip(r, -1.0, 1.0)


def _t_p(r: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The OLS slope's t and two-sided p of a correlation `r` over `n` patients."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = r * np.sqrt((n - 2) / (1 - r ** 2))
    return t, 2 * stats.t.sf(np.abs(t), n - 2)


def ols(features: pd.DataFrame, factors: pd.DataFrame) -> pd.DataFrame:
    """One row per patient (index) in both: every feature ~ factor slope (standardised), t, two-sided p, for all
    pairs at once; q over all pairs. A constant column gives NaN."""
    x, g = _prepared(features, factors)
    n = len(x)
    r = _correlations(x, g.to_numpy())
    t, p = _t_p(r, n)
    out = pd.DataFrame({"feature": np.repeat(x.columns.astype(str), g.shape[1]),
                        "factor": np.tile(g.columns.astype(str), x.shape[1]),
                        "slope": r.ravel(), "t": t.ravel(), "p": p.ravel(), "n": n})
    out["q"] = fdr(out.p)
    return out[list(COLUMNS)]


def _pair_counts(r: np.ndarray, n: int, alpha: float) -> tuple[int, int]:
    """(pairs at FDR alpha, pairs at nominal p < alpha) of correlations `r` over `n` patients: (fdr(p) < alpha).sum()
    and (p < alpha).sum() as `ols` would give, with p computed only where |r| could reach p < alpha (no pair above
    alpha is FDR-significant), the Benjamini-Hochberg count being the largest rank j with p_(j) < j alpha / m."""
    t_crit = stats.t.isf(alpha / 2, n - 2)
    r_crit = t_crit / np.sqrt(n - 2 + t_crit ** 2) * (1 - 1e-9)
    with np.errstate(invalid="ignore"):
        strong = r[np.abs(r) >= r_crit]  # (NaN: a constant column, never)
    _, p = _t_p(strong, n)
    p = np.sort(p[p < alpha])
    m = int(np.isfinite(r).sum())
    below = np.flatnonzero(p < alpha * np.arange(1, len(p) + 1) / m)
    return (int(below[-1]) + 1 if len(below) else 0), len(p)


def permutation_null(features: pd.DataFrame, factors: pd.DataFrame, permutations: int = 20, alpha: float = 0.05,
                     seed: int = 0) -> pd.DataFrame:
    """The factor rows dealt to the patients in `permutations` random orders (np.random.default_rng(seed)'s
    successive permutations; the gene-image link broken, everything else kept): per permutation, the pairs at FDR
    `alpha` (BH over all pairs, as `ols`) and at nominal p < alpha. The standardisation is done once; each
    permutation is one matrix product, and p is computed only for the pairs that could reach alpha."""
    x, g = _prepared(features, factors)
    g = g.to_numpy()
    rng = np.random.default_rng(seed)
    counts = [_pair_counts(_correlations(x, g[rng.permutation(len(x))]), len(x), alpha) for _ in range(permutations)]
    return pd.DataFrame(counts, columns=["significant", "nominal p < alpha"]).rename_axis("permutation")


def null_summary(table: pd.DataFrame, null: pd.DataFrame, alpha: float = 0.05) -> dict:
    """The observed counts of `table` (an `ols` table) beside their permutation null (`permutation_null`): per count
    (FDR-significant pairs, nominal p < alpha), the null's mean (under the count's own name), median and 95th
    percentile, and the permutation p of the observed count, (1 + permutations counting at least as many) /
    (1 + permutations), valid at any number of permutations."""
    observed = {"significant": int((table.q < alpha).sum()), "nominal p < alpha": int((table.p < alpha).sum())}
    out = {"pairs": int(len(table)), "permutations": int(len(null))}
    for count, seen in observed.items():
        draws = null[count]
        out |= {f"observed {count}": seen, count: float(draws.mean()), f"{count} median": float(draws.median()),
                f"{count} 95th pct": float(draws.quantile(0.95)),
                f"permutation p ({count})": float((1 + (draws >= seen).sum()) / (1 + len(draws)))}
    return out


def mixed(features: pd.DataFrame, patients, factors: pd.DataFrame) -> pd.DataFrame:
    """Several rows (slices) per patient: feature ~ factor + (1 | patient) for each pair (statsmodels MixedLM, REML),
    the factor taken from the patient's row of `factors`; Wald t and p of the slope, q over all pairs."""
    patients = pd.Index(np.asarray(patients).astype(str))
    factors = factors.copy()
    factors.index = factors.index.map(str)
    keep = patients.isin(factors.index)
    if keep.sum() < 4:
        raise ValueError("fewer than 4 imaging rows belong to a patient with genomic factors")
    x = _standardise(features.loc[keep].astype(float).reset_index(drop=True))
    groups = patients[keep]
    g = _standardise(factors.loc[groups.unique()].astype(float)).loc[groups].reset_index(drop=True)
    rows = []
    for f in x.columns:
        for k in g.columns:
            design = sm.add_constant(g[[k]].to_numpy(), has_constant="add")
            with warnings.catch_warnings():  # a random-intercept variance at 0 (a boundary fit) is not an error
                warnings.simplefilter("ignore", ConvergenceWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                warnings.simplefilter("ignore", UserWarning)
                fit = sm.MixedLM(x[f].to_numpy(), design, groups=groups.to_numpy()).fit(reml=True)
                rows.append({"feature": str(f), "factor": str(k), "slope": float(fit.fe_params[1]),
                             "t": float(fit.tvalues[1]), "p": float(fit.pvalues[1]), "n": int(groups.nunique())})
    out = pd.DataFrame(rows)
    out["q"] = fdr(out.p)
    return out[list(COLUMNS)]


def associations(features: pd.DataFrame, factors: pd.DataFrame, patients=None) -> pd.DataFrame:
    """`mixed` when `patients` (one per feature row) repeats a patient, else `ols` on one row per patient."""
    if patients is None:
        return ols(features, factors)
    patients = pd.Index(np.asarray(patients).astype(str))
    if not patients.has_duplicates:
        return ols(features.set_axis(patients), factors.set_axis(factors.index.map(str)))
    return mixed(features, patients, factors)


def counts(table: pd.DataFrame, alpha: float = 0.05) -> pd.Series:
    """Per factor: the features associated at FDR `alpha`."""
    return table[table.q < alpha].groupby("factor").size().reindex(table.factor.unique(), fill_value=0)
