"""The handcrafted baseline: first-order and shape radiomic features of the tumour, logistic regression, same folds.

Buda et al. 2020 and every reader of a deep-learning radiogenomics table ask the same first question: does the
network beat the conventional features of the same tumours? This module answers it on the run's own patients and
folds, with the statistic of every other row, so that each deep row can be read against it.

Extractor: pyradiomics (van Griethuysen et al. 2017), the maintained, IBSI-oriented library that most published
radiomics baselines use; chosen over MIRP because its feature definitions are the ones the glioma and breast
radiogenomics papers report, and because the radiogenomics notebooks' conventional features (Liu & Hu 2023 used
pyradiomics) come from the same extractor. It has no wheel for current Python: `make setup` builds it
(INSTALL); without it the baseline is skipped with that command as the reason, never faked.

What is measured (`SETTINGS`): the `firstorder` and 3D `shape` classes, intensities discretised into a fixed
number of bins (`binCount`, IBSI's FBN: the images are already scaled per patient, so a fixed bin width in
scanner units would mean nothing), on one channel inside the tumour mask:
- LGG (kaggle_3m): the FLAIR channel inside the FLAIR tumour mask, as Buda et al. segmented it;
- Duke: the first post-contrast subtraction inside the patient's tumour mask where it has a DICOM SEG (IDC's AIMI
  segmentations, `fetch duke --masks aimi`; `Volume.mask`), else inside the annotation box, whose shape features
  describe the box (its size and elongation), not the tumour's outline: a stated deviation, counted per patient.

Classifier (`METHOD`): median imputation, standardisation and L2 logistic regression, its inverse penalty C taken
from `C_GRID` by stratified inner cross-validation (AUC) on each outer training fold only; scored on that fold's
test patients and summarised as every row (`evaluation.cross_validate`). A patient whose features cannot be
extracted keeps its place in the folds with imputed (training-median) features and is named in the row's
`imputed` with the reason, so that the baseline and the deep rows are scored on the same patients.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
from joblib import Parallel, delayed
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..core import cache
from ..core.frontend import tqdm
from ..data.dataset import fingerprint, open_cohort

VERSION = 1
FEATURE_CLASSES = ("firstorder", "shape")
SETTINGS = {"binCount": 32, "force2D": False, "label": 1}
C_GRID = tuple(float(c) for c in np.logspace(-3, 2, 6))
INNER_FOLDS = 3
METHOD = (f"pyradiomics {'+'.join(FEATURE_CLASSES)} features of the tumour; L2 logistic regression, C from "
          f"{len(C_GRID)} values by {INNER_FOLDS}-fold inner CV (AUC) on each training fold")
NETWORK = "radiomics"  # the row's `network`: where its features come from
INSTALL = ("pip install numpy setuptools wheel versioneer && "
           "pip install --no-build-isolation pyradiomics==3.0.1")
RESULTS_KEYS = ("baseline", "baseline_reason")  # the top-level entries of notebook 01's results file
SOURCE_STEM = "01_preprocessing"
# Per dataset (Descriptor.dataset): the channel measured and the mask it is measured in.
CHANNEL = {"lgg": "FLAIR", "duke": "post1 - pre"}
MASK = {"lgg": "the FLAIR tumour mask",
        "duke": "the annotation box (Duke has no segmentation: shape features describe the box)"}
MASKED = "the patient's AIMI SEG tumour mask where it has one, else the annotation box (`mask_source`)"  # Duke


def missing_extractor() -> str | None:
    """None when pyradiomics can be imported, else the reason the baseline is skipped (with the install command)."""
    try:
        import radiomics  # lazy: optional package (built by make setup)  # noqa: F401
    except ImportError as err:
        return f"pyradiomics is not installed ({err}); install it with: {INSTALL}"
    return None


def extractor_version() -> str:
    """"pyradiomics 3.0.1" (recorded in the row and in each cached feature's key), or "pyradiomics absent"."""
    try:
        import radiomics  # lazy: optional package (built by make setup)
    except ImportError:
        return "pyradiomics absent"
    return f"pyradiomics {radiomics.__version__.lstrip('v')}"


def extractor(classes: Sequence[str] = FEATURE_CLASSES, settings: Mapping | None = None):
    """A pyradiomics extractor of these feature classes and settings (the baseline's by default), quiet."""
    from radiomics import featureextractor  # lazy: optional package (built by make setup)
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    ext = featureextractor.RadiomicsFeatureExtractor(**(SETTINGS if settings is None else settings))
    ext.disableAllFeatures()
    for name in classes:
        ext.enableFeatureClassByName(name)
    return ext


# ---------------------------------------------------------------------------------------------------------------
# Masks and features of one patient


def box_mask(regions: pd.DataFrame, shape: tuple[int, int, int]) -> np.ndarray:
    """(Z, Y, X) bool: the union of the regions' boxes (centre cy, cx and size h, w in voxels, on slice `slice`),
    clipped to the volume."""
    mask = np.zeros(shape, bool)
    for r in regions.itertuples(index=False):
        z = int(r.slice)
        if not 0 <= z < shape[0]:
            continue
        y0, y1 = int(math.floor(r.cy - (r.h - 1) / 2 + 0.5)), int(math.floor(r.cy + (r.h - 1) / 2 + 0.5))
        x0, x1 = int(math.floor(r.cx - (r.w - 1) / 2 + 0.5)), int(math.floor(r.cx + (r.w - 1) / 2 + 0.5))
        mask[z, max(y0, 0):max(min(y1 + 1, shape[1]), 0), max(x0, 0):max(min(x1 + 1, shape[2]), 0)] = True
    return mask


def channel_index(channel_names: Sequence[str], dataset: str) -> int:
    """The channel the features are measured on: FLAIR for LGG, the first (post1 - pre) for Duke."""
    name = CHANNEL.get(dataset)
    return list(channel_names).index(name) if name in channel_names else 0


def volume_features(image: np.ndarray, mask: np.ndarray, spacing: Sequence[float]) -> dict[str, float]:
    """The features of one (Z, Y, X) image inside a bool mask on a grid of `spacing` (z, y, x) mm: name -> value.

    ValueError when the mask is empty; pyradiomics' own errors (e.g. a mask of one voxel) pass through.
    """
    if not mask.any():
        raise ValueError("empty tumour mask")
    img = sitk.GetImageFromArray(np.ascontiguousarray(image, dtype=np.float32))
    roi = sitk.GetImageFromArray(mask.astype(np.uint8))
    for v in (img, roi):
        v.SetSpacing(tuple(float(s) for s in spacing[::-1]))  # SimpleITK: (x, y, z)
    out = extractor().execute(img, roi)
    return {k.removeprefix("original_"): float(v) for k, v in out.items() if k.startswith("original_")}


def _patient(cohort, patient: str, spacing: float, channel: int) -> tuple[str, str | None, dict]:
    """(patient, None, features) or (patient, reason, {}) for one patient; never raises."""
    try:
        vol = cohort.volume(patient, spacing)
        mask = vol.mask if getattr(vol, "mask", None) is not None else box_mask(vol.regions, vol.channels.shape[1:])
        return patient, None, volume_features(vol.channels[channel], mask, vol.spacing)
    except Exception as err:  # noqa: BLE001 - one patient's failure is a reason in the row, not a crash
        return patient, f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".strip(": "), {}


def feature_table(data_dir: str | Path, patients: Sequence[str], cache_dir=None, n_jobs: int = 1,
                  progress: bool = True, target: str | None = None,
                  descriptor=None) -> tuple[pd.DataFrame, dict[str, str], dict]:
    """(patients x features, patient -> reason for those without features, what was measured: `channel`, `mask`),
    each patient's features cached. Features are label-free (they never see the target): one table serves every fold.

    With the data's `descriptor` (a patch set's), a table whose every patient is cached is read back without
    scanning the cohort again (the scan of a 270-patient DICOM cohort takes longer than reading the cache).
    """
    data_dir = Path(data_dir)
    opened = []

    def cohort():  # scanned only when a patient's features must be computed
        if not opened:
            opened.append(open_cohort(data_dir, target=target, progress=False))
        return opened[0]
    d = descriptor if descriptor is not None else cohort().descriptor
    channel = channel_index(d.channels, d.dataset)
    parts = dict(data=fingerprint(data_dir), settings=SETTINGS, classes=FEATURE_CLASSES, channel=channel,
                 version=VERSION, extractor=extractor_version())
    compute = lambda p: _patient(cohort(), p, cohort().target_spacing, channel)  # noqa: E731
    done, todo = {}, []
    for p in map(str, patients):
        path = cache.cache_root(cache_dir) / "handcrafted" / f"{cache.key_of(patient=p, **parts)}.pkl"
        if path.is_file():  # read back (computed again, alone, if the file is damaged)
            done[p] = cache.memo(cache_dir, "handcrafted", dict(patient=p, **parts), lambda p=p: compute(p)[1:])
        else:
            todo.append(p)
    if todo:
        included = set(cohort().patients)
        done.update({p: (f"not an included patient of {data_dir.name}", {}) for p in todo if p not in included})
        todo = [p for p in todo if p in included]
    jobs = (delayed(_patient)(cohort(), p, cohort().target_spacing, channel) for p in todo)
    for p, reason, feats in tqdm(Parallel(n_jobs=n_jobs, return_as="generator")(jobs), total=len(todo),
                                 desc="radiomic features", disable=not progress or not todo):
        done[p] = cache.memo(cache_dir, "handcrafted", dict(patient=p, **parts), lambda: (reason, feats))
    rows = {p: done[str(p)][1] for p in patients}
    reasons = {str(p): done[str(p)][0] for p in patients if done[str(p)][0]}
    table = pd.DataFrame.from_dict(rows, orient="index").reindex(list(map(str, patients)))
    measured = {"channel": d.channels[channel], "mask": MASK.get(d.dataset, "the annotation regions")}
    return table.sort_index(axis=1).rename_axis("patient"), reasons, measured


# ---------------------------------------------------------------------------------------------------------------
# The baseline row


def _pipeline(n_inner: int, seed: int):
    model = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(max_iter=5000))
    inner = StratifiedKFold(n_splits=n_inner, shuffle=True, random_state=seed)
    return GridSearchCV(model, {"logisticregression__C": list(C_GRID)}, scoring="roc_auc", cv=inner)


