"""radiolib.ceiling: the best AUC a method could reach from the synthetic cohort's ground truth, on the run's folds;
none for real data; shown as each row's share in the tables of 02-05 and the report."""
import shutil
import types

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA

from radiolib import approaches, ceiling, context, dataset, evaluation, inputs, params, report, results
from radiolib.descriptor import duke_descriptor
from radiolib.synth import synthesize

FOLDS = dict(n_folds=5, repeats=2, seed=0, n_boot=300)


def _P(stem="01_preprocessing", **changes):
    return types.SimpleNamespace(**{**params.defaults(stem), **FOLDS, **changes})


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """40 patients with the subtype planted in the lesions (effect 1.5), few slices; its patch set (80 px)."""
    home = tmp_path_factory.mktemp("planted")
    root = synthesize(home / "cohort", patients=40, seed=1, effect=1.5, progress=False, _max_slices=8)
    ps = dataset.build_patch_set(root, [80], 1, 0, home / "cache", progress=False)
    return types.SimpleNamespace(root=root, ps=ps, ceiling=ceiling.of_patch_set(root, ps, _P()))


def _intensity_baseline(ps, folds):
    """A method that sees the images: logistic regression on each patient's mean test-patch intensity per channel
    (and its spread), cross-validated on the same folds."""
    from sklearn.linear_model import LogisticRegression
    test = ps.index[ps.index.role == "test"]
    arr = np.asarray(ps.patches(80)[test.index.to_numpy()], dtype=float)
    stats = pd.DataFrame(np.hstack([arr.mean(axis=(2, 3)), arr.std(axis=(2, 3))]), index=test.patient.values)
    x = stats.groupby(level=0).mean()

    def fit(fold):
        tr, te = x.loc[fold["train_patients"]], x.loc[fold["test_patients"]]
        model = LogisticRegression(max_iter=1000).fit((tr - tr.mean()) / tr.std(), fold["train_labels"])
        return {"train_scores": None,
                "test_scores": pd.Series(model.decision_function((te - tr.mean()) / tr.std()), index=te.index)}
    return evaluation.cross_validate(folds, fit, progress=False, n_boot=300)


def test_a_planted_cohort_has_a_ceiling_above_chance_and_above_a_method_on_the_images(planted):
    ceil, ps = planted.ceiling, planted.ps
    assert ceil.known and ceil.reason is None
    assert ceil.test_auc > 0.75 and ceil.ci95[0] > 0.5 and ceil.ci95[0] <= ceil.test_auc <= ceil.ci95[1]
    assert ceil.features == ("proliferation", "immune", "index_lesion_log_size")
    assert ceil.patients == len(ps.table) and len(ceil.repeat_aucs) == FOLDS["repeats"]
    baseline = _intensity_baseline(ps, inputs.folds(ps, _P()))
    assert baseline.test_auc < ceil.test_auc, (baseline.test_auc, ceil.test_auc)


def test_the_ceiling_is_the_statistic_of_the_tables_on_the_runs_folds(planted):
    """The same cross-validation as a row's: fold-mean AUC of the median repeat, its bootstrap CI (n_boot)."""
    ps, P = planted.ps, _P()
    x, _ = ceiling.phenotype(planted.root)
    cv = evaluation.cross_validate(inputs.folds(ps, P), ceiling._fit_predict(x), progress=False, n_boot=P.n_boot)
    assert planted.ceiling.test_auc == round(cv.test_auc, 4) and planted.ceiling.ci95 == tuple(round(v, 4)
                                                                                               for v in cv.ci95)
    other = ceiling.of_patch_set(planted.root, ps, _P(seed=7))  # other folds, another estimate
    assert other.repeat_aucs != planted.ceiling.repeat_aucs


def test_a_null_cohort_has_a_ceiling_whose_ci_contains_chance(tmp_path):
    root = synthesize(tmp_path / "null", patients=40, seed=1, effect=0.0, progress=False, _max_slices=8)
    labels = dataset.open_cohort(root, None, progress=False).table.set_index("patient").label.astype(int)
    folds = evaluation.patient_folds(labels.index.tolist(), labels.tolist(), 5, 2, 0)
    ceil = ceiling.compute(root, labels, folds, n_boot=300)
    assert ceil.known and ceil.ci95[0] < 0.5 < ceil.ci95[1], ceil


def test_a_wrong_cohort_is_refused_naming_the_patients(planted):
    labels = pd.Series([1, 0], index=["Breast_MRI_001", "Breast_MRI_999"])
    with pytest.raises(ValueError, match="Breast_MRI_999"):
        ceiling.compute(planted.root, labels, [], n_boot=10)


def _user_download(planted, folder):
    """The planted cohort as a user's download: its images and tables without the generator's sidecars."""
    shutil.copytree(planted.root, folder, ignore=shutil.ignore_patterns("synthetic_*", "gene_expression.csv",
                                                                        "cohort.json"))
    return folder


def test_real_data_has_no_ceiling_and_says_why(planted, tmp_path):
    user = _user_download(planted, tmp_path / "download")
    ceil = ceiling.of_patch_set(user, planted.ps, _P(data_dir=str(user)))
    assert not ceil.known and ceil.reason == ceiling.NO_TRUTH and "no ground-truth" in ceil.reason
    assert ceil.entries() == {"ceiling": None, "ceiling_reason": ceiling.NO_TRUTH}
    assert ceil.sentence().startswith("No ceiling: real data") and np.isnan(ceil.share(0.6))
    assert ceiling.of_patch_set(user, planted.ps, _P(n_folds=39)).reason == ceiling.NO_TRUTH  # before the folds


