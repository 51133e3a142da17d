"""The whole study as one run (notebooks 01 to 06) on a tiny profile: report, determinism, resume, warm re-run."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from radiolib import params, study

ROOT = Path(__file__).resolve().parents[1]
TINY = {  # the smallest study that still runs every approach
    "synth_patients": 20, "n_folds": 3, "epochs": 1, "patches_per_epoch": 64, "lr_sweep": [1e-4],
    "networks": {"02_training_from_scratch": ["cifar"]}, "fc_lr_sweep": [1e-3], "domain_patients": 8,
    "domain_epochs": 1, "domain_patches_per_epoch": 128, "kernels": ["linear"], "svm_max_train": 200,
    "n_boot": 200,
}


def _tiny_profile(folder: Path) -> Path:
    """The smoke profile (the defaults) made smaller: TINY's shared keys in study.yaml, a notebook's own beside."""
    (folder / "tiny").mkdir(parents=True, exist_ok=True)
    shared = {k: v for k, v in TINY.items() if not isinstance(v, dict)}
    (folder / "tiny" / "study.yaml").write_text(yaml.safe_dump({"profile": "tiny", **shared}))
    for stem in params.NOTEBOOKS:
        own = {k: v[stem] for k, v in TINY.items() if isinstance(v, dict) and stem in v}
        if own:
            (folder / "tiny" / f"{stem}.yaml").write_text(yaml.safe_dump(own))
    return folder


def _cli(out: Path, cache: Path, params_dir: Path, **kw):
    cmd = [sys.executable, "-m", "radiolib", "study", "--profile", "tiny", "--params", str(params_dir),
           "--out", str(out), "-p", f"cache_dir={cache}"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, **kw)


def _results(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((run / "results").glob("*.json"))}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    home = tmp_path_factory.mktemp("tiny")
    profiles = _tiny_profile(home / "params")
    proc = _cli(home / "run", home / "cache", profiles)
    output, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, output[-3000:]
    return home, profiles, output


@pytest.mark.slow
def test_one_command_runs_01_to_06_and_points_to_the_report(first_run):
    home, _, output = first_run
    run = home / "run"
    assert sorted(p.stem for p in run.glob("*.ipynb")) == list(params.NOTEBOOKS)
    assert set(_results(run)) == {f"{s}.json" for s in params.NOTEBOOKS if s != "06_report"}
    assert "report.html" in output.splitlines()[-1]
    record = json.loads((run / "run.json").read_text())
    assert list(record["seconds"]) == list(params.NOTEBOOKS) and record["status"] == "done"
    assert {s: r["status"] for s, r in record["state"].items()} == {s: "done" for s in params.NOTEBOOKS}


@pytest.mark.slow
def test_the_report_holds_every_table_and_figure(first_run):
    home, _, _ = first_run
    page = (home / "run" / "report.html").read_text()
    for heading in ("Cohort flow", "Table 3", "Table 4", "Table 5", "Table 6", "paired bootstrap", "Holm",
                    "Deviations from the paper", "Provenance"):
        assert heading in page, heading
    figures = sorted((home / "run" / "figures").glob("*.png"))
    assert page.count("data:image/png;base64,") == len(figures) >= 10
    for name in ("02_learning_curves", "03_learning_curves", "04_roc", "05_layerwise", "01_channels"):
        assert f">{name}<" in page, name
    assert str(home) not in page and "/root/" not in page and "/home/" not in page
    assert "src='http" not in page and 'src="http' not in page  # self-contained


@pytest.mark.slow
def test_every_results_file_is_free_of_leakage(first_run):
    from radiolib.evaluation import check_no_leakage
    home, _, _ = first_run
    for name, raw in _results(home / "run").items():
        doc = json.loads(raw)
        check_no_leakage(doc)
        assert doc["deviations"], name


@pytest.mark.slow
def test_a_warm_rerun_reuses_every_cache_and_gives_identical_results(first_run):
    home, profiles, _ = first_run
    before = sorted(p.relative_to(home / "cache") for p in (home / "cache").rglob("*") if p.is_file())
    proc = _cli(home / "rerun", home / "cache", profiles)
    output, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, output[-3000:]
    after = sorted(p.relative_to(home / "cache") for p in (home / "cache").rglob("*") if p.is_file())
    assert after == before, "the re-run computed something again"
    assert _results(home / "rerun") == _results(home / "run")


@pytest.mark.slow
def test_an_interrupted_run_started_again_completes_with_the_same_results(first_run):
    """Cold caches, killed while notebook 03 runs, then started again: byte-identical results to the first run."""
    home, profiles, _ = first_run
    run, cache = home / "resumed", home / "cache-resumed"
    proc = _cli(run, cache, profiles)
    deadline = time.time() + 600
    while not (run / "results" / "02_training_from_scratch.json").exists() and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(3)  # well inside notebook 03
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    record = json.loads((run / "run.json").read_text())  # interrupted: the run never reached the report
    assert record["status"] == "running" and record["state"]["06_report"]["status"] == "not started"
    assert not (run / "report.html").exists()  # what notebook 06 writes (it has no results file)
    proc = _cli(run, cache, profiles)
    output, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, output[-3000:]
    assert _results(run) == _results(home / "run")


def _kernel_of(pid: int) -> int | None:
    """The pid of a Jupyter kernel that process `pid` (the runner) started, if one runs."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if parent == pid and b"ipykernel" in (stat.parent / "cmdline").read_bytes():
                return int(stat.parent.name)
        except (OSError, IndexError, ValueError):
            continue
    return None


