"""Nothing of the user's is deleted: `synth` never replaces a cohort folder holding files it did not write."""
import os
import stat

import pytest

from radiolib.data import synth
from radiolib.synth_lgg import synthesize_lgg


def test_synth_refuses_to_replace_a_cohort_holding_the_users_files(tmp_path):
    kw = dict(seed=0, progress=False, _max_slices=4)
    out = synth.synthesize(tmp_path / "c", patients=3, **kw)
    (out / "notes.txt").write_text("my notes")
    (out / "Breast_MRI_001" / "my_boxes.csv").write_text("Patient ID,Start Row\n")
    with pytest.raises(FileExistsError, match=r"did not write \(Breast_MRI_001/my_boxes.csv, notes.txt\)"):
        synth.synthesize(out, patients=4, **kw)
    assert (out / "notes.txt").read_text() == "my notes" and (out / "Breast_MRI_001" / "my_boxes.csv").is_file()
    (out / "notes.txt").unlink()
    (out / "Breast_MRI_001" / "my_boxes.csv").unlink()
    boxes = out / "Annotation_Boxes.csv"
    boxes.write_text(boxes.read_text() + "Breast_MRI_001,1,2,3,4,5,6\n")  # the user's own annotation
    with pytest.raises(FileExistsError, match=r"Annotation_Boxes.csv \(edited\)"):
        synth.synthesize(out, patients=4, **kw)
    assert boxes.read_text().endswith("Breast_MRI_001,1,2,3,4,5,6\n")


def test_synth_still_replaces_its_own_untouched_cohort(tmp_path):
    kw = dict(seed=0, progress=False, _max_slices=4)
    out = synth.synthesize(tmp_path / "c", patients=3, **kw)
    synth.synthesize(out, patients=4, **kw)
    assert (out / "Breast_MRI_004").is_dir() and synth.user_files(out, synth.read_manifest(out), ".dcm",
                                                                   synth.TABLE_NAMES) == []


def test_lgg_synth_refuses_to_replace_a_cohort_holding_the_users_files(tmp_path):
    root = synthesize_lgg(tmp_path / "lgg", patients=3, size=64)
    (root / "annotations.json").write_text("{}")
    with pytest.raises(FileExistsError, match=r"annotations.json"):
        synthesize_lgg(tmp_path / "lgg", patients=4, size=64)
    assert (root / "annotations.json").is_file()
    (root / "annotations.json").unlink()
    assert (synthesize_lgg(tmp_path / "lgg", patients=4, size=64) / "cohort.json").is_file()


def test_synth_cohort_folders_get_the_umask_mode_not_0700(tmp_path):
    old = os.umask(0o022)
    try:
        duke = synth.synthesize(tmp_path / "c", patients=3, seed=0, progress=False, _max_slices=4)
        lgg = synthesize_lgg(tmp_path / "lgg", patients=3, size=64)
    finally:
        os.umask(old)
    assert stat.S_IMODE(duke.stat().st_mode) == 0o755 and stat.S_IMODE(lgg.stat().st_mode) == 0o755
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", "lgg"] and [p.name for p in lgg.parent.iterdir()] == [
        "kaggle_3m"]  # no temporary folder left beside them
