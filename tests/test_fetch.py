"""`radiolib fetch duke`: the plan from the offline IDC index (every real patient read or excluded for the right
reason), the same phase rule in the loader, the plan file, and the download through idc-index (no network: the
transfer is replaced by a stand-in that writes the files the index counts)."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

from radiolib.data import cohort, fetch, series, synth
from radiolib.run import cli

# The real collection's patients whose DCE series are not each named once by description (idc-index-data 25.0.5).
BY_NUMBER = {"Breast_MRI_120": {"pre": 7, "post1": 8, "post2": 11, "post3": 13},
             "Breast_MRI_596": {"pre": 6, "post1": 7, "post2": 8, "post3": 11}}
NO_POST1 = ["Breast_MRI_065", "Breast_MRI_279", "Breast_MRI_700"]
NO_POST3 = ["Breast_MRI_103", "Breast_MRI_164", "Breast_MRI_253", "Breast_MRI_258", "Breast_MRI_282",
            "Breast_MRI_728", "Breast_MRI_801", "Breast_MRI_893"]


@pytest.fixture(scope="module")
def real_index():
    pytest.importorskip("idc_index_data", reason="the IDC index ships with idc-index-data (the fetch extra)")
    return fetch.read_index()


def test_the_planner_reads_or_excludes_every_real_patient_of_the_index(real_index):
    mr = real_index[real_index.Modality == "MR"]
    assert mr.PatientID.nunique() == 922
    plan = fetch.make_plan(real_index)
    assert len(plan.patients) == 922
    excluded = {p: v["excluded"] for p, v in plan.patients.items() if "excluded" in v}
    assert sorted(excluded) == sorted(NO_POST1 + NO_POST3)
    for p in NO_POST1:
        assert excluded[p].startswith(f"{series.REASONS['missing_phase']}: post1 (found:")
    for p in NO_POST3:
        assert excluded[p].startswith(f"{series.REASONS['missing_phase']}: post3 (found:")
    numbers = mr.set_index("SeriesInstanceUID").SeriesNumber
    for p, expected in BY_NUMBER.items():
        assert {ph: numbers[uid] for ph, uid in plan.patients[p]["phases"].items()} == expected
    # every other included patient: its four phases named once each by description
    named = mr.assign(phase=mr.SeriesDescription.map(series.phase_of))
    for p, entry in plan.patients.items():
        if "phases" in entry and p not in BY_NUMBER:
            rows = named[named.SeriesInstanceUID.isin(entry["phases"].values())]
            assert sorted(rows.phase) == sorted(series.PHASES)
            assert (named[named.PatientID == p].phase.value_counts()[list(series.PHASES)] == 1).all()
    totals = plan.totals()
    assert totals["patients"] == 911 and totals["series"] == 4 * 911
    assert totals["files"] == int(mr[mr.SeriesInstanceUID.isin(plan.series.SeriesInstanceUID)].instanceCount.sum())


def test_a_sample_is_reproducible_and_drawn_from_included_patients(real_index):
    a, b = (fetch.make_plan(real_index, n=270, seed=1) for _ in range(2))
    c = fetch.make_plan(real_index, n=270, seed=2)
    included = lambda plan: [p for p, v in plan.patients.items() if "phases" in v]  # noqa: E731
    assert included(a) == included(b) != included(c) and len(included(a)) == 270
    assert a.series.PatientID.nunique() == 270 and not set(a.series.PatientID) & set(NO_POST1 + NO_POST3)
    with pytest.raises(ValueError, match="only 911"):
        fetch.make_plan(real_index, n=912)


def test_the_dry_run_prints_and_writes_the_plan_and_transfers_nothing(real_index, tmp_path, monkeypatch, capsys):
    def no_transfer(*args, **kwargs):
        raise AssertionError("a dry run must not download")
    monkeypatch.setattr(fetch, "download", no_transfer)
    ids = tmp_path / "ids.txt"
    ids.write_text("Breast_MRI_120\n65  # no first pass\n1\n")
    out = tmp_path / "plan.json"
    assert cli.main(["fetch", "duke", "--dry-run", "--ids", str(ids), "--plan", str(out), "--masks", "aimi"]) == 0
    plan = json.loads(out.read_text())
    assert plan["patients"]["Breast_MRI_065"] == {
        "excluded": "missing sequence: post1 (found: post2 'Ph2/ax dynamic', post3 'Ph3/ax dynamic', pre 'ax dynamic')"}
    assert set(plan["patients"]["Breast_MRI_120"]["phases"]) == set(series.PHASES)
    images = [s for s in plan["series"] if s["kind"] == "image"]
    assert [s["SeriesNumber"] for s in images if s["patient"] == "Breast_MRI_120"] == [7, 8, 11, 13]
    masks = [s for s in plan["series"] if s["kind"] == "mask"]
    assert {s["patient"] for s in masks} == {"Breast_MRI_001"}  # 120 has no AIMI segmentation in IDC
    described = {s["SeriesInstanceUID"]: s["SeriesDescription"] for s in masks}
    assert plan["patients"]["Breast_MRI_001"]["masks"] == described
    assert plan["totals"]["series"] == len(plan["series"]) == 8 + len(masks)
    printed = capsys.readouterr().out
    assert f"plan: 2 patients, {8 + len(masks)} series ({len(masks)} masks)" in printed
    assert "Breast_MRI_065: missing sequence" in printed
    assert "Annotation_Boxes.csv: not in IDC" in printed  # where to get the tables


def _relabel(series_dir: Path, description: str, number: int) -> Path:
    """Give a synthetic series another SeriesDescription and SeriesNumber, in its headers and TCIA folder name."""
    for f in series_dir.glob("*.dcm"):
        ds = pydicom.dcmread(f)
        ds.SeriesDescription, ds.SeriesNumber = description, number
        ds.save_as(f)
    suffix = series_dir.name.rsplit("-", 1)[1]
    return series_dir.rename(series_dir.with_name(f"{number}.000000-{synth.folder_safe(description)}-{suffix}"))


def test_the_loader_reads_the_phases_by_series_number_where_descriptions_repeat(tmp_path):
    """Two synthetic patients relabelled as the real Breast_MRI_120 (five "ax dyn", numbers 7-15) and 596 ("ax dyn
    pre" 6, then "ax dyn" 7-13): the loader takes the phases in SeriesNumber order (not folder-name order, where
    11 and 13 come before 7), as the planner does."""
    root = synth.synthesize(tmp_path / "cohort", patients=6, seed=5, progress=False, _max_slices=8)
    per_phase = {}
    for pdir in sorted(root.glob("Breast_MRI_*")):
        dirs = {series.phase_of(cohort._folder_description(d.name)): d for d in pdir.glob("*/*")}
        dirs.pop(None, None)
        if len(dirs) == 5:  # one series per phase, pre to post4
            per_phase[pdir.name] = [dirs[p] for p in ("pre", "post1", "post2", "post3", "post4")]
    assert len(per_phase) >= 2
    layouts = [[("ax dyn", n) for n in (7, 8, 11, 13, 15)],
               [("ax dyn pre", 6)] + [("ax dyn", n) for n in (7, 8, 11, 13)]]
    expected = {}
    for (patient, dirs), layout in zip(per_phase.items(), layouts):
        renamed = [_relabel(d, description, number) for d, (description, number) in zip(dirs, layout)]
        expected[patient] = dict(zip(series.PHASES, renamed))
        rows = pd.DataFrame({"PatientID": patient, "Modality": "MR", "SeriesDescription": [d for d, _ in layout],
                             "SeriesNumber": [n for _, n in layout], "SeriesInstanceUID": [str(d) for d in renamed]})
        assert fetch.plan_patient(rows)["phases"] == {p: str(d) for p, d in expected[patient].items()}
    loaded = cohort.load_cohort(root, progress=False)
    assert set(expected) <= set(loaded.table.patient), loaded.qc
    for patient, phases in expected.items():
        assert {p: s.dir for p, s in loaded.series[patient].items()} == phases


# --- the download, on a small stand-in index -------------------------------------------------------------------

def _index(counts: dict[str, list[tuple[str, int, int]]]) -> pd.DataFrame:
    """Index rows like idc-index-data's: per patient (description, SeriesNumber, instanceCount)."""
    rows = [{"collection_id": fetch.COLLECTION, "analysis_result_id": None, "PatientID": p,
             "StudyInstanceUID": f"1.2.{p[-3:]}", "SeriesInstanceUID": f"1.2.{p[-3:]}.{number}", "Modality": "MR",
             "SeriesDescription": d, "SeriesNumber": float(number), "instanceCount": n, "series_size_MB": n * 0.5,
             "source_DOI": "10.7937/tcia.e3sv-re93"}
            for p, series_ in counts.items() for d, number, n in series_]
    return pd.DataFrame(rows)