def test_the_real_duke_tables_have_no_ceiling():
    folder = SHARED_DATA / "duke"
    if not (folder / "Clinical_and_Other_Features.xlsx").is_file():
        pytest.skip("the real Duke tables are not in ../shared/data")
    assert ceiling.phenotype(folder) == (None, ceiling.NO_TRUTH)


def test_the_lgg_cohorts_phenotype_is_its_enhancement_amplitudes(faulty_lgg):
    x, reason = ceiling.phenotype(faulty_lgg)
    truth = pd.read_csv(faulty_lgg / "synthetic_truth.csv").set_index("patient")
    assert reason is None and list(x.columns) == ["rim", "patchy", "diffuse"] and list(x.index) == list(truth.index)
    assert ((x.rim > 0) == (truth.coc_cluster == 2)).all()  # the subtype reaches the images through it


def test_a_small_class_gives_no_ceiling_instead_of_failing_notebook_01(planted):
    ceil = ceiling.of_patch_set(planted.root, planted.ps, _P(n_folds=39))
    assert not ceil.known and "folds cannot be made" in ceil.reason


# ---------------------------------------------------------------------------------------------------------------
# Recorded by notebook 01, read by 02-05 and the report


def _write_01(folder, ps, P, ceil):
    return results.write_summary(folder / "results" / "01_preprocessing.json", P, patch_set=ps,
                                 included=ps.table[["patient", "label"]].to_dict("records"), **ceil.entries())


def test_notebooks_02_to_05_read_the_ceiling_notebook_01_recorded(planted, tmp_path):
    P = _P("04_deep_features_svm", run_dir=str(tmp_path))
    assert "has not written" in ceiling.of_run(tmp_path / "results", P, planted.ps).reason
    doc = _write_01(tmp_path, planted.ps, _P(run_dir=str(tmp_path)), planted.ceiling)
    assert doc["ceiling"]["test_auc"] == planted.ceiling.test_auc and doc["ceiling_reason"] is None
    ctx = context.RunContext(P, "04_deep_features_svm", progress=False, patch_set=planted.ps).load()
    assert ctx.ceiling_ == planted.ceiling
    stale = ceiling.of_run(tmp_path / "results", _P("04_deep_features_svm", synth_seed=5), planted.ps)
    assert not stale.known and "another run" in stale.reason and "synth_seed" in stale.reason
    results.write_results(tmp_path / "results" / "01_preprocessing.json", [])  # a file from before the ceiling
    assert "run notebook 01_preprocessing again" in ceiling.of_run(tmp_path / "results", P).reason


def _rows():
    run = results.make_row("scratch", "cifar", "none", 80, skipped="placeholder")
    run.update(skipped=None, train_auc=0.8, test_auc=0.62, ci95=[0.5, 0.74])
    return [run, results.make_row("scratch", "googlenet", "none", 80, skipped="not run here")]


def test_every_row_is_shown_as_a_share_of_the_ceiling(planted, capsys):
    ceil = planted.ceiling
    table = results.results_table(_rows(), ceil)
    assert list(table.columns).index(results.SHARE_COLUMN) == list(table.columns).index("95% CI") + 1
    assert table[results.SHARE_COLUMN][0] == round(0.62 / ceil.test_auc, 2) < 1
    assert np.isnan(table[results.SHARE_COLUMN][1])  # a skipped row has no AUC, so no share
    assert results.SHARE_COLUMN not in results.results_table(_rows())
    assert results.SHARE_COLUMN not in results.results_table(_rows(), ceiling.Ceiling.missing("real data"))
    shown = approaches.ApproachResult("scratch", duke_descriptor(), _rows(), ceiling=ceil).table()
    assert list(shown[results.SHARE_COLUMN].fillna(-1)) == list(table[results.SHARE_COLUMN].fillna(-1))
    assert "Ceiling from the ground truth: test AUC" in capsys.readouterr().out
    approaches.ApproachResult("scratch", duke_descriptor(), _rows(), ceiling=ceiling.Ceiling.missing("x")).table()
    assert "No ceiling: x." in capsys.readouterr().out


def test_the_report_shows_the_ceiling_beside_the_tables_and_the_shares(planted, tmp_path):
    P = _P(run_dir=str(tmp_path))
    _write_01(tmp_path, planted.ps, P, planted.ceiling)
    results.write_summary(tmp_path / "results" / "02_training_from_scratch.json",
                          _P("02_training_from_scratch", run_dir=str(tmp_path)), rows=_rows(), patch_set=planted.ps)
    docs = report.load_run(tmp_path)
    assert report.ceiling(docs) == planted.ceiling
    (table,) = report.tables(docs).values()
    assert table[results.SHARE_COLUMN][0] == planted.ceiling.share(0.62)
    page = report.to_html(tmp_path)
    assert "<h2>Ceiling</h2>" in page and f"test AUC {planted.ceiling.test_auc:.2f}" in page
    assert results.SHARE_COLUMN in page
    _write_01(tmp_path, planted.ps, P, ceiling.Ceiling.missing(ceiling.NO_TRUTH))
    docs = report.load_run(tmp_path)
    assert results.SHARE_COLUMN not in next(iter(report.tables(docs).values()))
    assert "No ceiling: real data" in report.to_html(tmp_path)
