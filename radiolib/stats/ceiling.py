"""The ceiling: the best test AUC a method could reach on this run's patients and folds, from the ground truth.

The synthetic cohorts write, beside the images, the phenotype every patient's lesions were drawn from
(`synthetic_truth.csv`, `synthetic_lesions.csv`; see radiolib.data.synth.plan and radiolib.data.synth.lgg). The subtype
reaches the images only through it: in the Duke cohort through the proliferation and immune latents (which drive
wash-in, peak, washout, rim and heterogeneity, each lesion with its own noise) and the subtype's shift of the lesion
size; in the LGG cohort through the amplitudes of the rim and patchy enhancement. A method that sees the images sees
these quantities only through noise, partial volumes and patches, so a classifier fitted on the quantities
themselves marks how far the images could take any method.

Method (`METHOD`): logistic regression on the standardised phenotype, fitted on each training fold of the run's own
folds and scored on its test fold, summarised as the tables summarise every row (`evaluation.cross_validate`: the
fold-mean test AUC of the median repeat and the bootstrap CI of that statistic). Chosen over the generator's Bayes
rule because (1) it answers for any target of the run (luminal_like, luminal_a_surrogate, any `column==value`,
LGG's COCCluster) from the run's own labels, where a Bayes rule would be derived anew for each target from the
generator's constants; (2) it reads only the sidecars, not the generator's code, so it shares no assumption with
it; (3) it learns from the same training patients as the rows beside it, so the ceiling and the rows differ only in
what they see (the truth or the images), not in how many patients they learn from. It is an estimate, not a bound:
on a small cohort a row can exceed it by chance (compare the CIs); a linear model also misses a target that is a
step of a latent (luminal_a_surrogate's grade), where it is a lower estimate of the ceiling.

Real data (a user's Duke or LGG download) has no truth sidecar and so no ceiling: `Ceiling.missing(reason)`.
Results files record it in notebook 01's file under `ceiling` (null when there is none) and `ceiling_reason`;
notebooks 02-05 read it from there (`RunContext.ceiling_`) and show each row's test AUC as a share of it
(display only: the rows written to the results files are unchanged).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..data.synth.common import read_manifest
from .evaluation import cross_validate

RESULTS_KEYS = ("ceiling", "ceiling_reason")  # the top-level entries of notebook 01's results file
METHOD = "logistic regression on the true phenotype, cross-validated on the study's folds"
# Per generator (cohort.json "generator"): the truth columns that carry the subtype into the images.
PHENOTYPE = {"radiolib.synth": ("proliferation", "immune", "index_lesion_log_size"),
             "radiolib.synth_lgg": ("rim", "patchy", "diffuse")}
NO_TRUTH = ("real data: no ground-truth sidecar (synthetic_truth.csv) beside the images, so no ceiling can be "
            "computed; the rows' AUCs stand without one")
SOURCE_STEM = "01_preprocessing"


@dataclass(frozen=True)
class Ceiling:
    """The ceiling of a run (`test_auc`, `ci95`, `train_auc`, `repeat_aucs`, `features`, `patients`), or, when
    there is none, `reason` (and `test_auc` None)."""

    test_auc: float | None
    ci95: tuple[float, float] | None = None
    train_auc: float | None = None
    repeat_aucs: tuple[float, ...] = ()
    features: tuple[str, ...] = ()
    patients: int = 0
    method: str = METHOD
    reason: str | None = None

    @classmethod
    def missing(cls, reason: str) -> "Ceiling":
        return cls(test_auc=None, reason=reason)

    @property
    def known(self) -> bool:
        return self.test_auc is not None

    def share(self, auc) -> float:
        """`auc` / the ceiling's test AUC, rounded to 2 decimals; nan without a ceiling or an AUC."""
        if not self.known or auc is None or not math.isfinite(float(auc)):
            return float("nan")
        return round(float(auc) / self.test_auc, 2)

    def sentence(self) -> str:
        """One line for a notebook or the report: the ceiling with its CI and method, or why there is none."""
        if not self.known:
            return f"No ceiling: {self.reason}."
        lo, hi = self.ci95
        return (f"Ceiling from the ground truth: test AUC {self.test_auc:.2f} [{lo:.2f}, {hi:.2f}] "
                f"({self.method}; {', '.join(self.features)}; {self.patients} patients). "
                f"'share of ceiling' = a row's test AUC / {self.test_auc:.2f}.")

    def entries(self) -> dict:
        """The results-file entries: `ceiling` (a dict, or None) and `ceiling_reason` (None when known)."""
        if not self.known:
            return {"ceiling": None, "ceiling_reason": self.reason}
        return {"ceiling": {"test_auc": self.test_auc, "ci95": list(self.ci95), "train_auc": self.train_auc,
                            "repeat_aucs": list(self.repeat_aucs), "method": self.method,
                            "features": list(self.features), "patients": self.patients},
                "ceiling_reason": None}

    @classmethod
    def from_doc(cls, doc: Mapping) -> "Ceiling":
        """The ceiling recorded in a results file (notebook 01's); missing, with the reason, when it has none."""
        if "ceiling" not in doc:
            return cls.missing(f"results/{SOURCE_STEM}.json has no ceiling (written before it existed): run "
                               f"notebook {SOURCE_STEM} again")
        entry = doc["ceiling"]
        if entry is None:
            return cls.missing(doc.get("ceiling_reason") or "none recorded")
        return cls(test_auc=float(entry["test_auc"]), ci95=tuple(entry["ci95"]), train_auc=entry.get("train_auc"),
                   repeat_aucs=tuple(entry.get("repeat_aucs") or ()), features=tuple(entry.get("features") or ()),
                   patients=int(entry.get("patients") or 0), method=entry.get("method") or METHOD)


