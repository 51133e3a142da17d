"""The two reference rows notebook 01 computes on the run's folds and 02-05 read back from its results file: the
ceiling (`radiolib.stats.ceiling`, from the synthetic cohort's ground truth) and the handcrafted baseline
(`radiolib.learn.handcrafted`, pyradiomics features and logistic regression)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from ..data.dicom_seg import mask_source
from ..learn import handcrafted
from ..stats import ceiling
from ..stats.evaluation import cross_validate
from . import inputs
from .results import make_row, read_run_results


def ceiling_of_patch_set(data_dir: str | Path, patch_set, P) -> ceiling.Ceiling:
    """Notebook 01: the ceiling of the patch set's included patients on the run's folds (`inputs.folds`);
    missing, with the reason, for real data or when the folds cannot be made (a class smaller than n_folds)."""
    x, reason = ceiling.phenotype(data_dir)
    if x is None:
        return ceiling.Ceiling.missing(reason)
    try:
        folds = inputs.folds(patch_set, P)
    except ValueError as exc:
        return ceiling.Ceiling.missing(f"the run's folds cannot be made: {exc}")
    labels = patch_set.table.set_index("patient").label.astype(int)
    return ceiling.cross_validated(x, labels, folds, P.n_boot, Path(data_dir).name)


def ceiling_of_run(results_dir: str | Path, P, patch_set=None) -> ceiling.Ceiling:
    """Notebooks 02-05: the ceiling notebook 01 recorded in this run folder; missing, with the reason, when 01 has
    not run here or its file belongs to another run (other data or run parameters)."""
    return ceiling.of_preprocessing(*read_run_results(results_dir, ceiling.SOURCE_STEM, P, patch_set))


def baseline_of_patch_set(data_dir: str | Path, patch_set, P, progress: bool = True) -> dict:
    """Notebook 01: the baseline row of the patch set's included patients on the run's folds; a skipped row, with
    the reason, when pyradiomics is absent or the folds cannot be made."""
    reason = handcrafted.missing_extractor()
    if reason:
        return skipped_row(reason)
    try:
        folds = inputs.folds(patch_set, P)
    except ValueError as exc:
        return skipped_row(f"the run's folds cannot be made: {exc}")
    patients = patch_set.table.patient.astype(str).tolist()
    table, reasons, measured = handcrafted.feature_table(data_dir, patients, P.cache_dir, max(1, P.n_jobs), progress,
                                                         P.target, descriptor=patch_set.descriptor)
    return baseline_row(table, reasons, folds, P.n_boot, P.seed, {**measured, **masked(patch_set.table)})


def masked(table: pd.DataFrame) -> dict:
    """The row's `mask` and `mask_source` (counts and patients per region, `dicom_seg.mask_source`) when some
    patient has a SEG mask; nothing otherwise (the row stays as it was before masks)."""
    source = mask_source(table)
    return {} if source is None else {"mask": handcrafted.MASKED, "mask_source": source}


def baseline_of_run(results_dir: str | Path, P, patch_set=None) -> dict | None:
    """Notebooks 02-05: the baseline row notebook 01 recorded in this run folder; None when 01 has not run here,
    its file belongs to another run, or it has no baseline."""
    doc, _ = read_run_results(results_dir, handcrafted.SOURCE_STEM, P, patch_set)
    return handcrafted.of_doc(doc) if doc is not None else None


def skipped_row(reason: str) -> dict:
    """The baseline's results row when it could not run, with the reason."""
    return make_row("handcrafted", handcrafted.NETWORK, skipped=reason)


def baseline_row(table: pd.DataFrame, reasons: Mapping[str, str], folds: Sequence[dict], n_boot: int = 1000,
                 seed: int = 0, measured: Mapping | None = None) -> dict:
    """The baseline's results row from a feature table (patients x features) on the run's `folds`."""
    x = handcrafted.usable_columns(table)
    if x.shape[1] == 0 or len(reasons) == len(table):
        return skipped_row("no patient has usable radiomic features (" + "; ".join(sorted(set(reasons.values()))[:3])
                           + ")")
    chosen: dict = {}
    cv = cross_validate(list(folds), handcrafted.fit_predict(x, seed, chosen), progress=False, n_boot=n_boot)
    return make_row("handcrafted", handcrafted.NETWORK, cv=cv, method=handcrafted.METHOD,
                    extractor=handcrafted.extractor_version(), feature_classes=list(handcrafted.FEATURE_CLASSES),
                    features=list(x.columns), **(measured or {}),
                    chosen_C=[{"repeat": int(r), "fold": int(f), "C": c} for (r, f), c in sorted(chosen.items())],
                    imputed=dict(sorted(reasons.items())))
