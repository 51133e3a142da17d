"""The whole study as one run (notebooks 01 to 06) on the tiny profile (the session's `tiny_study`, tests/studies.py):
report, leakage, warm re-run, resume after the runner or a kernel is killed (the LGG layout: tests/test_lgg.py)."""
import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
import studies

from radiolib.run import params


@pytest.mark.slow
def test_one_command_runs_01_to_06_and_points_to_the_report(tiny_study):
    assert sorted(p.stem for p in tiny_study.run.glob("*.ipynb")) == sorted(params.NOTEBOOKS)
    assert set(studies.results(tiny_study.run)) == {f"{s}.json" for s in params.NOTEBOOKS if s != "06_report"}
    assert "report.html" in tiny_study.output.splitlines()[-1]
    record = json.loads((tiny_study.run / "run.json").read_text())
    assert list(record["seconds"]) == list(params.NOTEBOOKS) and record["status"] == "done"
    assert {s: r["status"] for s, r in record["state"].items()} == {s: "done" for s in params.NOTEBOOKS}


@pytest.mark.slow
def test_the_report_holds_every_table_and_figure(tiny_study):
    page = (tiny_study.run / "report.html").read_text()
    for heading in ("At a glance", "Cohort flow", "Table 3", "Table 4", "Table 5", "Table 6", "paired bootstrap",
                    "Holm", "Deviations from the paper", "Provenance"):
        assert heading in page, heading
    figures = sorted((tiny_study.run / "figures").glob("*.png"))
    assert page.count("data:image/png;base64,") == len(figures) + 1 >= 11  # every figure and the one at a glance
    for name in ("02_learning_curves", "03_learning_curves", "04_roc", "05_layerwise", "01_channels"):
        assert f">{name}<" in page, name
    assert str(tiny_study.home) not in page and "/root/" not in page and "/home/" not in page
    assert "src='http" not in page and 'src="http' not in page  # self-contained


@pytest.mark.slow
def test_every_results_file_is_free_of_leakage(tiny_study):
    from radiolib.stats.evaluation import check_no_leakage
    for name, raw in studies.results(tiny_study.run).items():
        doc = json.loads(raw)
        check_no_leakage(doc)
        assert doc["deviations"], name


def _cache_files(cache: Path) -> list[Path]:
    return sorted(p.relative_to(cache) for p in cache.rglob("*") if p.is_file())


@pytest.mark.slow
def test_a_warm_rerun_whose_kernel_is_killed_mid_cell_reuses_every_cache_and_gives_identical_results(tiny_study):
    """A second run on the first run's cache, the kernel of notebook 03 killed inside a cell (as the OOM killer
    would): 03 runs again, the run completes, nothing is computed again and the results are byte-identical. (01 to
    03: what 04 and 05 read from the cache is of the same kind.)"""
    before = _cache_files(tiny_study.cache)
    run = tiny_study.home / "kernel-killed"
    notebooks = studies.ZHU[:3]
    proc = studies.start(run, tiny_study.cache, tiny_study.params, "--notebooks", *notebooks)
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
    assert _cache_files(tiny_study.cache) == before, "the re-run computed something again"
    assert studies.results(run) == studies.results(tiny_study.run, notebooks)


@pytest.mark.slow
def test_an_interrupted_run_started_again_completes_with_the_same_results(tiny_study):
    """The runner killed while notebook 02 trains (its caches cold: the first run's synthetic cohort and patch
    set are copied, nothing else), then started again: byte-identical results to the first run. (01, 02 and the
    report: 03 to 05 would only repeat it with other networks.)"""
    run, cache = tiny_study.home / "resumed", tiny_study.home / "cache-resumed"
    for kind in ("cohorts", "patches"):  # notebook 01's data: what 02 onwards read, not what they compute
        shutil.copytree(tiny_study.cache / kind, cache / kind, symlinks=True)
    notebooks = [*studies.ZHU[:2], "06_report"]
    proc = studies.start(run, cache, tiny_study.params, "--notebooks", *notebooks)
    deadline = time.time() + 600
    while _running_cell(run / "02_training_from_scratch.ipynb") < 8 and proc.poll() is None \
            and time.time() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before notebook 02 was past its setup cells"
    os.killpg(proc.pid, signal.SIGKILL)  # inside notebook 02, past its setup cells: training or its views
    proc.wait()
    record = json.loads((run / "run.json").read_text())  # interrupted: the run never reached the report
    assert record["status"] == "running" and record["state"]["06_report"]["status"] == "not started"
    assert record["state"]["01_preprocessing"]["status"] == "done"
    assert record["state"]["02_training_from_scratch"]["status"] != "done"
    assert not (run / "report.html").exists()  # what notebook 06 writes (it has no results file)
    studies.run(run, cache, tiny_study.params, "--notebooks", *notebooks)
    assert (run / "report.html").exists() and len(studies.results(run)) == 2
    assert studies.results(run) == studies.results(tiny_study.run, notebooks)


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
