"""The clinical targets of Liu & Hu 2023 (issue 13): T, N, ER, PR, HER2 binarised from the Duke clinical table's own
columns and codes, checked on the real public file."""
from pathlib import Path

import pandas as pd
import pytest

from radiolib.data import cohort, targets

REAL_CLINICAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "duke" / "Clinical_and_Other_Features.xlsx"


def test_codes_become_labels_and_the_rest_reasons():
    table = pd.DataFrame({"patient": ["a", "b", "c", "d"],
                          "Staging(Tumor Size)# [T]": [1, 2, 4, None],
                          "Staging(Nodes)#(Nx replaced by -1)[N]": [0, 3, -1, 1],
                          "ER": [1, 0, 1, 1], "PR": [0, 0, 1, None], "HER2": [0, 1, 2, 0]})
    labels, reasons = targets.clinical_targets(table)
    assert list(labels.index) == ["a", "b", "c", "d"] and list(labels.columns) == ["T", "N", "ER", "PR", "HER2"]
    none = -9  # no label
    assert labels.fillna(none).astype(int).to_dict("list") == {
        "T": [0, 1, 1, none], "N": [0, 1, none, 1], "ER": [1, 0, 1, 1], "PR": [0, 0, 1, none],
        "HER2": [0, 1, none, 0]}
    assert reasons.loc["c", "N"] == "N: code -1 of Staging(Nodes)#(Nx replaced by -1)[N] carries no label"
    assert reasons.loc["c", "HER2"] == "HER2: code 2 of HER2 carries no label"
    assert reasons.loc["d", "T"] == "T: Staging(Tumor Size)# [T] blank" and reasons.loc["a", "T"] == ""
    summary = targets.summary(labels)
    assert summary.loc["N", "labelled"] == 3 and summary.loc["N", "positive"] == 2 and summary.loc["N", "no label"] == 1
    with pytest.raises(ValueError, match=r"unknown clinical target\(s\) \['M'\]"):
        targets.clinical_targets(table, ["T", "M"])
    with pytest.raises(ValueError, match=r"no column \['HER2'\]"):
        targets.clinical_targets(table.drop(columns="HER2"))


def test_the_real_duke_table_gives_all_five_targets():
    if not REAL_CLINICAL.is_file():
        pytest.skip("the real Duke clinical table (../shared/data/duke) is not available")
    labels, reasons = targets.clinical_targets(cohort.read_clinical(REAL_CLINICAL, targets.COLUMNS))
    assert len(labels) == 922
    summary = targets.summary(labels)
    # the public table: ER 686 of 922 positive, PR 598, HER2 163; T1 409 of 916 staged; N0 529 of 898 staged
    assert summary.loc["ER", ["labelled", "positive"]].tolist() == [922, 686]
    assert summary.loc["PR", ["labelled", "positive"]].tolist() == [922, 598]
    assert summary.loc["HER2", ["labelled", "positive"]].tolist() == [922, 163]
    assert summary.loc["T", ["labelled", "positive"]].tolist() == [916, 916 - 409]
    assert summary.loc["N", ["labelled", "positive"]].tolist() == [898, 898 - 529]
    assert (reasons["N"] != "").sum() == 24 and reasons["N"].str.endswith("blank").sum() == 24


def test_the_synthetic_workbook_gives_all_five_targets_in_the_real_codes(faulty_cohort):
    clinical = cohort.read_clinical(faulty_cohort / "Clinical_and_Other_Features.xlsx", targets.COLUMNS)
    labels, reasons = targets.clinical_targets(clinical)
    assert len(labels) == 14
    raw = clinical[list(targets.COLUMNS)].apply(pd.to_numeric, errors="coerce")
    assert raw["Staging(Nodes)#(Nx replaced by -1)[N]"].dropna().isin([0, 1, 2, 3]).all()
    assert raw["Staging(Tumor Size)# [T]"].dropna().isin([1, 2, 3, 4]).all()
    assert raw[["ER", "PR", "HER2"]].isin([0, 1]).all().all()
    for name in targets.BY_NAME:  # every target labelled for most patients, both classes present
        assert labels[name].notna().sum() >= 12 and labels[name].nunique() == 2, (name, labels[name].tolist())
