"""Predicting a clinical target (T, N, ER, PR, HER2: `targets`) from imaging features with L1-penalised logistic
regression (Liu & Hu 2023's LASSO; issue 13, notebook 07), under two protocols.

- `nested`: ours. One row of features per patient, patient-level stratified folds (`evaluation.patient_folds`), the
  penalty chosen from `C_GRID` by inner cross-validation on each training fold only, scored on the fold's test
  patients; the fold-mean AUC with its bootstrap CI, as every row of the study (`evaluation.cross_validate`).
- `paper`: Liu & Hu's, labelled as theirs. Images (slices) split 70/30 at random, so the slices of one patient fall
  on both sides, and the penalty whose test AUC is highest reported: both inflate the AUC, which a null cohort shows
  (`tests/test_receptors.py`).

`path` gives the AUC against the number of non-zero coefficients along the penalty grid for either protocol: the
paper's Figure 5.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .evaluation import cross_validate, patient_folds

C_GRID = tuple(float(c) for c in np.logspace(-2, 1, 7))  # inverse L1 penalty, fixed in advance
INNER_FOLDS = 3
PAPER_TEST_SIZE = 0.3
PROTOCOLS = {"nested": "patient-level folds, penalty chosen inside each training fold",
             "paper": "Liu & Hu 2023: images split 70/30 (a patient's slices on both sides), penalty picked on the "
                      "test part"}


def lasso(C: float, seed: int = 0):
    """Standardised features, L1 logistic regression at inverse penalty C."""
    return make_pipeline(StandardScaler(), _l1_logistic(C, seed))


def _l1_logistic(C: float, seed: int = 0) -> LogisticRegression:
    """The L1 logistic regression of `lasso`, without its scaler. liblinear: it solves the problem from scratch (no
    warm start); scikit-learn's only other L1 solver, saga, is slower at this shape (benchmarks/bench_receptors.py)."""
    return LogisticRegression(**_l1(), C=C, solver="liblinear", max_iter=2000, random_state=seed)


def _l1() -> dict:
    """The L1 penalty in this scikit-learn's terms: `l1_ratio=1` from 1.8 (where `penalty` is deprecated; there an
    `l1_ratio` alone would be ignored with a warning, leaving L2), `penalty="l1"` before."""
    version = tuple(int(v) for v in sklearn.__version__.split(".")[:2])
    return {"l1_ratio": 1.0} if version >= (1, 8) else {"penalty": "l1"}


def nonzero(model) -> int:
    """Features with a non-zero coefficient in a fitted `lasso`."""
    return int(np.count_nonzero(model[-1].coef_))


def _inner_search(n_inner: int, seed: int, grid=C_GRID):
    inner = StratifiedKFold(n_splits=n_inner, shuffle=True, random_state=seed)
    return GridSearchCV(lasso(grid[0], seed), {"logisticregression__C": list(grid)}, scoring="roc_auc", cv=inner)


def nested_fit_predict(x: pd.DataFrame, seed: int = 0, chosen: dict | None = None, C: float | None = None):
    """A fold function for `evaluation.cross_validate`: the LASSO fitted on the fold's training patients only, its
    penalty chosen by inner CV on them (or fixed at `C`); `chosen` collects fold -> (C, non-zero features)."""
    def fit(fold: Mapping):
        train_index = [str(p) for p in fold["train_patients"]]
        test_index = [str(p) for p in fold["test_patients"]]
        train = x.loc[train_index].to_numpy(float)
        y = np.asarray(fold["train_labels"], int)
        if C is None:
            n_inner = int(min(INNER_FOLDS, np.bincount(y, minlength=2).min()))
            if n_inner < 2:
                raise ValueError(f"fold {fold.get('fold')}: a class has fewer than 2 training patients")
            model = _inner_search(n_inner, seed).fit(train, y).best_estimator_
        else:
            model = lasso(C, seed).fit(train, y)
        if chosen is not None:
            chosen[(fold.get("repeat", 0), fold.get("fold"))] = (float(model[-1].C), nonzero(model))
        return {"train_scores": pd.Series(model.decision_function(train), index=train_index),
                "test_scores": pd.Series(model.decision_function(x.loc[test_index].to_numpy(float)),
                                         index=test_index)}
    return fit


