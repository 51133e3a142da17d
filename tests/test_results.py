"""Tests for radiolib.run.results: row construction, validation, atomic byte-stable JSON, display table."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from radiolib.run import results as rs
from radiolib.stats import evaluation as ev


def small_cv(train_auc=0.93456789, test_auc=0.561234, ci95=(0.51049, 0.60012)):
    """A hand-made CVResult: 2 repeats x 2 folds of 4 patients."""
    folds = []
    for r in range(2):
        for f in range(2):
            test = ["P1", "P2"] if f == 0 else ["P3", "P4"]
            train = sorted({"P1", "P2", "P3", "P4"} - set(test))
            folds.append({"repeat": r, "fold": f, "train_patients": train, "test_patients": test,
                          "auc": 0.5 + 0.1 * f + 0.123456 * r if (r, f) != (1, 1) else float("nan"),
                          "train_auc": 0.9})
    oof = pd.Series([0.2, 0.8, 0.4, 0.6], index=["P1", "P2", "P3", "P4"])
    return ev.CVResult(folds=folds, repeat_aucs=[0.55, np.float64(0.623456)], repeat_train_aucs=[0.9, 0.9],
                       median_repeat=0, train_auc=train_auc, test_auc=test_auc, ci95=ci95, oof_scores=oof,
                       oof_labels=pd.Series([0, 1, 0, 1], index=oof.index), curves=[None] * 4)


def rows():
    return [
        rs.make_row("scratch", "CIFAR", cv=small_cv(), lr=1e-4),
        rs.make_row("features", "GoogLeNet", source="imagenet", patch_size=120, kernel="poly", layer="fc",
                    cv=small_cv(0.84, 0.65, (0.57, 0.71))),
        rs.make_row("transfer", "VGG16", source="imagenet", skipped="torchvision weights not available offline"),
    ]


def test_make_row_keys_rounding_and_folds():
    row = rs.make_row("scratch", "CIFAR", cv=small_cv(), lr=1e-4, epochs=40)
    assert tuple(row)[:len(rs.ROW_KEYS)] == rs.ROW_KEYS
    assert list(row)[len(rs.ROW_KEYS):] == ["oof", "median_repeat", "tied_folds", "lr", "epochs"]
    assert row["oof"] == {"P1": 0.2, "P2": 0.8, "P3": 0.4, "P4": 0.6} and row["median_repeat"] == 0
    assert row["tied_folds"] == []
    assert row["train_auc"] == 0.9346 and row["test_auc"] == 0.5612
    assert row["ci95"] == [0.5105, 0.6001]
    assert row["repeat_aucs"] == [0.55, 0.6235]
    assert len(row["folds"]) == 4
    assert set(row["folds"][0]) == {"repeat", "fold", "train_patients", "test_patients", "auc"}
    assert row["folds"][2]["auc"] == 0.6235 and row["folds"][3]["auc"] is None  # nan -> null
    assert row["skipped"] is None and row["source"] == "none"


def test_make_row_skipped_has_null_numbers():
    row = rs.make_row("transfer", "VGG16", source="imagenet", skipped="no weights")
    assert [row[k] for k in ("train_auc", "test_auc", "ci95", "repeat_aucs")] == [None] * 4
    assert row["folds"] == [] and row["skipped"] == "no weights"


@pytest.mark.parametrize("kwargs, match", [
    ({"approach": "finetune", "network": "x", "skipped": "r"}, "approach 'finetune'"),
    ({"approach": "scratch", "network": "x", "source": "web", "skipped": "r"}, "source 'web'"),
    ({"approach": "scratch", "network": "x"}, "exactly one of cv= or skipped="),
    ({"approach": "scratch", "network": "x", "skipped": " "}, "non-empty reason"),
    ({"approach": "scratch", "network": "x", "skipped": "r", "test_auc": 0.7}, "test_auc"),
])
def test_make_row_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rs.make_row(**kwargs)


def test_write_read_roundtrip(tmp_path):
    path = tmp_path / "results" / "03_features.json"
    rs.write_results(path, rows(), deviations=["SVM C fixed at 1"], params={"seed": 0, "patch": 120})
    doc = rs.read_results(path)
    assert list(doc) == ["notebook", "rows", "deviations", "params"]
    assert doc["notebook"] == "03_features"
    assert doc["rows"] == rows()
    assert doc["deviations"] == ["SVM C fixed at 1"]
    assert doc["params"] == {"seed": 0, "patch": 120}


def test_write_is_byte_identical_and_writes_null(tmp_path):
    a, b = tmp_path / "a" / "nb.json", tmp_path / "b" / "nb.json"
    extra = {"score": np.float32(0.1), "n": np.int64(3), "bad": float("nan"), "arr": np.array([1.5, np.inf])}
    rs.write_results(a, rows(), **extra)
    first = a.read_bytes()
    rs.write_results(a, rows(), **extra)
    rs.write_results(b, rows(), **extra)
    assert a.read_bytes() == first == b.read_bytes()
    text = first.decode()
    assert "NaN" not in text and "Infinity" not in text
    doc = json.loads(text)
    assert doc["bad"] is None and doc["arr"] == [1.5, None] and doc["n"] == 3 and doc["score"] == 0.1
    assert doc["rows"][0]["folds"][3]["auc"] is None
    assert text.startswith('{\n "notebook": "nb"')  # indent=1, insertion order


def test_failing_write_leaves_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "nb.json"
    rs.write_results(path, rows())
    before = path.read_bytes()
    with pytest.raises(TypeError, match=r"results.rows\[0\].model"):
        rs.write_results(path, [rs.make_row("scratch", "CIFAR", cv=small_cv(), model=object())])
    assert path.read_bytes() == before

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        rs.write_results(path, rows()[:1])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["nb.json"]  # no temp file left behind


def test_validation_errors_name_the_key(tmp_path):
    good = rows()
    missing = [dict(good[0])]
    del missing[0]["test_auc"]
    with pytest.raises(ValueError, match="row 0 .*missing key 'test_auc'"):
        rs.write_results(tmp_path / "x.json", missing)
    wrong = [good[0], dict(good[1], approach="boosting")]
    with pytest.raises(ValueError, match="row 1 .*unknown approach 'boosting'"):
        rs.write_results(tmp_path / "x.json", wrong)
    with pytest.raises(ValueError, match="unknown source 'kaggle'"):
        rs.write_results(tmp_path / "x.json", [dict(good[0], source="kaggle")])
    assert not (tmp_path / "x.json").exists()

    # a hand-edited file with a bad row is rejected on read, naming the file and the key
    path = tmp_path / "edited.json"
    rs.write_results(path, good)
    doc = json.loads(path.read_text())
    del doc["rows"][2]["skipped"]
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="edited.json.*row 2.*'skipped'"):
        rs.read_results(path)


def test_write_rejects_leaking_folds(tmp_path):
    row = rows()[0]
    row["folds"][1]["train_patients"] = ["P1", "P3"]
    with pytest.raises(ValueError, match="leakage.*repeat 0 fold 1.*P3"):
        rs.write_results(tmp_path / "x.json", [row])


def test_results_table():
    table = rs.results_table({"rows": rows()})
    assert list(table.columns) == ["network", "source", "patch", "kernel", "layer", "train AUC", "test AUC",
                                   "95% CI", "skipped"]
    assert table["95% CI"].tolist() == ["[0.51, 0.60]", "[0.57, 0.71]", ""]
    assert table.loc[1, "test AUC"] == 0.65 and table.loc[1, "patch"] == 120 and table.loc[1, "kernel"] == "poly"
    assert pd.isna(table.loc[0, "patch"]) and np.isnan(table.loc[2, "test AUC"])
    assert table.loc[2, "skipped"].startswith("torchvision")


def test_row_from_real_cross_validation_roundtrips(tmp_path):
    patients = [f"P{i:02d}" for i in range(30)]
    labels = [i % 3 == 0 for i in range(30)]
    folds = ev.patient_folds(patients, labels, n_folds=5, repeats=3, seed=0)

    def fit_predict(fold):
        rng = np.random.default_rng(fold["fold"])
        y = np.asarray(fold["test_labels"])
        return ev.FoldOutput(None, pd.Series(y + rng.normal(size=len(y)), index=fold["test_patients"]))

    cv = ev.cross_validate(folds, fit_predict, progress=False)
    row = rs.make_row("layerwise", "GoogLeNet", source="imagenet", layer="inception3a", cv=cv)
    rs.write_results(tmp_path / "layers.json", [row])
    back = rs.read_results(tmp_path / "layers.json")["rows"][0]
    assert back == row
    assert back["test_auc"] == round(cv.test_auc, 4)
    assert len(back["folds"]) == 15


def test_oof_scores_are_stored_unrounded(tmp_path):
    cv = small_cv()
    cv.oof_scores = pd.Series([0.123456789012345, 12.000000123456, -3.3333333333333335, 1e-9 + 0.5],
                              index=["P1", "P2", "P3", "P4"])
    row = rs.make_row("scratch", "CIFAR", cv=cv)
    rs.write_results(tmp_path / "r.json", [row])
    back = rs.read_results(tmp_path / "r.json")["rows"][0]
    assert back["oof"] == cv.oof_scores.to_dict()  # exact: no 4-decimal or 6-significant-digit rounding
    assert back["test_auc"] == 0.5612  # the displayed AUCs stay rounded
    assert len(set(back["oof"].values())) == 4


def test_structure_names_each_row_and_is_free_of_auc_values():
    text = rs.structure(rows())
    lines = text.splitlines()
    assert lines[0] == ("scratch CIFAR none: 2 repeat(s) x 2 folds, 4 test patients each once per repeat; "
                        "AUCs and CI in [0, 1]")
    assert lines[2] == "transfer VGG16 imagenet: skipped (torchvision weights not available offline)"
    assert "0.56" not in text and "0.65" not in text  # the numbers that vary between CPUs are not in it


@pytest.mark.parametrize("damage, match", [
    (lambda r: r.update(test_auc=1.2), "outside"),
    (lambda r: r.update(ci95=[0.7, 0.5]), "reversed"),
    (lambda r: r["folds"][1].update(test_patients=["P1", "P3"], train_patients=["P2", "P4"]), "tested twice"),
    (lambda r: r["folds"][3].update(test_patients=["P3", "P5"]), "different patients"),
])
def test_structure_refuses_a_broken_row(damage, match):
    row = rs.make_row("scratch", "CIFAR", cv=small_cv())
    damage(row)
    with pytest.raises(ValueError, match=match):
        rs.structure([row])


def test_structure_names_the_swept_value():
    row = rs.make_row("transfer", "googlenet", "domain", 80, cv=small_cv(), fc_lr=0.005, sweep="fc_lr")
    assert rs.structure([row]).startswith("transfer googlenet domain 80 fc_lr 0.005: 2 repeat(s) x 2 folds")