SMALL = _index({"Breast_MRI_001": [("ax t1", 3, 2), ("ax dyn pre", 4, 3), ("ax dyn 1st pass", 5, 3),
                                   ("ax dyn 2nd pass", 6, 3), ("ax dyn 3rd pass", 7, 3)],
                "Breast_MRI_120": [("ax dyn", n, 4) for n in (7, 8, 11, 13, 15)],
                "Breast_MRI_700": [("ax dyn pre", 5, 2), ("ax dyn 2nd pass", 9, 2), ("ax dyn 3rd pass", 12, 2)]})


class StandIn:
    """idc-index's client as `fetch.download` uses it: records each call and writes the files of the series asked
    for where DIR_TEMPLATE puts them (`short` files fewer for the series named in `short_of`)."""

    def __init__(self, index: pd.DataFrame, short_of=()):
        self.index, self.short_of, self.calls = index.set_index("SeriesInstanceUID"), set(short_of), []

    def download_from_selection(self, downloadDir, seriesInstanceUID, dirTemplate, **kwargs):
        self.calls.append({"dir": downloadDir, "series": list(seriesInstanceUID), "template": dirTemplate, **kwargs})
        for uid in seriesInstanceUID:
            row = self.index.loc[uid]
            folder = Path(downloadDir) / row.PatientID / row.StudyInstanceUID / uid
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(row.instanceCount - (uid in self.short_of)):
                (folder / f"{i}.dcm").write_bytes(b"")


