"""The clinical targets of Liu & Hu 2023 (seeds/003): T stage, N stage, ER, PR and HER2, binarised, from the Duke
clinical table (Clinical_and_Other_Features.xlsx, read by `cohort.read_clinical`).

Column names and codes are the real file's (row 2 of sheet "Data"; the legend of row 3). The paper's abstract does
not give its cut points: T1 against T2-T4 (tumour above 2 cm) and N0 against N1-N3 (any positive node) are our
reading, the usual ones; ER, PR and HER2 are positive (1) against negative (0) as coded. A patient whose value is
blank, or coded as unknown (Nx, -1) or borderline (HER2 2), has no label for that target and is left out of that
target's analysis only, with the reason in `labels`' reasons.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ClinicalTarget:
    name: str
    column: str  # the header of Clinical_and_Other_Features.xlsx (row 2)
    positive: str  # what label 1 means
    negative: str
    codes: tuple[int, ...]  # the codes that carry a label
    threshold: int  # label 1 where code >= threshold

    def labels(self, values: pd.Series) -> tuple[pd.Series, pd.Series]:
        """(label 1.0 / 0.0 / NaN, reason where NaN) of the raw column's values."""
        code = pd.to_numeric(values, errors="coerce")
        known = code.isin(self.codes)
        label = (code >= self.threshold).astype(float).where(known)
        reason = pd.Series(np.where(code.isna(), f"{self.name}: {self.column} blank",
                                    f"{self.name}: code " + code.map("{:g}".format)
                                    + f" of {self.column} carries no label"),
                           index=values.index).where(~known, "")
        return label, reason


TARGETS = (
    ClinicalTarget("T", "Staging(Tumor Size)# [T]", "T2-T4 (above 2 cm)", "T1", (1, 2, 3, 4), 2),
    ClinicalTarget("N", "Staging(Nodes)#(Nx replaced by -1)[N]", "N1-N3 (node positive)", "N0", (0, 1, 2, 3), 1),
    ClinicalTarget("ER", "ER", "ER positive", "ER negative", (0, 1), 1),
    ClinicalTarget("PR", "PR", "PR positive", "PR negative", (0, 1), 1),
    ClinicalTarget("HER2", "HER2", "HER2 positive", "HER2 negative (borderline 2 left out)", (0, 1), 1),
)
BY_NAME = {t.name: t for t in TARGETS}
COLUMNS = tuple(t.column for t in TARGETS)


def clinical_targets(clinical: pd.DataFrame, names=tuple(BY_NAME)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(labels, reasons): patients (index) x targets. `clinical` is `cohort.read_clinical(path, targets.COLUMNS)`'s
    table; a target whose column the table lacks is named in a ValueError."""
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown clinical target(s) {unknown}: choose from {', '.join(BY_NAME)}")
    missing = [BY_NAME[n].column for n in names if BY_NAME[n].column not in clinical]
    if missing:
        raise ValueError(f"the clinical table has no column {missing} (read it with cohort.read_clinical(path, "
                         "targets.COLUMNS))")
    labels, reasons = {}, {}
    for n in names:
        labels[n], reasons[n] = BY_NAME[n].labels(clinical[BY_NAME[n].column].reset_index(drop=True))
    index = pd.Index(clinical["patient"].astype(str).values, name="patient")
    return pd.DataFrame(labels).set_axis(index), pd.DataFrame(reasons).set_axis(index)


def summary(labels: pd.DataFrame) -> pd.DataFrame:
    """Per target: patients labelled, positives, their share, and patients without a label."""
    return pd.DataFrame({"labelled": labels.notna().sum(), "positive": (labels == 1).sum(),
                         "share positive": (labels == 1).sum() / labels.notna().sum().replace(0, np.nan),
                         "no label": labels.isna().sum()}).round({"share positive": 3})
