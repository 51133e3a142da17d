"""The paper's evaluation protocol: patient-level stratified 10-fold CV repeated 5 times, AUC, bootstrap CI, DeLong.

Zhu et al. 2019, "Evaluation": folds stratified by class at patient level, AUC per fold averaged over folds,
the 10-fold CV run 5 times and the median run reported, 95% CI by bootstrap. numpy/pandas/scipy/sklearn/joblib only;
labels and scores given as two pandas Series are aligned by patient, anything else positionally.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy import stats
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from ..core.frontend import tqdm

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------------------------
# Folds and patient scores


VERSION = 3  # bump when a CVResult changes meaning, so cached cross-validations are not reused

def patient_folds(
    patients: Sequence[str], labels: Sequence[int], n_folds: int = 10, repeats: int = 5, seed: int = 0
) -> list[dict]:
    """Repeated stratified k-fold at patient level: one dict per (repeat, fold) with sorted train/test patients.

    Patients are sorted first, so the folds depend only on the (patient, label) pairs and the seed, not on the
    input order. Each dict also carries `train_labels` / `test_labels`, aligned with the patient lists.
    """
    patients = [str(p) for p in patients]
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(patients):
        raise ValueError(f"patient_folds: {len(patients)} patients but labels of shape {labels.shape}")
    if n_folds < 2 or repeats < 1:
        raise ValueError(f"patient_folds: need n_folds >= 2 and repeats >= 1, got {n_folds=} {repeats=}")
    _check_unique(patients, "patient_folds")
    if labels.dtype.kind not in "biu":
        raise ValueError(f"patient_folds: labels must be integers or booleans, got dtype {labels.dtype}")
    labels = labels.astype(int)

    classes, counts = np.unique(labels, return_counts=True)
    per_class = {int(c): int(k) for c, k in zip(classes, counts, strict=True)}
    too_small = [c for c, k in per_class.items() if k < n_folds]
    if too_small:
        c = too_small[0]
        raise ValueError(
            f"patient_folds: class {c} has only {per_class[c]} patients, fewer than n_folds={n_folds}; "
            f"patients per class: {per_class}"
        )

    order = np.argsort(patients, kind="stable")
    pats = np.asarray(patients, dtype=object)[order]
    labs = labels[order]
    # One independent, reproducible shuffle per repeat derived from the single seed.
    repeat_seeds = np.random.SeedSequence(seed).generate_state(repeats)
    folds = []
    for r, rseed in enumerate(repeat_seeds):
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=int(rseed))
        for f, (tr, te) in enumerate(splitter.split(np.zeros(len(pats)), labs)):
            tr, te = np.sort(tr), np.sort(te)  # pats is sorted, so sorted positions give sorted ids
            folds.append({
                "repeat": r,
                "fold": f,
                "train_patients": pats[tr].tolist(),
                "test_patients": pats[te].tolist(),
                "train_labels": labs[tr].tolist(),
                "test_labels": labs[te].tolist(),
            })
    return folds


def patient_scores(patients: Sequence[str], scores: Sequence[float]) -> pd.Series:
    """Mean score per patient (paper: patient score = mean over its 25 test patches); index sorted, named 'patient'."""
    patients = pd.Index([str(p) for p in patients], name="patient")
    scores = np.asarray(scores, dtype=float)
    if scores.shape != (len(patients),):
        raise ValueError(f"patient_scores: {len(patients)} patients but scores of shape {scores.shape}")
    bad = sorted(set(patients[~np.isfinite(scores)]))
    if bad:
        raise ValueError(f"patient_scores: non-finite patch scores for patients {bad[:10]}")
    return pd.Series(scores, index=patients, name="score").groupby(level=0).mean().sort_index()


# ---------------------------------------------------------------------------------------------------------------
# AUC, bootstrap CI, DeLong


def _binary_arrays(y, *scores, where: str = "auc") -> tuple[np.ndarray, ...]:
    """Labels and score vectors as float arrays; pandas Series are aligned on the labels' index."""
    if isinstance(y, pd.Series) and all(isinstance(s, pd.Series) for s in scores):
        aligned = []
        for s in scores:
            missing = y.index.difference(s.index)
            if len(missing):
                raise ValueError(f"{where}: no score for patients {list(missing[:10])}")
            aligned.append(s.reindex(y.index))
        scores = aligned
    yv = np.asarray(y)
    if yv.ndim != 1:
        raise ValueError(f"{where}: labels must be 1-D, got shape {yv.shape}")
    if not np.isin(yv, (0, 1)).all():
        raise ValueError(f"{where}: labels must be 0/1, got values {sorted(set(yv.tolist()))[:10]}")
    out = [yv.astype(float)]
    for s in scores:
        sv = np.asarray(s, dtype=float)
        if sv.shape != yv.shape:
            raise ValueError(f"{where}: {len(yv)} labels but scores of shape {sv.shape}")
        bad = np.flatnonzero(~np.isfinite(sv))
        if len(bad):
            names = list(s.index[bad[:10]]) if isinstance(s, pd.Series) else bad[:10].tolist()
            raise ValueError(f"{where}: non-finite scores at {names}")
        out.append(sv)
    return tuple(out)


