"""The steps of notebooks 06-09 (radiolib.steps.report, receptors, associations, gene_masking), called as a notebook
calls them: `step = X(P).fit()`, then its views and `write()`. A view before `fit()` says so; a cohort a notebook
does not apply to gives a fitted step whose views and results file carry the reason; the report step reads only
the run's own results files and prints what notebook 06 printed."""
import json
import types

import pytest

from radiolib.run import params
from radiolib.run.results import StaleResults
from radiolib.steps.associations import GeneAssociations
from radiolib.steps.base import NotFittedError
from radiolib.steps.gene_masking import GeneMasking
from radiolib.steps.receptors import ReceptorPrediction
from radiolib.steps.report import Report
from radiolib.views import report

VIEWS = [(ReceptorPrediction, "table"), (ReceptorPrediction, "describe"), (GeneAssociations, "counts"),
         (GeneAssociations, "genes"), (GeneMasking, "summary"), (GeneMasking, "write"), (Report, "tables"),
         (Report, "write")]


def _P(stem: str, tmp_path, **kw) -> types.SimpleNamespace:
    P = types.SimpleNamespace(**{**params.defaults(stem), "cache_dir": str(tmp_path / "cache"),
                                 "run_dir": str(tmp_path / "run"), **kw})
    if hasattr(P, "n_folds"):
        P.n_folds = 2
    return P


@pytest.mark.parametrize("step_class,view", VIEWS)
def test_a_view_before_fit_says_to_fit_first(step_class, view, tmp_path):
    step = step_class(_P(step_class.stem, tmp_path), progress=False)
    with pytest.raises(NotFittedError, match="call fit"):
        getattr(step, view)()
    assert "not fitted" in repr(step)
    assert not (tmp_path / "run").exists()  # the constructor only stores its configuration


def _bad_table(tmp_path) -> str:
    path = tmp_path / "genes.csv"
    path.write_text("patient\nBreast_MRI_001\n")
    return str(path)


@pytest.mark.parametrize("step_class", [GeneAssociations, GeneMasking])
@pytest.mark.parametrize("table,reason", [(None, "no gene table: set the parameter gene_table"),
                                          (_bad_table, "gene_table: genes.csv: expected a patient column")])
def test_a_gene_step_without_a_usable_gene_table_is_fitted_skipped_and_writes_why(step_class, table, reason, patch_set,
                                                                                 faulty_cohort, tmp_path):
    P = _P(step_class.stem, tmp_path, data_dir=str(faulty_cohort), gene_table=table and table(tmp_path))
    step = step_class(P, progress=False, patch_set=patch_set)
    fitted = step.fit()
    assert fitted is step and "not fitted" not in repr(step)
    assert step.skipped_.startswith(reason), step.skipped_
    assert not hasattr(step, "features_")  # skipped before the features are computed
    assert step.genes() == step.features() == step.save_figures() == f"Skipped: {step.skipped_}"
    doc = step.write()
    written = json.loads((tmp_path / "run" / "results" / f"{step_class.stem}.json").read_text())
    assert written["skipped"] == doc["skipped"] == step.skipped_ and written["rows"] == []
    assert written["deviations"] == step.context_.deviations_


def _run_folder(tmp_path, synth_seed=0):
    """A run folder with two results files: notebook 01's cohort and a notebook of no rows, with deviations."""
    folder = tmp_path / "run" / "results"
    folder.mkdir(parents=True)
    included = [{"patient": f"Breast_MRI_{i:03d}", "label": i % 2} for i in range(1, 9)]
    parameters = {"synth_seed": synth_seed}
    docs = {"01_preprocessing": {"included": included, "excluded": [{"patient": "Breast_MRI_009",
                                                                      "reason": "no tumour box: missing"}],
                                 "deviations": ["shared one", "shared two", "01's own"], "parameters": parameters},
            "02_training_from_scratch": {"rows": [], "deviations": ["shared one", "shared two"],
                                         "parameters": parameters}}
    for stem, doc in docs.items():
        (folder / f"{stem}.json").write_text(json.dumps(doc))
    return docs


def test_the_report_step_reads_the_run_prints_as_notebook_06_did_and_writes_the_page(tmp_path, capsys):
    docs = _run_folder(tmp_path)
    step = Report(_P("06_report", tmp_path))
    assert step.fit() is step and "not fitted" not in repr(step)
    assert step.found() == "results files found: 01_preprocessing, 02_training_from_scratch"
    assert list(step.cohort_flow().patients) == [9, 1, 8]
    # the text notebook 06 printed with its former cells
    shared, own = report.shared_deviations(docs)
    print("Every notebook:", *shared, sep="\n- ")
    for stem, items in own.items():
        print(f"\n{stem}:", *items, sep="\n- ")
    d = report.descriptor(docs)
    print(f"target {d.target}: {d.definition} ({d.positive} vs {d.negative});",
          f"reference: {d.reference}, {d.reference_task}")
    print(report.ceiling(docs).sentence())
    print(report.baseline_sentence(docs))
    before = capsys.readouterr().out
    print(step.deviations())
    print(step.describe())
    assert capsys.readouterr().out == before
    assert "- 01's own" in before and before.count("shared one") == 1
    page = step.write()
    assert page == tmp_path / "run" / "report.html" and page.read_text().startswith("<!DOCTYPE html>")
    assert not (tmp_path / "run" / "results" / "06_report.json").exists()  # the report writes no results file


def test_the_report_step_refuses_the_results_files_of_another_run(tmp_path):
    _run_folder(tmp_path, synth_seed=1)
    with pytest.raises(StaleResults, match="synth_seed"):
        Report(_P("06_report", tmp_path, synth_seed=0)).fit()
