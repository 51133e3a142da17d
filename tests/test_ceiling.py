"""radiolib.stats.ceiling: the best AUC a method could reach from the synthetic cohort's ground truth, on the run's
folds;
none for real data; shown as each row's share in the tables of 02-05 and the report."""
import shutil
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from radiolib.data import cohort, dataset
from radiolib.data.descriptor import duke_descriptor
from radiolib.data.synth import simulate_truth, synthesize
from radiolib.run import baselines, context, inputs, params, results
from radiolib.stats import ceiling, evaluation
from radiolib.steps import approaches
from radiolib.views import report

FOLDS = dict(n_folds=5, repeats=2, seed=0, n_boot=300)


def _P(stem="01_preprocessing", **changes):
    return types.SimpleNamespace(**{**params.defaults(stem), **FOLDS, **changes})


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """40 patients with the subtype planted in the lesions (effect 1.5), few slices; its patch set (80 px)."""
    home = tmp_path_factory.mktemp("planted")
    root = synthesize(home / "cohort", patients=40, seed=1, effect=1.5, progress=False, _max_slices=8)
    ps = dataset.build_patch_set(root, [80], 1, 0, home / "cache", progress=False)
    return types.SimpleNamespace(root=root, ps=ps, ceiling=baselines.ceiling_of_patch_set(root, ps, _P()))


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


def _sidecar_truth(root) -> pd.DataFrame:
    """The latents the generator wrote (synthetic_truth.csv) and the index lesion's in-plane size
    (synthetic_lesions.csv), read here from the sidecars' documented columns, not through radiolib.stats.ceiling."""
    truth = pd.read_csv(root / "synthetic_truth.csv", dtype={"patient": str}).set_index("patient")
    lesions = pd.read_csv(root / "synthetic_lesions.csv", dtype={"patient": str})
    first = lesions[lesions.lesion == 1].set_index("patient")
    return pd.DataFrame({"proliferation": truth.proliferation, "immune": truth.immune,
                         "log_area": np.log(first.radius_y_mm * first.radius_x_mm)})


