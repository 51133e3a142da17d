"""The run as a user starts it: CLI, papermill over a notebook, results files, and no fake identity anywhere."""
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import studies

from radiolib.data.synth import fake_identities
from radiolib.run import context, inputs, params

ROOT = Path(__file__).resolve().parents[1]


def _texts(folder: Path):
    for path in sorted(folder.rglob("*")):
        if path.suffix in {".ipynb", ".json", ".csv", ".html", ".txt", ".png"}:
            yield path, path.read_bytes().decode("latin-1")


@pytest.mark.slow
def test_the_runner_writes_notebook_results_and_figures(tiny_study):
    out = tiny_study.run
    assert (out / "01_preprocessing.ipynb").is_file()
    doc = json.loads((out / "results" / "01_preprocessing.json").read_text())
    assert {"included", "excluded", "patch_counts", "target_spacing_mm", "deviations"} <= set(doc)
    assert len(doc["included"]) + len(doc["excluded"]) == studies.TINY["synth_patients"]
    assert all(set(e) == {"patient", "reason"} and e["reason"] for e in doc["excluded"])
    assert {p["patient"] for p in doc["included"]}.isdisjoint(e["patient"] for e in doc["excluded"])
    assert len(list((out / "figures").glob("01_*.png"))) >= 6
    run = json.loads((out / "run.json").read_text())
    assert run["notebooks"] == list(params.NOTEBOOKS) and run["status"] == "done"
    assert run["state"]["01_preprocessing"]["status"] == "done"
    assert run["cell_timeout"] == params.RUNNER["cell_timeout"]  # the tiny profile sets none: the default


@pytest.mark.slow
def test_every_table_reads_its_rows_against_the_handcrafted_baseline(tiny_study):
    """Notebook 01 records the baseline row on the run's folds; the report shows it and each row's difference."""
    docs = {p.stem: json.loads(p.read_text()) for p in (tiny_study.run / "results").glob("*.json")}
    base = docs["01_preprocessing"]["baseline"]
    assert base["skipped"] is None and docs["01_preprocessing"]["baseline_reason"] is None
    folds = docs["02_training_from_scratch"]["rows"][0]["folds"]
    assert [f["test_patients"] for f in base["folds"]] == [f["test_patients"] for f in folds]
    html = (tiny_study.run / "report.html").read_text()
    assert "<h2>Handcrafted baseline</h2>" in html and f"test AUC {base['test_auc']:.2f}" in html
    assert html.count("vs handcrafted</th>") >= 4  # tables 3 to 6


@pytest.mark.slow
def test_the_radiogenomic_notebooks_run_after_05_and_the_report_shows_them(tiny_study):
    """07-09 run before the report (06, last): their results files hold what they computed, and the report a section
    for each, with the paper's protocol beside ours and the masking summary."""
    run = json.loads((tiny_study.run / "run.json").read_text())
    assert run["notebooks"][-4:] == ["07_receptors", "08_associations", "09_gene_masking", "06_report"]
    docs = {s: json.loads((tiny_study.run / "results" / f"{s}.json").read_text())
            for s in ("07_receptors", "08_associations", "09_gene_masking")}
    assert not any(d["skipped"] for d in docs.values()), {s: d["skipped"] for s, d in docs.items()}
    ran = [r for r in docs["07_receptors"]["rows"] if not r["skipped"]]
    assert ran and {r["features"] for r in ran} == {"DRF", "CRF"} and all(r["folds"] for r in ran)
    assert {(p["target"], p["features"]) for p in docs["07_receptors"]["paper_protocol"]} == \
        {(r["target"], r["features"]) for r in ran}
    assert docs["08_associations"]["genes"] == 300 and len(docs["08_associations"]["counts"]) == 2
    assert {m["model"] for m in docs["09_gene_masking"]["models"]} >= {"gene network", "random forest"}
    html = (tiny_study.run / "report.html").read_text()
    for title in ("Receptors and stage", "Imaging features against gene programmes", "gene masking"):
        assert title in html
    assert "AUC (paper&#x27;s protocol)" in html or "AUC (paper's protocol)" in html
    assert len(list((tiny_study.run / "figures").glob("0[789]_*.png"))) >= 6