def check_patient_table(x: pd.DataFrame, labels: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
    """Features (patients x features) and labels of the patients that have both, indexed by patient id (str)."""
    x = x.copy()
    x.index = x.index.map(str)
    labels = pd.Series(labels).dropna()
    labels.index = labels.index.map(str)
    if x.index.has_duplicates:
        raise ValueError("one row of features per patient: repeated patients "
                         f"{sorted(set(x.index[x.index.duplicated()]))[:5]} (average a patient's slices first)")
    common = x.index.intersection(labels.index)
    if len(common) < 4:
        raise ValueError(f"only {len(common)} patients have both features and a label")
    return x.loc[common], labels.loc[common].astype(int)


def nested_cv(x: pd.DataFrame, labels: pd.Series, n_folds: int = 5, repeats: int = 1, seed: int = 0,
              n_boot: int = 1000, progress: bool = False):
    """Our protocol's cross-validation: (CVResult, fold -> (C, non-zero features)) on patient-level folds."""
    x, y = check_patient_table(x, labels)
    folds = patient_folds(list(x.index), y.to_numpy(), n_folds, repeats, seed)
    chosen: dict = {}
    cv = cross_validate(folds, nested_fit_predict(x, seed, chosen), progress=progress, desc="LASSO, nested",
                        n_boot=n_boot, ci_seed=seed)
    return cv, chosen


def chosen_list(chosen: Mapping) -> list[dict]:
    return [{"repeat": r, "fold": f, "C": c, "nonzero": k} for (r, f), (c, k) in sorted(chosen.items())]


def nested(x: pd.DataFrame, labels: pd.Series, n_folds: int = 5, repeats: int = 1, seed: int = 0,
           n_boot: int = 1000, progress: bool = False) -> dict:
    """Our protocol: test AUC (fold mean) and CI, train AUC, and per fold the chosen C and its non-zero features."""
    cv, chosen = nested_cv(x, labels, n_folds, repeats, seed, n_boot, progress)
    return {"protocol": "nested", "patients": len(cv.oof_labels), "test_auc": cv.test_auc, "ci95": list(cv.ci95),
            "train_auc": cv.train_auc, "chosen": chosen_list(chosen)}


def paper(x_images: np.ndarray, y_images, image_patients, seed: int = 0, grid=C_GRID) -> dict:
    """Liu & Hu's protocol on image rows: a random stratified 70/30 split of the images, every C fitted on the 70%
    and scored on the 30%, the best test AUC reported. Also: how many test images have a patient in training."""
    x = np.asarray(x_images, float)
    y = np.asarray(y_images, int)
    patients = np.asarray(image_patients).astype(str)
    train, test = train_test_split(np.arange(len(y)), test_size=PAPER_TEST_SIZE, stratify=y, random_state=seed)
    per_c = grid_fits(x[train], y[train], x[test], y[test], seed, grid)
    best = max(per_c, key=lambda r: r["auc"])
    shared = np.isin(patients[test], patients[train])
    return {"protocol": "paper", "images": len(y), "test_auc": best["auc"], "C": best["C"],
            "nonzero": best["nonzero"], "per_C": per_c, "test_images_with_patient_in_training": int(shared.sum()),
            "test_images": len(test)}


def grid_fits(x_train: np.ndarray, y_train, x_test: np.ndarray, y_test, seed: int = 0, grid=C_GRID) -> list[dict]:
    """`lasso(C)` fitted on the training rows and scored on the test rows at each C of `grid`: C, non-zero features,
    test AUC. The same numbers as one `lasso` pipeline per C, with the standardisation (which depends on the
    training rows, not on C) fitted once and shared by the penalties."""
    scaler = StandardScaler().fit(x_train)
    train, test = scaler.transform(x_train), scaler.transform(x_test)
    out = []
    for C in grid:
        model = _l1_logistic(C, seed).fit(train, y_train)
        out.append({"C": C, "nonzero": int(np.count_nonzero(model.coef_)),
                    "auc": float(roc_auc_score(y_test, model.decision_function(test)))})
    return out


def path(x: pd.DataFrame, labels: pd.Series, n_folds: int = 5, seed: int = 0, grid=C_GRID) -> pd.DataFrame:
    """Figure 5, ours: for each C of the grid (fixed, not chosen) the patient-level fold-mean test AUC and the mean
    number of non-zero features over the folds."""
    x, y = check_patient_table(x, labels)
    folds = patient_folds(list(x.index), y.to_numpy(), n_folds, 1, seed)
    rows = []
    for C in grid:
        chosen: dict = {}
        cv = cross_validate(folds, nested_fit_predict(x, seed, chosen, C=C), progress=False, n_boot=0)
        rows.append({"C": C, "nonzero": float(np.mean([k for _, k in chosen.values()])), "auc": cv.test_auc})
    return pd.DataFrame(rows)
