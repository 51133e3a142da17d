"""Imaging features against genomic factors (genes, programme scores): Liu & Hu 2023's linear mixed models with
Benjamini-Hochberg FDR (issue 13, notebook 08).

Each (feature, factor) pair is one model, feature ~ factor, both standardised, so the slope is on one scale for
every pair. With several rows (slices) per patient the model has a random intercept per patient
(statsmodels MixedLM, as the paper); with one row per patient the random intercept cannot be told from the residual
and the model is ordinary least squares, computed for all pairs at once from the correlation matrix (`ols`,
checked against statsmodels' OLS in the tests). q-values: Benjamini-Hochberg over every pair tested.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

COLUMNS = ("feature", "factor", "slope", "t", "p", "q", "n")


def _standardise(table: pd.DataFrame) -> pd.DataFrame:
    sd = table.std(ddof=1)
    return (table - table.mean()) / sd.where(sd > 0)


def fdr(p) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (statsmodels' multipletests, fdr_bh); NaN stays NaN."""
    from statsmodels.stats.multitest import multipletests
    p = np.asarray(p, float)
    q = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = multipletests(p[ok], method="fdr_bh")[1]
    return q


def ols(features: pd.DataFrame, factors: pd.DataFrame) -> pd.DataFrame:
    """One row per patient (index) in both: every feature ~ factor slope (standardised), t, two-sided p, for all
    pairs at once; q over all pairs. A constant column gives NaN."""
    common = features.index.intersection(factors.index)
    if len(common) < 4:
        raise ValueError(f"only {len(common)} patients have both imaging features and genomic factors")
    x, g = _standardise(features.loc[common].astype(float)), _standardise(factors.loc[common].astype(float))
    n = len(common)
    r = (x.fillna(0).T.to_numpy() @ g.fillna(0).to_numpy()) / (n - 1)  # features x factors correlations
    r[x.isna().all().to_numpy()] = np.nan
    r[:, g.isna().all().to_numpy()] = np.nan
    r = np.clip(r, -1.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = r * np.sqrt((n - 2) / (1 - r ** 2))
    p = 2 * stats.t.sf(np.abs(t), n - 2)
    out = pd.DataFrame({"feature": np.repeat(x.columns.astype(str), g.shape[1]),
                        "factor": np.tile(g.columns.astype(str), x.shape[1]),
                        "slope": r.ravel(), "t": t.ravel(), "p": p.ravel(), "n": n})
    out["q"] = fdr(out.p)
    return out[list(COLUMNS)]


def mixed(features: pd.DataFrame, patients, factors: pd.DataFrame) -> pd.DataFrame:
    """Several rows (slices) per patient: feature ~ factor + (1 | patient) for each pair (statsmodels MixedLM, REML),
    the factor taken from the patient's row of `factors`; Wald t and p of the slope, q over all pairs."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning
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