def auc(y, s) -> float:
    """ROC AUC of scores `s` for 0/1 labels `y` (scikit-learn); nan when only one class is present."""
    yv, sv = _binary_arrays(y, s, where="auc")
    if len(np.unique(yv)) < 2:
        return float("nan")
    return float(roc_auc_score(yv, sv))


def weighted_auc(y, s, weights: np.ndarray) -> np.ndarray:
    """AUC for each row of integer case weights (shape (B, n)), ties counted 1/2; nan where a class has weight 0.

    With weights = bootstrap draw counts this is the AUC of each resample, in O(B*n) numpy and no Python loop.
    """
    yv, sv = _binary_arrays(y, s, where="weighted_auc")
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    if w.shape[1] != len(yv):
        raise ValueError(f"weighted_auc: weights have {w.shape[1]} columns for {len(yv)} cases")
    levels, inverse = np.unique(sv, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[order], np.arange(len(levels)))
    # Weight of positives and negatives at each distinct score level, per row.
    pos = np.add.reduceat(w[:, order] * yv[order], starts, axis=1)
    neg = np.add.reduceat(w[:, order] * (1.0 - yv[order]), starts, axis=1)
    neg_below = np.cumsum(neg, axis=1) - neg
    num = (pos * (neg_below + 0.5 * neg)).sum(axis=1)
    den = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def bootstrap_aucs(y, s, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """AUCs of `n_boot` patient resamples (with replacement); resamples with a single class are skipped, not redrawn.

    Returns only the valid AUCs, so the result may hold fewer than `n_boot` values for tiny or very unbalanced data.
    """
    yv, sv = _binary_arrays(y, s, where="bootstrap_aucs")
    n = len(yv)
    if n == 0:
        return np.empty(0)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(n_boot, n))
    counts = np.bincount((draws + n * np.arange(n_boot)[:, None]).ravel(), minlength=n_boot * n)
    aucs = weighted_auc(yv, sv, counts.reshape(n_boot, n))
    return aucs[np.isfinite(aucs)]


