"""One bad patient never stops the study: the patient every illustration of notebook 01 would show has an
unreadable file (a text written over one of its DICOM slices, as a broken download leaves it); preprocessing
excludes it with the reason and the examples show other, included patients."""
import json

import pytest

from radiolib.data import dataset, imaging
from radiolib.run import study


def _corrupt(series) -> None:
    """A middle slice overwritten with text: the header scan (first readable file) passes, reading pixels fails.
    `series`: a `cohort.PhaseSeries` (a series folder, or one phase's files of a series holding every phase)."""
    files = series.paths()
    files[len(files) // 2].write_text("This file was meant to be a DICOM image but holds this text instead.\n")


@pytest.fixture(scope="module")
def corrupted(tmp_path_factory):
    from radiolib.data.synth import synthesize
    root = synthesize(tmp_path_factory.mktemp("bad") / "cohort", patients=10, seed=4, effect=1.0, faults=[],
                      progress=False, _max_slices=16)
    cohort = dataset.open_cohort(root, progress=False)
    target = cohort.target_spacing
    resampled = imaging.resampling_example(cohort, target)
    assert resampled is not None, "the cohort should hold a scan that is resampled"
    picks = {resampled[3], cohort.table.patient.iloc[0]}  # 01's resampling example, its channel/patch examples
    for patient in picks:
        _corrupt(cohort.series[patient]["pre"])
    return root, picks


def test_the_examples_draw_only_from_readable_included_patients(corrupted, tmp_path):
    root, picks = corrupted
    ps = dataset.build_patch_set(root, [80], 1, 0, tmp_path, progress=False)
    excluded = dict(zip(ps.qc.patient, ps.qc.reason))
    assert all("not a DICOM image" in excluded.get(p, "") for p in picks), excluded
    cohort = dataset.open_cohort(root, progress=False)  # the header scan alone still lists them
    assert picks <= set(cohort.table.patient)
    target = ps.meta["target_spacing_mm"]
    chosen = imaging.resampling_example(cohort, target, ps.table.patient)[3]
    assert chosen in set(ps.table.patient) and chosen not in picks
    assert imaging.resampling_example(cohort, target)[3] not in picks  # without the list: unreadable passed over


@pytest.mark.slow
def test_notebook_01_completes_on_a_cohort_whose_example_patients_are_unreadable(corrupted, tmp_path):
    root, picks = corrupted
    run = study.run_study("smoke", data=str(root), out=str(tmp_path / "run"), notebooks=["01_preprocessing"],
                          overrides={"cache_dir": str(tmp_path / "cache")})
    doc = json.loads((run / "results" / "01_preprocessing.json").read_text())
    assert picks <= {e["patient"] for e in doc["excluded"] if "not a DICOM image" in e["reason"]}
    assert len(doc["included"]) == 10 - len(picks)
    assert (run / "figures" / "01_resampling.png").is_file() and (run / "figures" / "01_channels.png").is_file()
    assert json.loads((run / "run.json").read_text())["state"]["01_preprocessing"]["status"] == "done"
