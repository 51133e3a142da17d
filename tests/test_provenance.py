"""Results files record the data and parameters they came from; the report refuses another run's files."""
import json
from types import SimpleNamespace

import pytest

from radiolib.run import params, results
from radiolib.views import report


def _P(stem, run, **changes):
    return SimpleNamespace(**{**params.defaults(stem), "run_dir": str(run), **changes})


def _write(run, stem, data="cohort-a", **changes):
    P = _P(stem, run, **changes)
    return results.write_summary(run / "results" / f"{stem}.json", P, patch_set=SimpleNamespace(fingerprint=data),
                                 included=[{"patient": "P1", "label": 1}])


def test_every_results_file_records_its_data_and_run_parameters(tmp_path):
    doc = _write(tmp_path, "02_training_from_scratch", synth_seed=4)
    prov = doc["provenance"]
    assert prov["data_fingerprint"] == "cohort-a"
    assert prov["parameters"]["synth_seed"] == 4 and prov["parameters"]["n_folds"] == 3
    assert {"synth_patients", "synth_effect", "target", "patch_sizes", "seed", "repeats"} <= set(prov["parameters"])
    assert doc["parameters"]["synth_seed"] == 4  # the earlier key is kept
    user = results.provenance(_P("02_training_from_scratch", tmp_path, data_dir="/data/duke"))
    assert user["parameters"]["data"] == "user folder" and "synth_seed" not in user["parameters"]


def test_the_report_refuses_results_made_with_another_synthetic_seed(tmp_path):
    _write(tmp_path, "01_preprocessing", synth_seed=1)
    _write(tmp_path, "02_training_from_scratch", synth_seed=0)  # left over from an earlier run into this folder
    with pytest.raises(results.StaleResults) as err:
        report.load_run(tmp_path, _P("06_report", tmp_path, synth_seed=1))
    msg = str(err.value)
    assert "02_training_from_scratch.json" in msg and "synth_seed 0 != 1" in msg and "01_preprocessing" not in msg
    with pytest.raises(results.StaleResults, match="02_training_from_scratch.json.*synth_seed 0 != 1.*01_prepro"):
        report.to_html(tmp_path)  # without parameters: the files are compared with notebook 01's
    _write(tmp_path, "02_training_from_scratch", synth_seed=1)
    assert set(report.load_run(tmp_path, _P("06_report", tmp_path, synth_seed=1))) == {"01_preprocessing",
                                                                                       "02_training_from_scratch"}


def test_other_data_or_other_folds_are_refused_naming_the_key(tmp_path):
    _write(tmp_path, "01_preprocessing")  # 01 makes the study's folds too (for the ceiling): n_folds 3
    _write(tmp_path, "02_training_from_scratch", n_folds=3)
    _write(tmp_path, "03_transfer_learning", n_folds=5)
    with pytest.raises(results.StaleResults, match=r"03_transfer_learning.json.*n_folds 5 != 3.*01_preprocessing"):
        report.load_run(tmp_path, _P("06_report", tmp_path))
    _write(tmp_path, "03_transfer_learning", n_folds=3, data="cohort-b")
    with pytest.raises(results.StaleResults, match=r"03_transfer_learning.json.*data cohort-b != cohort-a"):
        report.load_run(tmp_path)


def test_notebook_05_refuses_a_notebook_04_file_of_another_run(tmp_path):
    _write(tmp_path, "04_deep_features_svm", synth_patients=30)
    P5 = _P("05_layerwise_analysis", tmp_path)
    ps = SimpleNamespace(fingerprint="cohort-a")
    with pytest.raises(results.StaleResults, match=r"04_deep_features_svm.json.*synth_patients 30 != 24"):
        results.check_earlier(tmp_path / "results", ["04_deep_features_svm"], P5, ps)
    _write(tmp_path, "04_deep_features_svm")
    results.check_earlier(tmp_path / "results", ["04_deep_features_svm", "03_transfer_learning"], P5, ps)


def test_files_of_older_versions_are_compared_by_their_parameters(tmp_path):
    _write(tmp_path, "01_preprocessing", synth_seed=1)
    path = tmp_path / "results" / "02_training_from_scratch.json"
    _write(tmp_path, "02_training_from_scratch", synth_seed=0)
    doc = json.loads(path.read_text())
    doc.pop("provenance")
    path.write_text(json.dumps(doc))
    with pytest.raises(results.StaleResults, match="synth_seed 0 != 1"):
        report.load_run(tmp_path)