# ---------------------------------------------------------------------------------------------------------------
# The phenotype from the sidecars


def phenotype(data_dir: str | Path) -> tuple[pd.DataFrame | None, str | None]:
    """(patient -> PHENOTYPE columns of the cohort's generator, None), or (None, why there is none)."""
    root = Path(data_dir)
    generator = read_manifest(root).get("generator")
    if not (root / "synthetic_truth.csv").is_file():
        return None, NO_TRUTH
    if generator not in PHENOTYPE:
        return None, f"synthetic_truth.csv of an unknown generator {generator!r}: no ceiling"
    truth = pd.read_csv(root / "synthetic_truth.csv", keep_default_na=False, dtype={"patient": str})
    truth = truth.set_index("patient")
    if generator == "radiolib.synth":
        lesions = pd.read_csv(root / "synthetic_lesions.csv", dtype={"patient": str})
        index = lesions[lesions.lesion == 1].set_index("patient")
        # in-plane radii only: the through-plane one is capped to fit small test volumes
        truth["index_lesion_log_size"] = 0.5 * np.log(index.radius_y_mm * index.radius_x_mm)
    return truth[list(PHENOTYPE[generator])].astype(float), None


# ---------------------------------------------------------------------------------------------------------------
# The ceiling


def _fit_predict(x: pd.DataFrame):
    """A fold function for `evaluation.cross_validate`: standardised logistic regression on `x` (patients x
    phenotype), fitted on the fold's training patients; log-odds of its training and test patients."""

    def fit(fold: Mapping):
        train, test = x.loc[list(map(str, fold["train_patients"]))], x.loc[list(map(str, fold["test_patients"]))]
        model = make_pipeline(StandardScaler(), LogisticRegression()).fit(train.to_numpy(), fold["train_labels"])
        return {"train_scores": pd.Series(model.decision_function(train.to_numpy()), index=train.index),
                "test_scores": pd.Series(model.decision_function(test.to_numpy()), index=test.index)}
    return fit


def compute(data_dir: str | Path, labels: pd.Series, folds: Sequence[dict], n_boot: int = 1000) -> Ceiling:
    """The ceiling of the patients of `labels` (patient -> 0/1, the run's target) on the run's `folds`.

    Missing (with the reason) for real data. ValueError naming the patients when a labelled patient is not in the
    truth sidecar (the labels come from another cohort than `data_dir`).
    """
    x, reason = phenotype(data_dir)
    return Ceiling.missing(reason) if x is None else cross_validated(x, labels, folds, n_boot, Path(data_dir).name)


def cross_validated(x: pd.DataFrame, labels: pd.Series, folds: Sequence[dict], n_boot: int, name: str) -> Ceiling:
    """The ceiling from the phenotype `x` of cohort `name`, the run's `labels` and `folds`."""
    patients = pd.Index(labels.index.map(str))
    absent = patients.difference(x.index)
    if len(absent):
        raise ValueError(f"ceiling: patients {list(absent[:10])} are not in {name}'s synthetic_truth.csv: the "
                         "labels are of another cohort")
    cv = cross_validate(list(folds), _fit_predict(x.loc[patients]), progress=False, n_boot=n_boot)
    r4 = lambda v: round(float(v), 4)  # noqa: E731 - as results.make_row rounds AUCs
    return Ceiling(test_auc=r4(cv.test_auc), ci95=tuple(r4(v) for v in cv.ci95), train_auc=r4(cv.train_auc),
                   repeat_aucs=tuple(r4(v) for v in cv.repeat_aucs), features=tuple(x.columns),
                   patients=len(patients))


def of_preprocessing(doc: dict | None, why: str = "") -> Ceiling:
    """The ceiling in notebook 01's results doc (`results.read_run_results`), else missing for `why`."""
    return Ceiling.from_doc(doc) if doc is not None else Ceiling.missing(why)
