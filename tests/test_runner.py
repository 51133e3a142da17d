"""The study runner on fixture notebooks: a hung cell times out, a dead kernel is retried once, run.json tells the
state of every notebook, and a run folder never mixes two runs' parameters."""
import json
import time
from pathlib import Path

import nbformat
import pytest

from radiolib.run import cli, study


def _notebook(path: Path, *cells: str) -> Path:
    """A notebook with a tagged parameters cell (papermill injects after it) and the given code cells."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("run_dir = None\ndata_dir = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params] + [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


HANG = "import time\ntime.sleep(10 ** 6)  # never returns"
DIE_ONCE = ("import os, pathlib\n"  # the kernel is killed the first time only (a marker file remembers)
            "marker = pathlib.Path(data_dir) / 'killed-once'\n"
            "if not marker.exists():\n"
            "    marker.write_text('x')\n"
            "    os.kill(os.getpid(), 9)")
COUNT = ("import pathlib\n"  # how many times the notebook was started
         "counter = pathlib.Path(data_dir) / 'runs'\n"
         "counter.write_text(str(int(counter.read_text()) + 1 if counter.exists() else 1))")
RESULT = ("import json, pathlib\n"
          "out = pathlib.Path(run_dir, 'results')\n"
          "out.mkdir(parents=True, exist_ok=True)\n"
          "(out / f'{stem}.json').write_text(json.dumps({{'notebook': '{stem}'}}))")


@pytest.mark.slow
def test_a_cell_that_never_returns_ends_within_its_timeout_naming_notebook_and_cell(tmp_path):
    nb = _notebook(tmp_path / "hung.ipynb", "x = 1", HANG)
    start = time.perf_counter()
    with pytest.raises(study.NotebookFailed) as err:
        study.execute_notebook(nb, tmp_path / "out.ipynb", {"data_dir": str(tmp_path)}, timeout=5, retries=1)
    elapsed = time.perf_counter() - start
    message = str(err.value)
    assert "notebook hung failed at cell 3 `import time`" in message  # 0: parameters, 1: injected, 2: x = 1
    assert "did not finish within 5 s" in message and "on all 2 attempts" in message
    assert [f.kind for f in err.value.failures] == ["timeout", "timeout"]
    # the feature: it ends. Bound: 2 attempts x 5 s, plus 2 kernel starts and shutdowns on a busy machine (generous)
    assert elapsed < 2 * 5 + 120, f"two attempts of a 5 s timeout took {elapsed:.0f} s"
    assert (tmp_path / "out.ipynb").is_file()  # the outputs so far, for the user to look at


def test_a_kernel_killed_mid_cell_is_retried_once_and_the_notebook_completes(tmp_path):
    nb = _notebook(tmp_path / "dies.ipynb", COUNT, DIE_ONCE, "answer = 42\nprint('answer', answer)")
    attempts = study.execute_notebook(nb, tmp_path / "out.ipynb", {"data_dir": str(tmp_path)}, timeout=60)
    assert attempts == 2 and (tmp_path / "runs").read_text() == "2"
    out = nbformat.read(tmp_path / "out.ipynb", 4)
    assert "answer 42" in out.cells[-1].outputs[0]["text"]


def test_a_kernel_killed_on_both_attempts_fails_with_the_cell(tmp_path):
    nb = _notebook(tmp_path / "dies.ipynb", "import os\nos.kill(os.getpid(), 9)")
    with pytest.raises(study.NotebookFailed) as err:
        study.execute_notebook(nb, tmp_path / "out.ipynb", {"data_dir": str(tmp_path)}, timeout=60)
    assert [f.kind for f in err.value.failures] == ["dead kernel", "dead kernel"]
    assert "cell 2 `import os`" in str(err.value) and "kernel died" in str(err.value)


def test_an_error_in_a_cell_is_not_retried(tmp_path):
    nb = _notebook(tmp_path / "bad.ipynb", COUNT, "raise ValueError('patient Breast_MRI_007 has no box')")
    with pytest.raises(study.NotebookFailed) as err:
        study.execute_notebook(nb, tmp_path / "out.ipynb", {"data_dir": str(tmp_path)}, timeout=60)
    assert (tmp_path / "runs").read_text() == "1"
    assert "cell 3 `raise ValueError" in str(err.value) and "Breast_MRI_007 has no box" in str(err.value)


# ---------------------------------------------------------------------------------------------------------------
# run_study and the CLI over fixture notebooks named like the study's


@pytest.fixture
def fixture_study(tmp_path, monkeypatch):
    """Notebooks 01 (writes its results), 02 (kernel killed once, then writes), 03 (hangs when told to)."""
    nbs, data = tmp_path / "notebooks", tmp_path / "data"
    data.mkdir()
    _notebook(nbs / "01_preprocessing.ipynb", RESULT.format(stem="01_preprocessing"))
    _notebook(nbs / "02_training_from_scratch.ipynb", DIE_ONCE, RESULT.format(stem="02_training_from_scratch"))
    _notebook(nbs / "03_transfer_learning.ipynb",
              "import pathlib\nif (pathlib.Path(data_dir) / 'hang').exists():\n    import time; time.sleep(10 ** 6)",
              RESULT.format(stem="03_transfer_learning"))
    (tmp_path / "params" / "fx").mkdir(parents=True)
    monkeypatch.setattr(study, "repo_notebooks", lambda: nbs)
    return tmp_path, ["01_preprocessing", "02_training_from_scratch", "03_transfer_learning"]


def _cli(home: Path, *extra: str) -> int:
    return cli.main(["study", "--profile", "fx", "--params", str(home / "params"), "--data", str(home / "data"),
                     "--out", str(home / "run"), "-p", "cell_timeout=5", "--notebooks",
                     "01_preprocessing", "02_training_from_scratch", "03_transfer_learning", *extra])


@pytest.mark.slow
def test_run_json_states_each_notebook_and_a_changed_parameter_is_refused(fixture_study, capsys):
    home, stems = fixture_study
    assert _cli(home) == 0
    doc = json.loads((home / "run" / "run.json").read_text())
    assert doc["status"] == "done" and doc["notebooks"] == stems and doc["cell_timeout"] == 5
    assert [doc["state"][s]["status"] for s in stems] == ["done"] * 3
    assert doc["state"]["02_training_from_scratch"]["attempts"] == 2  # killed once, retried
    assert list(doc["seconds"]) == stems and doc["parameters"]["01_preprocessing"]["profile"] == "fx"

    capsys.readouterr()
    assert _cli(home, "-p", "seed=1", "-p", "n_folds=5") == 2
    err = capsys.readouterr().err
    assert "other parameters" in err and "seed (01_preprocessing): 0 -> 1" in err and "n_folds" in err
    assert "--fresh" in err and "another --out" in err
    assert json.loads((home / "run" / "run.json").read_text()) == doc, "a refused run changed the folder"

    assert _cli(home, "-p", "cell_timeout=30") == 0  # same parameters (the timeout is not one): continued
    assert json.loads((home / "run" / "run.json").read_text())["status"] == "done"

    assert _cli(home, "-p", "seed=1", "--fresh") == 0
    doc = json.loads((home / "run" / "run.json").read_text())
    assert doc["parameters"]["01_preprocessing"]["seed"] == 1 and doc["status"] == "done"


@pytest.mark.slow
def test_a_second_failure_ends_the_run_with_the_cell_and_the_command_to_resume(fixture_study, capsys):
    home, stems = fixture_study
    (home / "data" / "hang").write_text("x")
    assert _cli(home) == 1
    err = capsys.readouterr().err
    assert "notebook 03_transfer_learning failed at cell 2 `import pathlib`" in err
    assert "did not finish within 5 s" in err and "To resume:" in err
    doc = json.loads((home / "run" / "run.json").read_text())
    assert doc["status"] == "failed" and doc["message"] in err
    assert [doc["state"][s]["status"] for s in stems] == ["done", "done", "failed"]
    assert doc["state"]["03_transfer_learning"]["cell"] == 2 and "5 s" in doc["state"]["03_transfer_learning"]["reason"]
    assert not (home / "run" / "results" / "03_transfer_learning.json").exists()
    resume = doc["resume"]
    assert resume.endswith("--notebooks 03_transfer_learning") and "cell_timeout=5" in resume

    (home / "data" / "hang").unlink()  # whatever made it hang is gone: the resume command completes the run
    argv = resume.split(" -m radiolib ", 1)[1].split()
    assert cli.main(argv) == 0
    doc = json.loads((home / "run" / "run.json").read_text())
    assert doc["status"] == "done" and [doc["state"][s]["status"] for s in stems] == ["done"] * 3


def test_a_notebook_not_reached_is_marked_not_started(fixture_study, capsys):
    home, stems = fixture_study
    _notebook(home / "notebooks" / "02_training_from_scratch.ipynb", "raise ValueError('no patient left')")
    assert _cli(home) == 1
    doc = json.loads((home / "run" / "run.json").read_text())
    assert [doc["state"][s]["status"] for s in stems] == ["done", "failed", "not started"]
    assert doc["state"]["02_training_from_scratch"]["attempts"] == 1  # an error in a cell: no retry


def test_a_folder_with_run_files_but_no_run_json_is_refused(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "02_training_from_scratch.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="--fresh"):
        study.open_run_folder(tmp_path, {"01_preprocessing": {"seed": 0}})
    assert study.open_run_folder(tmp_path, {"01_preprocessing": {"seed": 0}}, fresh=True) == {}
    assert not (tmp_path / "results").exists() and (tmp_path / "notes.txt").read_text() == "mine"


def test_a_run_of_other_notebooks_on_another_cohort_is_refused():
    old = {"01_preprocessing": {"synth_patients": 24, "seed": 0, "run_dir": "/a"}}
    moved = {"01_preprocessing": {"synth_patients": 24, "seed": 0, "run_dir": "/b"}}  # where: not a parameter
    assert study.parameter_differences(old, moved) == []
    same = {"02_training_from_scratch": {"synth_patients": 24, "seed": 0, "epochs": 3}}
    assert study.parameter_differences(old, same) == []
    other = {"02_training_from_scratch": {"synth_patients": 50, "seed": 0, "epochs": 3}}
    assert study.parameter_differences(old, other) == \
        ["synth_patients (02_training_from_scratch): 24 -> 50"]


def test_an_interrupted_notebook_does_not_mark_its_unrun_cells_as_completed(tmp_path):
    nb = _notebook(tmp_path / "hung.ipynb", "x = 1", HANG, "y = 2")
    with pytest.raises(study.NotebookFailed):
        study.execute_notebook(nb, tmp_path / "out.ipynb", {"data_dir": str(tmp_path)}, timeout=3, retries=0)
    cells = nbformat.read(tmp_path / "out.ipynb", 4).cells
    status = [c.metadata.papermill["status"] for c in cells]
    assert status[:3] == ["completed"] * 3  # parameters, papermill's injected cell, x = 1
    assert status[3:] == ["failed", "pending"]  # the cell stopped by its timeout, and the one never run
    assert cells[-1].execution_count is None and cells[-1].outputs == []