def fold_mean_bootstrap_ci(per_fold: list[tuple], n_boot: int = 1000, seed: int = 0,
                           alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap CI of the fold-averaged AUC (the statistic the paper reports).

    Each resample draws every fold's test patients with replacement and averages the folds' AUCs, so the interval
    surrounds the reported mean-of-folds AUC; resamples where a fold has a single class are skipped.
    """
    rng = np.random.default_rng(seed)
    aucs = []
    for y, s in per_fold:
        yv, sv = _binary_arrays(y, s, where="fold_mean_bootstrap_ci")
        n = len(yv)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot) if n else np.zeros((n_boot, 0))
        aucs.append(weighted_auc(yv, sv, counts) if n else np.full(n_boot, np.nan))
    means = np.stack(aucs, axis=1)
    means = means[np.isfinite(means).all(axis=1)].mean(axis=1)
    if len(means) == 0:
        return (float("nan"), float("nan"))
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return (float(low), float(high))


def fold_mean_auc(per_fold: Sequence[tuple]) -> float:
    """Mean over folds of the per-fold test AUCs (folds with a single class left out): what the tables report."""
    aucs = [auc(y, s) for y, s in per_fold]
    aucs = [a for a in aucs if np.isfinite(a)]
    return float(np.mean(aucs)) if aucs else float("nan")


def _fold_arrays(per_fold: Sequence[tuple], where: str) -> list[tuple[pd.Index, np.ndarray, np.ndarray]]:
    """(patients, labels, scores) of each fold, the patients from the score Series' index."""
    out = []
    for y, s in per_fold:
        if not (isinstance(y, pd.Series) and isinstance(s, pd.Series)):
            raise TypeError(f"{where}: give each fold as (labels, scores) pandas Series indexed by patient")
        yv, sv = _binary_arrays(y, s, where=where)
        out.append((pd.Index(y.index.map(str)), yv, sv))
    return out


def _resample_weights(strata: list[np.ndarray], n_patients: int, n_boot: int,
                      rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n_patients) draw counts: each stratum's patients resampled with replacement within the stratum."""
    w = np.zeros((n_boot, n_patients))
    for members in strata:
        k = len(members)
        if k:
            w[:, members] = rng.multinomial(k, np.full(k, 1.0 / k), size=n_boot)
    return w


def paired_fold_mean_bootstrap(per_fold_a: Sequence[tuple], per_fold_b: Sequence[tuple], n_boot: int = 1000,
                               seed: int = 0, alpha: float = 0.05) -> dict:
    """Paired bootstrap test of the difference of two fold-mean AUCs (the statistic the tables report).

    `per_fold_a` / `per_fold_b`: (labels, scores) Series per test fold of each row, indexed by patient, scored out of
    fold. Every resample draws patients with replacement -- within each test fold when both rows share the same
    folds, else over the whole cohort -- and applies the SAME draw counts to both rows: each row's fold AUCs are
    recomputed with those weights and averaged, and the difference of the two fold means is kept. Resamples where
    a fold of either row has a single class are dropped. Returns auc_a, auc_b (the fold means as in the tables),
    diff = auc_a - auc_b, ci95 (percentile CI of the difference), p (two-sided: the share of null-centred
    differences at least as large as the observed one, (1 + count) / (1 + resamples)) and n_boot (valid resamples).
    """
    fa = _fold_arrays(per_fold_a, "paired_fold_mean_bootstrap")
    fb = _fold_arrays(per_fold_b, "paired_fold_mean_bootstrap")
    patients = sorted({p for pats, _, _ in fa + fb for p in pats})
    pos = {p: i for i, p in enumerate(patients)}
    same = sorted(map(tuple, (sorted(f[0]) for f in fa))) == sorted(map(tuple, (sorted(f[0]) for f in fb)))
    strata = ([np.array([pos[p] for p in pats]) for pats, _, _ in fa] if same
              else [np.arange(len(patients))])
    w = _resample_weights(strata, len(patients), n_boot, np.random.default_rng(seed))

    def fold_means(folds):
        cols = [weighted_auc(yv, sv, w[:, [pos[p] for p in pats]]) for pats, yv, sv in folds]
        return np.stack(cols, axis=1).mean(axis=1)  # nan when any fold of the resample has one class

    ma, mb = fold_means(fa), fold_means(fb)
    ok = np.isfinite(ma) & np.isfinite(mb)
    d = (ma - mb)[ok]
    a, b = fold_mean_auc(per_fold_a), fold_mean_auc(per_fold_b)
    diff = a - b
    if len(d) == 0:
        return {"auc_a": a, "auc_b": b, "diff": diff, "ci95": (float("nan"), float("nan")), "p": float("nan"),
                "n_boot": 0, "strata": "folds" if same else "cohort"}
    low, high = np.quantile(d, [alpha / 2, 1 - alpha / 2])
    extreme = np.abs(d - diff) >= abs(diff) - 1e-12
    p = float((1 + extreme.sum()) / (1 + len(d)))
    return {"auc_a": a, "auc_b": b, "diff": float(diff), "ci95": (float(low), float(high)), "p": min(1.0, p),
            "n_boot": int(len(d)), "strata": "folds" if same else "cohort"}


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of several p-values (family-wise error); nan p-values stay nan, others in [0, 1]."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = len(idx)
    running = 0.0
    for rank, i in enumerate(idx[np.argsort(p[idx], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def bootstrap_ci(y, s, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap (1 - alpha) CI of the AUC over patients; single-class resamples are skipped (not redrawn).

    Returns (nan, nan) when no resample has both classes.
    """
    aucs = bootstrap_aucs(y, s, n_boot=n_boot, seed=seed)
    if len(aucs) == 0:
        return (float("nan"), float("nan"))
    low, high = np.quantile(aucs, [alpha / 2, 1 - alpha / 2])
    return (float(low), float(high))


def _delong_components(yv: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs (k,) and DeLong covariance parts S10, S01 (k, k) for k score rows, via midranks (Sun & Xu 2014)."""
    pos, neg = yv == 1, yv == 0
    m, n = int(pos.sum()), int(neg.sum())
    if m < 2 or n < 2:
        raise ValueError(f"DeLong needs at least 2 positives and 2 negatives, got {m} and {n}")
    x, z = scores[:, pos], scores[:, neg]
    tx = stats.rankdata(x, axis=1)  # midranks within positives
    tz = stats.rankdata(z, axis=1)  # midranks within negatives
    t = stats.rankdata(scores, axis=1)  # midranks among all
    aucs = (t[:, pos].sum(axis=1) - m * (m + 1) / 2) / (m * n)
    v10 = (t[:, pos] - tx) / n  # per positive: fraction of negatives it beats (ties 1/2)
    v01 = 1.0 - (t[:, neg] - tz) / m  # per negative: fraction of positives that beat it
    s10 = np.atleast_2d(np.cov(v10))
    s01 = np.atleast_2d(np.cov(v01))
    return aucs, s10 / m, s01 / n


def delong_variance(y, s) -> float:
    """DeLong variance of a single AUC (unit: AUC^2)."""
    yv, sv = _binary_arrays(y, s, where="delong_variance")
    _, s10, s01 = _delong_components(yv, sv[None, :])
    return float(s10[0, 0] + s01[0, 0])


def delong_ci(y, s, alpha: float = 0.05) -> tuple[float, float]:
    """Normal-approximation (1 - alpha) CI of one AUC from its DeLong standard error, clipped to [0, 1]."""
    a = auc(y, s)
    se = np.sqrt(delong_variance(y, s))
    half = stats.norm.ppf(1 - alpha / 2) * se
    return (float(max(0.0, a - half)), float(min(1.0, a + half)))


def delong(y, s1, s2) -> dict:
    """DeLong's test that two correlated AUCs on the same patients are equal: auc1, auc2, diff = auc1 - auc2, se, z, p.

    Two-sided p from the normal distribution; identical scores give diff 0, z 0, p 1.
    """
    yv, a, b = _binary_arrays(y, s1, s2, where="delong")
    aucs, s10, s01 = _delong_components(yv, np.vstack([a, b]))
    cov = s10 + s01
    var = max(float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]), 0.0)
    diff = float(aucs[0] - aucs[1])
    se = float(np.sqrt(var))
    if se > 0:
        z = diff / se
    else:  # no variance in the difference: equal AUCs are p = 1, unequal ones are certain
        z = 0.0 if diff == 0 else float(np.sign(diff) * np.inf)
    p = float(2 * stats.norm.sf(abs(z)))
    return {"auc1": float(aucs[0]), "auc2": float(aucs[1]), "diff": diff, "se": se, "z": float(z), "p": p}


# ---------------------------------------------------------------------------------------------------------------
# Cross-validation


@dataclass
class FoldOutput:
    """What a fit_predict returns for one fold: patient -> score on train and test patients, optional curves, and
    optional `record` keys added to the fold's record (e.g. `pretraining_patients`, never a key it already has)."""

    train_scores: pd.Series | None
    test_scores: pd.Series
    curves: dict | None = None
    record: dict | None = None


@dataclass
class CVResult:
    """Outcome of a repeated CV run, summarised the paper's way (median repeat of the fold-averaged test AUC).

    `folds`: one dict per fold (repeat, fold, train_patients, test_patients, auc, train_auc);
    `repeat_aucs` / `repeat_train_aucs`: mean over folds per repeat (repeats in ascending order);
    `train_auc`, `test_auc`: fold means of the median repeat; `ci95`: bootstrap CI of that fold-mean AUC;
    `oof_scores` / `oof_labels`: patient -> out-of-fold score / label of that repeat;
    `curves`: the per-fold curves returned by fit_predict, aligned with `folds`;
    `tied_folds`: names ("repeat r fold f") of folds whose test scores are all equal (their AUC, 0.5, means nothing).
    """

    folds: list[dict]
    repeat_aucs: list[float]
    repeat_train_aucs: list[float]
    median_repeat: int
    train_auc: float
    test_auc: float
    ci95: tuple[float, float]
    oof_scores: pd.Series
    oof_labels: pd.Series
    curves: list = field(default_factory=list)
    tied_folds: list[str] = field(default_factory=list)

    def fold_table(self) -> pd.DataFrame:
        """One row per fold: repeat, fold, patient counts, test and train AUC."""
        return pd.DataFrame([
            {"repeat": f["repeat"], "fold": f["fold"], "n_train": len(f["train_patients"]),
             "n_test": len(f["test_patients"]), "auc": f["auc"], "train_auc": f["train_auc"]}
            for f in self.folds
        ])


def _fold_name(fold: Mapping) -> str:
    return f"repeat {fold.get('repeat', '?')} fold {fold.get('fold', '?')}"


def _iter_folds(obj, context: str = ""):
    """Yield (context, fold dict) from fold dicts, result rows with a 'folds' list, a results dict, or a CVResult."""
    if isinstance(obj, CVResult):
        obj = obj.folds
    if isinstance(obj, Mapping):
        if "train_patients" in obj:
            yield context, obj
            return
        if "folds" in obj:
            label = " ".join(str(obj[k]) for k in ("approach", "network", "source", "layer") if obj.get(k))
            for fold in obj["folds"] or []:
                yield f"{label}: " if label else context, fold
            return
        if "rows" in obj:
            obj = obj["rows"]
        else:
            raise ValueError(f"check_no_leakage: a dict without train_patients, folds or rows: keys {list(obj)}")
    for item in obj:
        yield from _iter_folds(item, context)


def check_no_leakage(folds_or_results_rows) -> None:
    """Raise ValueError naming the fold and patients if any fold has a patient in both train and test, or a test
    patient among the patients its network was pretrained on (`pretraining_patients`, in-cohort pretraining)."""
    for context, fold in _iter_folds(folds_or_results_rows):
        test = set(map(str, fold["test_patients"]))
        both = sorted(set(map(str, fold["train_patients"])) & test)
        if both:
            raise ValueError(
                f"leakage in {context}{_fold_name(fold)}: {len(both)} patients in both train and test: {both[:10]}"
            )
        seen = sorted(set(map(str, fold.get("pretraining_patients") or [])) & test)
        if seen:
            raise ValueError(f"leakage in {context}{_fold_name(fold)}: {len(seen)} test patients in the fold's "
                             f"pretraining: {seen[:10]}")


def _as_scores(obj, what: str, fold: Mapping) -> pd.Series | None:
    if obj is None:
        return None
    s = obj if isinstance(obj, pd.Series) else pd.Series(obj, dtype=float)
    s = s.astype(float)
    s.index = s.index.map(str)
    if s.index.has_duplicates:
        dup = sorted(set(s.index[s.index.duplicated()]))
        raise ValueError(f"{_fold_name(fold)}: duplicate patients in {what}: {dup[:10]}")
    return s


def _run_fold(fit_predict: Callable, fold: dict) -> FoldOutput:
    """Call fit_predict on one fold, naming the fold if it fails (the message survives worker processes)."""
    try:
        out = fit_predict(fold)
    except Exception as exc:
        raise RuntimeError(f"fit_predict failed on {_fold_name(fold)}: {type(exc).__name__}: {exc}") from exc
    if isinstance(out, Mapping) and "test_scores" in out:
        out = FoldOutput(out.get("train_scores"), out["test_scores"], out.get("curves"), out.get("record"))
    if not isinstance(out, FoldOutput):
        raise TypeError(f"fit_predict returned {type(out).__name__} on {_fold_name(fold)}; expected a FoldOutput "
                        "or a dict with test_scores (and train_scores, curves)")
    return out


def _fold_labels(fold: Mapping, labels: pd.Series | None) -> pd.Series:
    """Patient -> label for the fold's patients, from the fold dict itself or the `labels` mapping."""
    if labels is not None:
        return labels
    if "train_labels" not in fold or "test_labels" not in fold:
        raise ValueError(f"{_fold_name(fold)} has no train_labels/test_labels; pass labels= to cross_validate")
    return pd.Series(
        list(fold["train_labels"]) + list(fold["test_labels"]),
        index=[str(p) for p in fold["train_patients"]] + [str(p) for p in fold["test_patients"]],
    )


def _labels_for(lab: pd.Series, patients: pd.Index, fold: Mapping) -> pd.Series:
    missing = patients.difference(lab.index)
    if len(missing):
        raise ValueError(f"{_fold_name(fold)}: no label for patients {list(missing[:10])}")
    return lab.reindex(patients)


def _lower_median_repeat(repeat_ids: list[int], repeat_aucs: list[float]) -> int:
    """Repeat whose mean test AUC is the median; for an even count the lower of the two middle ones."""
    order = sorted(range(len(repeat_ids)), key=lambda i: (np.nan_to_num(repeat_aucs[i], nan=-np.inf), repeat_ids[i]))
    return repeat_ids[order[(len(order) - 1) // 2]]


def cross_validate(
    folds: Sequence[dict],
    fit_predict: Callable[[dict], FoldOutput | dict],
    n_jobs: int = 1,
    progress: bool = True,
    desc: str | None = None,
    *,
    labels: Mapping | pd.Series | None = None,
    n_boot: int = 1000,
    ci_seed: int = 0,
) -> CVResult:
    """Run `fit_predict(fold) -> FoldOutput` on every fold with joblib and summarise as the paper does.

    Folds run through joblib.Parallel(n_jobs), in-process for n_jobs=1; under `joblib.parallel_config(backend="dask")`
    (or ray) they are distributed without code changes, over all the cluster's cores whatever n_jobs (the Dask
    backend ignores it; tests/test_cluster.py). Labels come from the
    folds' train_labels/test_labels (patient_folds) or `labels`.
    The median repeat is the lower median for an even number of repeats. `test_auc` is the fold-mean AUC, as in the
    paper, and `ci95` a bootstrap over patients of that same statistic (each fold's test patients resampled).
    """
    folds = list(folds)
    if not folds:
        raise ValueError("cross_validate: no folds")
    check_no_leakage(folds)
    if labels is not None:
        labels = pd.Series(labels)
        labels.index = labels.index.map(str)

    runner = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(_run_fold)(fit_predict, f) for f in folds)
    outputs = []
    with _progress_bar(len(folds), desc, progress) as bar, warnings.catch_warnings():
        # loky restarts idle workers between calls and says so; the results are unaffected
        warnings.filterwarnings("ignore", message="A worker stopped while some jobs were given")
        for out in runner:
            outputs.append(out)
            bar.update(1)

    rows, curves, tied = [], [], []
    oof_by_repeat: dict[int, list[tuple[pd.Series, pd.Series]]] = {}
    for fold, out in zip(folds, outputs, strict=True):
        lab = _fold_labels(fold, labels)
        test_patients = pd.Index([str(p) for p in fold["test_patients"]])
        train_patients = set(map(str, fold["train_patients"]))
        test = _as_scores(out.test_scores, "test_scores", fold)
        if set(test.index) != set(test_patients):
            missing = sorted(set(test_patients) - set(test.index))
            extra = sorted(set(test.index) - set(test_patients))
            raise ValueError(f"{_fold_name(fold)}: test_scores must cover exactly the test patients; "
                             f"missing {missing[:10]}, not in the test set {extra[:10]}")
        test = test.reindex(test_patients)
        y_test = _labels_for(lab, test_patients, fold)
        train = _as_scores(out.train_scores, "train_scores", fold)
        train_auc = float("nan")
        if train is not None and len(train):
            leaked = sorted(set(train.index) - train_patients)
            if leaked:
                raise ValueError(
                    f"{_fold_name(fold)}: train_scores has patients outside the training set: {leaked[:10]}"
                )
            train_auc = auc(_labels_for(lab, train.index, fold), train)
        fold_auc = auc(y_test, test)
        if len(test) > 1 and np.ptp(test.to_numpy()) == 0:
            tied.append(_fold_name(fold))
            # logged (info), not warned: a cached run would not repeat it; the row flags it and notebooks print it
            log.info(f"{_fold_name(fold)}: all {len(test)} test scores are tied (AUC {fold_auc:.2f} by "
                        "construction); flagged in tied_folds")
        if np.isnan(fold_auc):
            msg = f"{_fold_name(fold)}: test AUC undefined (one class only); left out of the fold mean"
            warnings.warn(msg, stacklevel=2)
        row = {"repeat": int(fold["repeat"]), "fold": int(fold["fold"]),
               "train_patients": [str(p) for p in fold["train_patients"]],
               "test_patients": test_patients.tolist(), "auc": fold_auc, "train_auc": train_auc}
        row.update({k: v for k, v in (out.record or {}).items() if k not in row})
        check_no_leakage(row)
        rows.append(row)
        curves.append(out.curves)
        oof_by_repeat.setdefault(int(fold["repeat"]), []).append((test, y_test))

    repeat_ids = sorted(oof_by_repeat)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan slices give nan, which is what we want
        repeat_aucs = [float(np.nanmean([r["auc"] for r in rows if r["repeat"] == k])) for k in repeat_ids]
        repeat_train = [float(np.nanmean([r["train_auc"] for r in rows if r["repeat"] == k])) for k in repeat_ids]
    med = _lower_median_repeat(repeat_ids, repeat_aucs)
    oof_scores = pd.concat([s for s, _ in oof_by_repeat[med]])
    oof_labels = pd.concat([y for _, y in oof_by_repeat[med]])
    if oof_scores.index.has_duplicates:
        dup = sorted(set(oof_scores.index[oof_scores.index.duplicated()]))
        raise ValueError(f"cross_validate: repeat {med} tests patients more than once: {dup[:10]}")
    oof_scores = oof_scores.sort_index().rename("score").rename_axis("patient")
    oof_labels = oof_labels.sort_index().astype(int).rename("label").rename_axis("patient")
    i = repeat_ids.index(med)
    return CVResult(
        folds=rows,
        repeat_aucs=repeat_aucs,
        repeat_train_aucs=repeat_train,
        median_repeat=med,
        train_auc=repeat_train[i],
        test_auc=repeat_aucs[i],
        ci95=fold_mean_bootstrap_ci([(y, sc) for sc, y in oof_by_repeat[med]], n_boot=n_boot, seed=ci_seed),
        oof_scores=oof_scores,
        oof_labels=oof_labels,
        curves=curves,
        tied_folds=tied,
    )


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n: int = 1) -> None:
        pass


def _progress_bar(total: int, desc: str | None, enabled: bool):
    """A tqdm bar (notebook-aware) when enabled, else a no-op."""
    if enabled:
        return tqdm(total=total, desc=desc)
    return _NoBar()


def _check_unique(patients: Sequence[str], where: str) -> None:
    seen, dup = set(), set()
    for p in patients:
        (dup if p in seen else seen).add(p)
    if dup:
        raise ValueError(f"{where}: duplicate patients {sorted(dup)[:10]}")