def test_the_ceiling_is_logistic_regression_on_the_truth_fitted_on_each_training_fold(planted):
    """Recomputed apart with scikit-learn on the run's folds (another seed's: the ceiling follows the run's folds):
    each repeat's fold-mean test AUC, and the reported one the lower median repeat (as every row of the tables).
    Fails on a fit that sees the test patients, a flipped score or another phenotype."""
    P = _P(seed=7)
    ceil = baselines.ceiling_of_patch_set(planted.root, planted.ps, P)
    x, folds = _sidecar_truth(planted.root), inputs.folds(planted.ps, P)
    per_repeat: dict = {}
    for f in folds:
        model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x.loc[f["train_patients"]],
                                                                          f["train_labels"])
        auc = roc_auc_score(f["test_labels"], model.decision_function(x.loc[f["test_patients"]]))
        per_repeat.setdefault(f["repeat"], []).append(auc)
    expected = [np.mean(per_repeat[r]) for r in sorted(per_repeat)]
    assert ceil.repeat_aucs == pytest.approx(expected, abs=1e-4)
    assert ceil.test_auc == sorted(ceil.repeat_aucs)[(len(expected) - 1) // 2]


def _truth_only(folder, labels: pd.Series, rim):
    """A cohort folder with only the LGG generator's manifest and truth sidecar: `rim` as given, `patchy` and
    `diffuse` pure noise (no images: the answer is known from the truth alone)."""
    rng = np.random.default_rng(1)
    folder.mkdir()
    (folder / "cohort.json").write_text('{"generator": "radiolib.synth_lgg"}')
    pd.DataFrame({"patient": labels.index, "rim": rim, "patchy": rng.standard_normal(len(labels)),
                  "diffuse": rng.standard_normal(len(labels))}).to_csv(folder / "synthetic_truth.csv", index=False)
    return folder


def test_a_separable_truth_gives_a_ceiling_of_one_and_a_planted_shift_a_ceiling_that_grows_with_it(tmp_path):
    """Known answers: the rim amplitude separating the classes gives 1.0; rim = effect x label + the same noise gives
    a ceiling that rises with the effect (each positive-negative pair can only become ordered as it grows)."""
    rng = np.random.default_rng(0)
    ids = [f"TCGA-{i:02d}" for i in range(60)]
    y = pd.Series(rng.permutation(np.repeat([0, 1], 30)), index=ids)
    folds = evaluation.patient_folds(ids, y.to_numpy(), 3, 1, 0)
    noise = rng.standard_normal(len(y))

    def ceiling_of(name, rim):
        return ceiling.compute(_truth_only(tmp_path / name, y, rim), y, folds, n_boot=50)
    separable = ceiling_of("separable", 2.0 * y.to_numpy() - 1 + 0.1 * noise)
    assert separable.test_auc == 1.0 and separable.ci95 == (1.0, 1.0), separable
    assert separable.features == ("rim", "patchy", "diffuse") and separable.patients == len(y)
    grows = [ceiling_of(f"effect{e}", e * y.to_numpy() + noise).test_auc for e in (0.5, 1.0, 2.0)]
    assert grows[0] < grows[1] < grows[2] < 1.0, grows


def _truth_cohort(folder: Path, seed: int, effect: float) -> pd.Series:
    """The Duke generator's truth sidecars of a 60-patient cohort, without images (`simulate_truth`: the same tables
    `synthesize` writes), and its luminal-like labels as the clinical table would give them (Mol Subtype 0)."""
    truth, lesions, _ = simulate_truth(60, seed=seed, effect=effect)
    folder.mkdir()
    (folder / "cohort.json").write_text('{"generator": "radiolib.synth"}')
    truth.to_csv(folder / "synthetic_truth.csv", index=False)
    lesions.to_csv(folder / "synthetic_lesions.csv", index=False)
    return pd.Series((truth.mol_subtype == 0).astype(int).to_numpy(), index=truth.patient.astype(str))


@pytest.mark.slow
def test_the_ceiling_ci_is_calibrated_on_null_cohorts_and_finds_a_planted_one(tmp_path):
    """Over 30 null cohorts (effect 0) the ceiling's 95% CI excludes chance from above (a claimed signal) at most at
    the nominal 2.5% one-sided rate, within binomial noise; over 8 planted cohorts (effect 1) it excludes it in most.
    (A cross-validated AUC on null data reads a little below 0.5 on average, so the CI may miss 0.5 from below.)"""
    claims = 0
    for seed in range(30):
        y = _truth_cohort(tmp_path / f"null{seed}", seed, 0.0)
        folds = evaluation.patient_folds(y.index.tolist(), y.tolist(), 5, 1, seed)
        ceil = ceiling.compute(tmp_path / f"null{seed}", y, folds, n_boot=200)
        claims += ceil.ci95[0] > 0.5
    assert claims <= 3, f"{claims} of 30 null cohorts claim a ceiling above chance"  # P(>= 4 | 2.5%) = 0.04
    found = 0
    for seed in range(8):
        y = _truth_cohort(tmp_path / f"planted{seed}", seed, 1.0)
        folds = evaluation.patient_folds(y.index.tolist(), y.tolist(), 5, 1, seed)
        found += ceiling.compute(tmp_path / f"planted{seed}", y, folds, n_boot=200).ci95[0] > 0.5
    assert found >= 6, f"only {found} of 8 planted cohorts have a ceiling above chance"


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
    ceil = baselines.ceiling_of_patch_set(user, planted.ps, _P(data_dir=str(user)))
    assert not ceil.known and ceil.reason == ceiling.NO_TRUTH and "no ground-truth" in ceil.reason
    assert ceil.entries() == {"ceiling": None, "ceiling_reason": ceiling.NO_TRUTH}
    assert ceil.sentence().startswith("No ceiling: real data") and np.isnan(ceil.share(0.6))
    # no truth is found before the folds are made
    assert baselines.ceiling_of_patch_set(user, planted.ps, _P(n_folds=39)).reason == ceiling.NO_TRUTH


def test_the_real_duke_tables_have_no_ceiling_because_they_have_no_truth(planted, tmp_path):
    """The real download (the 922 annotated patients, no generator sidecar) gives no ceiling, for the missing truth;
    its tables with the generator's sidecars beside them give the phenotype of the planted cohort's ceiling. So it is
    the truth that decides, and a synthetic or empty folder taken for the real one fails."""
    folder = SHARED_DATA / "duke"
    if not (folder / "Clinical_and_Other_Features.xlsx").is_file():
        pytest.skip("the real Duke tables are not in ../shared/data")
    assert cohort.read_boxes(folder / "Annotation_Boxes.csv").patient.nunique() == 922  # the real collection's
    labels = planted.ps.table.set_index("patient").label.astype(int)
    folds = inputs.folds(planted.ps, _P())
    real = ceiling.compute(folder, labels, folds, n_boot=FOLDS["n_boot"])
    assert not real.known and real.reason == ceiling.NO_TRUTH
    assert real.entries() == {"ceiling": None, "ceiling_reason": ceiling.NO_TRUTH}
    beside = tmp_path / "duke"
    beside.mkdir()
    for name in ("Annotation_Boxes.csv", "Clinical_and_Other_Features.xlsx"):
        shutil.copyfile(folder / name, beside / name)
    for name in ("synthetic_truth.csv", "synthetic_lesions.csv", "cohort.json"):
        shutil.copyfile(planted.root / name, beside / name)
    x, reason = ceiling.phenotype(beside)  # what the planted cohort's ceiling was computed from
    assert reason is None and x.equals(ceiling.phenotype(planted.root)[0]) and planted.ceiling.known


def test_the_lgg_cohorts_phenotype_is_its_enhancement_amplitudes(faulty_lgg):
    x, reason = ceiling.phenotype(faulty_lgg)
    truth = pd.read_csv(faulty_lgg / "synthetic_truth.csv").set_index("patient")
    assert reason is None and list(x.columns) == ["rim", "patchy", "diffuse"] and list(x.index) == list(truth.index)
    assert ((x.rim > 0) == (truth.coc_cluster == 2)).all()  # the subtype reaches the images through it


def test_a_small_class_gives_no_ceiling_instead_of_failing_notebook_01(planted):
    ceil = baselines.ceiling_of_patch_set(planted.root, planted.ps, _P(n_folds=39))
    assert not ceil.known and "folds cannot be made" in ceil.reason


# ---------------------------------------------------------------------------------------------------------------
# Recorded by notebook 01, read by 02-05 and the report


def _write_01(folder, ps, P, ceil):
    return results.write_summary(folder / "results" / "01_preprocessing.json", P, patch_set=ps,
                                 included=ps.table[["patient", "label"]].to_dict("records"), **ceil.entries())


def test_notebooks_02_to_05_read_the_ceiling_notebook_01_recorded(planted, tmp_path):
    P = _P("04_deep_features_svm", run_dir=str(tmp_path))
    assert "has not written" in baselines.ceiling_of_run(tmp_path / "results", P, planted.ps).reason
    doc = _write_01(tmp_path, planted.ps, _P(run_dir=str(tmp_path)), planted.ceiling)
    assert doc["ceiling"]["test_auc"] == planted.ceiling.test_auc and doc["ceiling_reason"] is None
    ctx = context.RunContext(P, "04_deep_features_svm", progress=False, patch_set=planted.ps).load()
    assert ctx.ceiling_ == planted.ceiling
    stale = baselines.ceiling_of_run(tmp_path / "results", _P("04_deep_features_svm", synth_seed=5), planted.ps)
    assert not stale.known and "another run" in stale.reason and "synth_seed" in stale.reason
    results.write_results(tmp_path / "results" / "01_preprocessing.json", [])  # a file from before the ceiling
    assert "run notebook 01_preprocessing again" in baselines.ceiling_of_run(tmp_path / "results", P).reason


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