def fit_predict(x: pd.DataFrame, seed: int = 0, chosen: dict | None = None):
    """A fold function for `evaluation.cross_validate`: the model fitted on the fold's training patients only
    (C chosen inside them), log-odds of its training and test patients; `chosen` collects fold -> C."""
    def fit(fold: Mapping):
        train = x.loc[list(map(str, fold["train_patients"]))]
        test = x.loc[list(map(str, fold["test_patients"]))]
        y = np.asarray(fold["train_labels"], int)
        n_inner = int(min(INNER_FOLDS, np.bincount(y, minlength=2).min()))
        if n_inner < 2:
            raise ValueError(f"fold {fold.get('fold')}: a class has fewer than 2 training patients")
        search = _pipeline(n_inner, seed).fit(train.to_numpy(float), y)
        if chosen is not None:
            chosen[(fold.get("repeat", 0), fold.get("fold"))] = float(search.best_params_["logisticregression__C"])
        model = search.best_estimator_
        return {"train_scores": pd.Series(model.decision_function(train.to_numpy(float)), index=train.index),
                "test_scores": pd.Series(model.decision_function(test.to_numpy(float)), index=test.index)}
    return fit


def usable_columns(table: pd.DataFrame) -> pd.DataFrame:
    """The features that can enter a model: finite for at least one patient and not constant (label-free)."""
    finite = table.replace([np.inf, -np.inf], np.nan)
    keep = [c for c in finite.columns if finite[c].notna().any() and finite[c].nunique(dropna=True) > 1]
    return finite[keep]


def entries(row: dict) -> dict:
    """The results-file entries of notebook 01: `baseline` (the row, also when skipped) and `baseline_reason`."""
    return {"baseline": row, "baseline_reason": row["skipped"]}


def of_doc(doc: Mapping) -> dict | None:
    """The baseline row recorded in notebook 01's results file, None when it has none (or an older file)."""
    row = doc.get("baseline")
    return row if isinstance(row, Mapping) else None


def sentence(row: Mapping | None) -> str:
    """One line for a notebook or the report."""
    if row is None:
        return "No handcrafted baseline in this run."
    if row["skipped"]:
        return f"Handcrafted baseline skipped: {row['skipped']}."
    lo, hi = row["ci95"]
    imputed = f"; {len(row['imputed'])} patients imputed" if row.get("imputed") else ""
    return (f"Handcrafted baseline: test AUC {row['test_auc']:.2f} [{lo:.2f}, {hi:.2f}] (train {row['train_auc']:.2f}; "
            f"{len(row['features'])} {'+'.join(row['feature_classes'])} features of the {row['channel']} channel in "
            f"{row['mask']}; "
            f"{row['extractor']}{imputed}). 'vs handcrafted' = a row's test AUC minus {row['test_auc']:.2f}.")