def test_the_downloader_is_called_with_the_planned_series_and_resumes(tmp_path):
    plan = fetch.make_plan(SMALL)
    assert sorted(plan.patients) == ["Breast_MRI_001", "Breast_MRI_120", "Breast_MRI_700"]
    planned = ["1.2.001.4", "1.2.001.5", "1.2.001.6", "1.2.001.7", "1.2.120.7", "1.2.120.8", "1.2.120.11",
               "1.2.120.13"]
    client = StandIn(SMALL)
    assert fetch.download(plan, tmp_path, client=client) == []
    assert len(client.calls) == 1 and sorted(client.calls[0]["series"]) == sorted(planned)
    assert client.calls[0]["template"] == fetch.DIR_TEMPLATE and client.calls[0]["use_s5cmd_sync"]
    # resume: a complete download asks for nothing; a series short of a file is fetched again, alone
    assert fetch.download(plan, tmp_path, client=client) == [] and len(client.calls) == 1
    next(iter((tmp_path / "Breast_MRI_120" / "1.2.120" / "1.2.120.11").glob("*.dcm"))).unlink()
    assert fetch.download(plan, tmp_path, client=client) == []
    assert client.calls[1]["series"] == ["1.2.120.11"]


def test_a_series_still_short_after_the_transfer_is_named_and_the_command_fails(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(fetch, "index_file", lambda: (Path("index.parquet"), "0"))
    monkeypatch.setattr(fetch, "read_index", lambda: SMALL)
    client = StandIn(SMALL, short_of=["1.2.001.5"])
    monkeypatch.setattr(fetch, "_client", lambda: client)
    assert cli.main(["fetch", "duke", "--out", str(tmp_path / "duke")]) == 1
    err = capsys.readouterr().err
    assert "Breast_MRI_001 post1 1.2.001.5: 2 of 3 files" in err and "1 series short of files" in err


def test_fetch_copies_the_tables_from_tables_dir_and_the_loader_reads_the_layout(tmp_path, monkeypatch):
    tables = tmp_path / "tables"
    tables.mkdir()
    pd.DataFrame({"Patient ID": ["Breast_MRI_001"], "Start Row": [1], "End Row": [2], "Start Column": [1],
                  "End Column": [2], "Start Slice": [1], "End Slice": [2]}).to_csv(tables / fetch.TABLES[0],
                                                                                   index=False)
    (tables / fetch.TABLES[1]).write_bytes(b"")  # copied as it is; read by the loader, not here
    out = tmp_path / "duke"
    assert fetch.place_tables(tables, out, "doi")[0] == f"{fetch.TABLES[0]}: copied from {tables}"
    assert (out / fetch.TABLES[0]).read_bytes() == (tables / fetch.TABLES[0]).read_bytes()
    plan = fetch.make_plan(SMALL)
    fetch.download(plan, out, client=StandIn(SMALL))
    assert sorted(cohort.find_patient_dirs(out)) == ["Breast_MRI_001", "Breast_MRI_120"]


@pytest.mark.slow
def test_idc_index_builds_the_loader_layout_from_our_call(real_index, tmp_path, monkeypatch):
    """The real idc-index client, stopped at the s5cmd command file it would run: one line per planned series,
    from the series' bucket to the folder `fetch.series_dir` names; 'sync' once the folder has files."""
    idc_index = pytest.importorskip("idc_index")
    client = idc_index.IDCClient()
    client.index = client.index[client.index.collection_id == fetch.COLLECTION]  # its queries: one collection, faster
    counts = client.index.set_index("SeriesInstanceUID").instanceCount
    manifests = []

    def transfer(self, manifest_file, **kwargs):  # s5cmd's part: write the files each command would bring
        manifests.append([line.split(" ", 2) for line in Path(manifest_file).read_text().splitlines()])
        for _, _, folder in manifests[-1]:
            Path(folder.strip('"')).mkdir(parents=True, exist_ok=True)
            for i in range(counts[Path(folder.strip('"')).name]):
                (Path(folder.strip('"')) / f"{i}.dcm").touch()
    monkeypatch.setattr(idc_index.IDCClient, "_s5cmd_run", transfer)
    plan = fetch.make_plan(real_index, ids=["Breast_MRI_001", "Breast_MRI_120"], masks="aimi")
    out = (tmp_path / "duke").resolve()
    assert fetch.download(plan, out, client=client, progress=False) == []
    rows = client.index.merge(plan.series[["SeriesInstanceUID", "kind"]])
    assert len(rows) == len(plan.series) and (rows.kind == "mask").any()
    expected = {(r.series_aws_url, str(fetch.series_dir(out, r))) for r in rows.itertuples()}
    assert {(url, folder.strip('"')) for _, url, folder in sum(manifests, [])} == expected
    assert {op for op, _, _ in sum(manifests, [])} == {"cp"}
    loaded = cohort.find_patient_dirs(out)
    assert sorted(loaded) == ["Breast_MRI_001", "Breast_MRI_120"]
    # resume: one file gone -> only its series again, by s5cmd sync (the files present are kept)
    missing = next(fetch.series_dir(out, r) for r in plan.series.itertuples() if r.phase == "post2")
    next(missing.glob("*.dcm")).unlink()
    assert fetch.download(plan, out, client=client, progress=False) == []
    assert [(op, folder.strip('"')) for op, _, folder in manifests[-1]] == [("sync", str(missing))]


# --- tumour masks from DICOM SEG (AIMI) -------------------------------------------------------------------------

def test_a_seg_written_by_highdicom_is_read_back_on_the_dce_grid_of_the_series_it_references(tmp_path):
    pytest.importorskip("highdicom")
    from radiolib.data import dicom_seg, imaging
    from radiolib.data.synth.seg import AIMI_AI, write_seg
    root = synth.synthesize(tmp_path / "cohort", patients=3, seed=5, progress=False, _max_slices=8)
    loaded = cohort.load_cohort(root, progress=False)
    for patient in loaded.patients:
        phases = loaded.series[patient]
        image, _ = imaging.read_phase(phases["pre"])
        mask = np.zeros(image.GetSize()[::-1], bool)  # the loader's grid: slices (by position), rows, columns
        z, y, x = mask.shape
        mask[1:3, y // 4:y // 2, x // 3:x // 2] = True  # off-centre in every axis: a flip or transpose moves it
        mask[3, y // 4, x // 3] = True
        written = write_seg(phases["post1"].paths(), mask, root / fetch.MASK_DIR)
        assert dicom_seg.seg_files(root, patient) == [written]
        read = dicom_seg.read_mask(written, phases)
        assert read.phase == "post1" and read.description == AIMI_AI and read.segments == ("tumor",)
        assert read.mask.shape == mask.shape and (read.mask == mask).all()
    with pytest.raises(series.UnreadableSeries, match="references series"):
        dicom_seg.read_mask(written, {"pre": phases["pre"]})


def test_a_radiologist_corrected_mask_is_preferred_to_the_ai_one():
    from radiolib.data.dicom_seg import TumourMask, preferred
    ai = TumourMask(np.zeros((1, 1, 1), bool), "post1", "1", "AIMI breast-tumor AI segmentation", ("t",))
    fixed = TumourMask(np.ones((1, 1, 1), bool), "post1", "1", "AIMI breast-tumor radiologist 9 corrected "
                                                               "segmentation", ("t",))
    assert preferred([ai, fixed]) is fixed and preferred([ai]) is ai and preferred([]) is None