def _running_cell(notebook: Path) -> int:
    """Index of the cell papermill marks as running in an executed notebook being written, else -1."""
    try:
        cells = json.loads(notebook.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return -1
    return next((i for i, c in enumerate(cells) if c["metadata"].get("papermill", {}).get("status") == "running"), -1)


@pytest.mark.slow
def test_a_kernel_killed_mid_cell_is_restarted_and_the_run_gives_identical_results(first_run):
    """The kernel of notebook 03 killed inside a cell (as the OOM killer would): 03 runs again, the run completes."""
    home, profiles, _ = first_run
    run = home / "kernel-killed"
    proc = _cli(run, home / "cache", profiles)
    killed, deadline = None, time.time() + 600
    while killed is None and proc.poll() is None and time.time() < deadline:
        kernel = _kernel_of(proc.pid)
        if kernel and _running_cell(run / "03_transfer_learning.ipynb") >= 8:  # past its setup cells
            os.kill(kernel, signal.SIGKILL)
            killed = kernel
        time.sleep(0.1)
    output, _ = proc.communicate(timeout=900)
    assert killed and proc.returncode == 0, output[-3000:]
    assert "03_transfer_learning: stopped at cell" in output and "the kernel died" in output
    state = json.loads((run / "run.json").read_text())["state"]
    assert state["03_transfer_learning"] == {**state["03_transfer_learning"], "status": "done", "attempts": 2}
    assert _results(run) == _results(home / "run")


@pytest.mark.slow
def test_a_synthetic_lgg_cohort_runs_the_whole_study(tmp_path):
    """Buda et al.'s data layout (kaggle_3m) through notebooks 01 to 06, with in-domain pretraining on other patients."""
    profiles = _tiny_profile(tmp_path / "params")
    proc = subprocess.Popen(
        [sys.executable, "-m", "radiolib", "study", "--profile", "tiny", "--params", str(profiles),
         "--out", str(tmp_path / "run"), "-p", f"cache_dir={tmp_path / 'cache'}", "-p", "synth_format=lgg",
         "-p", "synth_patients=30", "-p", "synth_faults=false"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, output[-3000:]
    docs = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "run" / "results").glob("*.json")}
    assert len(docs["01_preprocessing"]["included"]) == 30
    assert any("lgg-mri-segmentation" in d for d in docs["01_preprocessing"]["deviations"])
    transfer = {r["source"]: r for r in docs["03_transfer_learning"]["rows"] if "sweep" not in r}
    assert transfer["domain"]["skipped"] is None and transfer["imagenet"]["skipped"]
    # no leakage through pretraining: the in-domain network saw other (synthetic) patients, never the study's
    from radiolib.weights import domain_meta
    domain = next((tmp_path / "cache" / "domain").iterdir())
    seen = set(domain_meta(domain, "googlenet")["meta"]["patients"])
    study_patients = {p["patient"] for p in docs["01_preprocessing"]["included"]}
    assert seen and not seen & study_patients
    for doc in docs.values():
        from radiolib.evaluation import check_no_leakage
        check_no_leakage(doc)
