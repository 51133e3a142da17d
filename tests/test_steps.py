"""radiolib.steps: a notebook's step is configured, fitted, then read; before `fit()` it holds no result and its
views say so; its results file is the document the former call path (notebook 01's cells, `approaches.X(ctx)` and
`ctx.write_results`) wrote on the same data."""
import json
import re
import types
from pathlib import Path

import pandas as pd
import pytest

from radiolib.learn import handcrafted
from radiolib.run import baselines, context, params, protocol, results
from radiolib.steps import STEPS, approaches, step_for
from radiolib.steps.base import NotFittedError
from radiolib.steps.deep_features import DeepFeaturesSVM
from radiolib.steps.preprocessing import NO_RESAMPLING, Preprocessing
from radiolib.steps.scratch import TrainingFromScratch

TINY = dict(n_folds=2, repeats=1, n_boot=50, n_jobs=1, epochs=1, patches_per_epoch=32, batch_size=16,
            pretrained_input_scale=0.25)


def _params(stem, tmp_path, **overrides):
    """The notebook's defaults made tiny, caches and the run folder under tmp_path."""
    keys = params.defaults(stem)
    tiny = {k: v for k, v in TINY.items() if k in keys}
    return types.SimpleNamespace(**{**keys, **tiny, "cache_dir": str(tmp_path / "cache"),
                                    "run_dir": str(tmp_path / "run"), **overrides})


def _written(path) -> dict:
    return json.loads(path.read_text())


def _without_provenance(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "provenance"}


def _old_preprocessing_doc(P, ps, data_dir) -> dict:
    """Notebook 01's cells before the step: its ceiling, baseline, deviations and write_summary call."""
    paths = context.run_paths(P)
    ceil = baselines.ceiling_of_patch_set(data_dir, ps, P)
    base = baselines.baseline_of_patch_set(data_dir, ps, P, progress=False)
    deviations = protocol.deviations(P, "01_preprocessing", ps)
    results.write_summary(
        paths.results / "01_preprocessing.json", P, deviations=deviations, patch_set=ps,
        included=ps.table[["patient", "label"]].to_dict("records"), excluded=ps.qc.to_dict("records"),
        patch_counts=ps.counts(), target_spacing_mm=ps.meta["target_spacing_mm"],
        patch_pixels=ps.meta["patch_pixels"], **ceil.entries(), **handcrafted.entries(base))
    return _written(paths.results / "01_preprocessing.json")


def test_preprocessing_fits_then_writes_notebook_01s_document(faulty_cohort, patch_set, tmp_path):
    P = _params("01_preprocessing", tmp_path, data_dir=str(faulty_cohort), n_folds=2)
    step = Preprocessing(P, progress=False, patch_set=patch_set)
    assert not hasattr(step, "patch_set_") and not hasattr(step, "ceiling_") and "not fitted" in repr(step)
    for view in (step.flow_table, step.counts, step.write, step.save_figures):
        with pytest.raises(NotFittedError, match="Preprocessing is not fitted"):
            view()
    old = _old_preprocessing_doc(P, patch_set, faulty_cohort)

    assert step.fit() is step and "fitted" in repr(step)
    assert step.patch_set_ is patch_set and step.context_.patch_set_ is patch_set  # given: not built again
    assert step.target_spacing_ == patch_set.meta["target_spacing_mm"] and step.ceiling_.known
    assert len(step.cohort_.table) + len(step.cohort_.qc) == 14  # every patient folder of the cohort
    assert len(step.exclusions()) == len(patch_set.qc) > 0 and step.counts().equals(pd.Series(patch_set.counts()))
    doc = step.write()
    assert doc == _written(step.context_.results_path) and step.context_.results_path == tmp_path / "run" / \
        "results" / "01_preprocessing.json"
    assert _without_provenance(doc) == _without_provenance(old)
    assert doc["provenance"] == old["provenance"]

    step.save_figures()
    drawn = {p.stem for p in step.context_.paths_.figures.glob("*.png")}
    assert drawn == set(step.figures) - ({"01_resampling"} if step._resampling() == NO_RESAMPLING else set())
    assert {"01_channels", "01_montage", "01_test_layout", "01_class_balance", "01_explorer_static"} <= drawn


def test_training_from_scratch_writes_what_approaches_scratch_wrote(patch_set, tmp_path):
    P = _params("02_training_from_scratch", tmp_path, networks=["cifar"], input_scale=0.4, lr_sweep=[1e-4, 5e-4],
                sweep_network="cifar")
    step = TrainingFromScratch(P, progress=False, patch_set=patch_set)
    assert not hasattr(step, "context_") and not hasattr(step, "result_")
    for view in (step.table, step.sweep_table, step.structure, step.write, step.save_figures, step.describe):
        with pytest.raises(NotFittedError):
            view()
    ctx = context.RunContext(P, step.stem, progress=False, patch_set=patch_set).load()
    ctx.write_results(approaches.scratch(ctx).all_rows)  # the former call path (trains; the step reads it back)
    old = _written(ctx.results_path)
    ctx.results_path.unlink()

    assert step.fit() is step
    assert step.context_.patch_set_ is patch_set and [f["test_patients"] for f in step.context_.folds_] == \
        [f["test_patients"] for f in ctx.folds_]
    assert [r["network"] for r in step.result_.rows] == ["cifar"] and len(step.result_.sweep_rows) == 2
    assert step.structure() == results.structure(step.result_.rows)
    assert step.describe() == ctx.describe() and "2 folds" in step.describe()
    assert list(step.architecture_table().index) == ["cifar"]
    doc = step.write()
    assert doc == _written(ctx.results_path) == old
    step.save_figures("02_lr_sweep")
    assert [p.name for p in step.context_.paths_.figures.iterdir()] == ["02_lr_sweep.png"]


def test_deep_features_svm_writes_what_approaches_features_svm_wrote(patch_set, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no ImageNet weights here: its rows are skipped
    P = _params("04_deep_features_svm", tmp_path, networks=["googlenet"], sources=["random", "imagenet"],
                kernels=["linear"], patch_sizes=[120], svm_max_train=60)
    step = DeepFeaturesSVM(P, progress=False, patch_set=patch_set)
    with pytest.raises(NotFittedError):
        step.feature_table()
    ctx = context.RunContext(P, step.stem, progress=False, patch_set=patch_set).load()
    ctx.write_results(approaches.features_svm(ctx).rows)
    old = _written(ctx.results_path)
    ctx.results_path.unlink()

    step.fit()
    assert list(step.feature_table().source) == ["random"] and set(step.features_.features) == \
        {("googlenet", "random", 120)}
    assert list(step.source_table().loc["googlenet"] == "available") == [True, False]
    assert step.write() == old and [bool(r["skipped"]) for r in old["rows"]] == [False, True]


def test_every_notebook_calls_its_step_the_same_way():
    """Each notebook 01-09 has a step in the registry, and its code calls it once as `step = <Class>(P).fit()`."""
    notebooks = sorted(Path(__file__).resolve().parents[1].glob("notebooks/0*.ipynb"))
    assert [nb.stem for nb in notebooks] == list(STEPS)
    for nb in notebooks:
        code = "\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code")
        calls = re.findall(r"^step = (\w+)\(P\)\.fit\(\)(?:  #.*)?$", code, flags=re.M)
        assert calls == [step_for(nb.stem).__name__], f"{nb.name}: {calls}"
    with pytest.raises(KeyError, match="02_training_from_scratch"):
        step_for("02_training")