@pytest.mark.slow
def test_the_results_name_the_target_and_its_prevalence(tiny_study):
    doc = json.loads((tiny_study.run / "results" / "01_preprocessing.json").read_text())
    share = sum(p["label"] for p in doc["included"]) / len(doc["included"])
    assert doc["target"] == "luminal_like" and doc["descriptor"]["positive"] == "luminal-like"
    assert doc["deviations"][0].startswith("target luminal_like (Mol Subtype 0: ER or PR positive, HER2 negative): "
                                           f"luminal-like in {share:.0%} of {len(doc['included'])} included patients")


@pytest.mark.slow
def test_no_fake_identity_or_machine_path_in_any_output(tiny_study):
    out, cache_dir = tiny_study.run, tiny_study.cache
    cohorts = sorted((cache_dir / "cohorts").glob("synthetic-*"))  # the study's and the in-domain source's
    secrets = {s for cohort in cohorts for s in fake_identities(cohort) if len(s) >= 6}
    assert len(cohorts) == 2 and len(secrets) >= 24, "the generator writes fake names and birth dates"
    results_and_figures = list(_texts(out / "results")) + list(_texts(out / "figures"))
    for path, text in results_and_figures:
        assert not [s for s in secrets if s in text], path.name
        assert str(out) not in text and str(cache_dir) not in text, f"machine path in {path.name}"
    for path, text in _texts(out):
        assert not [s for s in secrets if s in text], path.name


@pytest.mark.slow
def test_committed_notebooks_show_no_fake_identity(tmp_path):
    P = params.bind(params.defaults("01_preprocessing"), "01_preprocessing")
    cohort = inputs.synthetic_cohort(P, progress=False)  # the smoke cohort nbval runs on (cached)
    secrets = {s for s in fake_identities(cohort) if len(s) >= 6}
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        text = json.dumps([c.get("outputs", []) for c in nbformat.read(nb, 4).cells])
        assert not [s for s in secrets if s in text], nb.name


@pytest.mark.slow
def test_a_misspelled_parameter_stops_the_cli_with_the_valid_keys(tmp_path):
    run = subprocess.run([sys.executable, "-m", "radiolib", "study", "--profile", "smoke", "--out", str(tmp_path),
                          "-p", "synth_patient=3"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2
    assert "synth_patient" in run.stderr and "synth_patients" in run.stderr and "Valid keys" in run.stderr


def test_papermill_alone_refuses_a_misspelled_parameter(tmp_path):
    import papermill as pm
    with pytest.raises(pm.PapermillExecutionError, match="n_augmnt"):
        pm.execute_notebook(str(ROOT / "notebooks" / "01_preprocessing.ipynb"), str(tmp_path / "out.ipynb"),
                            parameters={"n_augmnt": 2, "run_dir": str(tmp_path)}, cwd=str(ROOT / "notebooks"),
                            progress_bar=False, kernel_name="python3")


@pytest.mark.slow
def test_synth_cli_writes_the_duke_layout(tmp_path):
    run = subprocess.run([sys.executable, "-m", "radiolib", "synth", "--out", str(tmp_path / "c"), "--patients", "3",
                          "--seed", "1", "--effect", "0"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "c" / "Annotation_Boxes.csv").is_file()
    firsts = list((tmp_path / "c").glob("Breast_MRI_*/*/*/1-001.dcm"))  # a series per phase, or one for all phases
    assert {f.parts[-4] for f in firsts} == {"Breast_MRI_001", "Breast_MRI_002", "Breast_MRI_003"}
    assert all(len(list(f.parent.glob("*.dcm"))) >= 8 for f in firsts)


def test_the_interactive_run_folder_follows_radiolib_run_dir(tmp_path, monkeypatch):
    """The notebooks' default run_dir (../runs/interactive) gives way to $RADIOLIB_RUN_DIR; a chosen one does not."""
    monkeypatch.setenv(context.RUN_DIR_ENV, str(tmp_path / "scratch"))
    P = params.bind(params.defaults("06_report"), "06_report")
    assert P.run_dir == "../runs/interactive"
    assert context.run_paths(P).root == tmp_path / "scratch" and (tmp_path / "scratch" / "results").is_dir()
    P.run_dir = str(tmp_path / "mine")
    assert context.run_paths(P).figures == tmp_path / "mine" / "figures"
