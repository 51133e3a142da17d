"""The report's comparisons (pre-specified rows, the tables' fold-mean statistic, Holm), the deviations list and
the in-domain source's disjointness: issue 8, part 4."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from radiolib.run import inputs, params, protocol
from radiolib.run import results as rs
from radiolib.stats import evaluation as ev
from radiolib.views import report

PATIENTS = [f"Breast_MRI_{i:03d}" for i in range(1, 41)]
LABELS = [int(i % 3 == 0) for i in range(40)]


def _row(approach, network, source="none", signal=1.0, seed=0, **kw):
    """A results row from a real cross-validation whose fold models score on different scales."""
    folds = ev.patient_folds(PATIENTS, LABELS, n_folds=4, repeats=1, seed=0)

    def fit_predict(fold):
        rng = np.random.default_rng([seed, fold["fold"]])
        y = np.asarray(fold["test_labels"], dtype=float)
        s = 10.0 ** fold["fold"] * (signal * y + rng.normal(size=len(y))) + 50 * fold["fold"]
        return ev.FoldOutput(None, pd.Series(s, index=fold["test_patients"]))
    cv = ev.cross_validate(folds, fit_predict, progress=False)
    return rs.make_row(approach, network, source, cv=cv, **kw)


def _docs():
    included = [{"patient": p, "label": y} for p, y in zip(PATIENTS, LABELS, strict=True)]
    return {
        "01_preprocessing": {"included": included, "excluded": []},
        "02_training_from_scratch": {"rows": [_row("scratch", "cifar", signal=0.0, seed=1, patch_size=80),
                                              _row("scratch", "vgg_r", signal=3.0, seed=2, patch_size=80)]},
        "03_transfer_learning": {"rows": [
            rs.make_row("transfer", "googlenet", "imagenet", 80, skipped="no ImageNet weights offline"),
            _row("transfer", "googlenet", "domain", signal=0.5, seed=3, patch_size=80),
            _row("transfer", "googlenet", "random", signal=4.0, seed=4, patch_size=80)]},
        "04_deep_features_svm": {"rows": [
            _row("features", "googlenet", "domain", signal=2.5, seed=5, patch_size=120, kernel="poly", layer="flatten"),
            _row("features", "googlenet", "domain", signal=5.0, seed=6, patch_size=80, kernel="rbf", layer="flatten")],
            "parameters": {"n_boot": 300, "seed": 0}},
    }


def test_comparisons_use_the_pre_specified_rows_not_the_best_ones():
    docs = _docs()
    chosen = report.prespecified_rows(docs)
    assert chosen["scratch CIFAR"]["network"] == "cifar"  # although vgg_r has the higher test AUC
    assert chosen["transfer GoogLeNet"]["source"] == "domain"  # imagenet skipped: availability, never AUC
    assert (chosen["features GoogLeNet 120 px poly"]["patch_size"], chosen["features GoogLeNet 120 px poly"]["kernel"]
            ) == (120, "poly")
    best = report.best_rows(docs)
    assert best["scratch"]["network"] == "cifar" and best["features"]["patch_size"] == 120


def test_comparison_table_tests_the_tables_fold_mean_with_holm():
    docs = _docs()
    table = report.comparisons(docs)
    assert list(table.columns) == report.COMPARISON_COLUMNS
    assert len(table) == 3  # the layer-wise pair did not run
    chosen = report.prespecified_rows(docs)
    first = table.iloc[0]
    assert first["A"].startswith("features GoogLeNet 120 px poly") and first["B"].startswith("transfer GoogLeNet")
    assert first["AUC A (fold mean)"] == pytest.approx(chosen["features GoogLeNet 120 px poly"]["test_auc"], abs=1e-3)
    assert first["AUC B (fold mean)"] == pytest.approx(chosen["transfer GoogLeNet"]["test_auc"], abs=1e-3)
    np.testing.assert_allclose(table["p (Holm)"], ev.holm(table["p (paired bootstrap)"]), atol=1e-4)
    assert (table["p (Holm)"] >= table["p (paired bootstrap)"]).all()
    features_vs_scratch = table.iloc[1]  # strong fold-wise signal against none, pooled scores scrambled by scale
    assert features_vs_scratch["difference"] > 0.3 and features_vs_scratch["p (Holm)"] < 0.05


def test_the_report_page_names_the_pre_specified_rows_and_the_correction(tmp_path):
    import json
    (tmp_path / "results").mkdir()
    for stem, doc in _docs().items():
        (tmp_path / "results" / f"{stem}.json").write_text(json.dumps(doc))
    page = report.to_html(tmp_path)
    assert "pre-specified" in page and "Holm" in page and "paired bootstrap" in page


def _namespace(stem, **kw):
    return SimpleNamespace(**{**params.defaults(stem), **kw})


def test_deviations_name_googlenet_r_stride_and_vgg_r_widths():
    out = " | ".join(protocol.deviations(_namespace("02_training_from_scratch"), "02_training_from_scratch"))
    assert "GoogLeNet_R conv1 stride 2" in out and "388.77M" in out
    assert "VGG_R" in out and "width 4" in out
    assert "log-odds" in out
    only_cifar = protocol.deviations(_namespace("02_training_from_scratch", networks=["cifar"]),
                                     "02_training_from_scratch")
    assert not any("GoogLeNet_R" in d or "VGG_R" in d for d in only_cifar)


def test_deviations_state_a_layerwise_setting_other_than_the_papers():
    stem = "05_layerwise_analysis"
    assert not any("layer-wise SVMs at" in d for d in protocol.deviations(_namespace(stem), stem))
    out = protocol.deviations(_namespace(stem, layer_patch_size=80, kernel="rbf"), stem)
    assert any("patch 80, rbf kernel" in d for d in out)


def _fake_set(patients, excluded=()):
    return SimpleNamespace(table=pd.DataFrame({"patient": list(patients)}),
                           qc=pd.DataFrame({"patient": list(patients) + list(excluded)}))


def test_in_domain_source_sharing_patients_with_the_study_is_refused(monkeypatch):
    sets = {"study": _fake_set(["Breast_MRI_001", "Breast_MRI_002"], excluded=["Breast_MRI_009"]),
            "other": _fake_set(["Breast_MRI_100", "Breast_MRI_009", "Breast_MRI_002"])}
    monkeypatch.setattr(inputs, "patch_set", lambda P, progress=True: sets[P.data_dir])
    P = _namespace("03_transfer_learning", data_dir="study", domain_data_dir="other")
    with pytest.raises(ValueError, match="shares 2 patient.*Breast_MRI_002, Breast_MRI_009"):
        inputs.domain_source_set(P, progress=False)
    sets["other"] = _fake_set(["Breast_MRI_100"])
    assert inputs.domain_source_set(P, progress=False) is sets["other"]


def test_structure_summaries_hold_no_auc_and_refuse_broken_tables():
    docs = _docs()
    text = report.structure(docs)
    assert text.splitlines()[0].startswith("Table 3")
    assert "scratch cifar none 80: 1 repeat(s) x 4 folds, 40 test" in text
    assert "transfer googlenet imagenet 80: skipped (no ImageNet weights offline)" in text
    table = report.comparisons(docs)
    summary = report.comparison_structure(table)
    assert len(summary.splitlines()) == 3 and "40 patients" in summary
    assert str(table.iloc[0]["AUC A (fold mean)"]) not in summary
    broken = table.copy()
    broken.loc[0, "p (Holm)"] = broken.loc[0, "p (paired bootstrap)"] / 2 - 1e-3
    with pytest.raises(ValueError, match="Holm"):
        report.comparison_structure(broken)


def test_the_report_opens_with_a_figure_and_collapses_skips_and_shared_deviations(tmp_path):
    """Issue 25: "At a glance" (a figure, then sentences from the results) before the first table; skipped rows one
    line per cause; a deviation every notebook states listed once."""
    import json
    docs = _docs()
    docs["03_transfer_learning"]["rows"].append(
        rs.make_row("transfer", "vgg16", "imagenet", 80, skipped="no ImageNet weights offline"))
    shared = "synthetic cohort instead of the Duke images"
    for stem, doc in docs.items():
        doc["deviations"] = [shared, f"{stem} alone"]
    (tmp_path / "results").mkdir()
    for stem, doc in docs.items():
        (tmp_path / "results" / f"{stem}.json").write_text(json.dumps(doc))
    page = report.to_html(tmp_path)
    assert page.index("At a glance") < page.index("<img") < page.index("<table")
    assert page.count("no ImageNet weights offline") == 1 and "2 rows (03): no ImageNet weights offline" in page
    assert page.count(shared) == 1 and page.count(" alone</li>") == len(docs)
    sentences = report.glance_sentences(report.load_run(tmp_path))
    chosen = report.prespecified_rows(docs)
    aucs = sorted(r["test_auc"] for r in chosen.values())
    assert sentences[0].startswith(f"{len(chosen)} of the {len(report.PRESPECIFIED)} pre-specified rows ran on 40")
    assert f"from {aucs[0]:.2f}" in sentences[0] and f"to {aucs[-1]:.2f}" in sentences[0]
    assert any("of the 3 pre-specified comparisons differ" in s for s in sentences)
    table = report.glance_table(report.load_run(tmp_path))
    assert list(table.row) == list(chosen) and table["test AUC"].tolist() == [r["test_auc"] for r in chosen.values()]
