"""The TCGA-LGG adapter: synthetic kaggle_3m cohorts, the loader's labels and QC, volumes, regions, patch set."""
import hashlib
import json
import re
import shutil
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import studies
import tifffile

from radiolib.data import dataset, lgg, patches
from radiolib.data.synth.common import stream as _rng
from radiolib.data.synth.lgg import COLUMNS, FAULTS, _plan, _render, synthesize_lgg
from radiolib.learn.weights import domain_meta
from radiolib.run import params, protocol
from radiolib.stats.evaluation import check_no_leakage
from radiolib.steps import STEPS

REAL_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "lgg-sample"
FAULT_REASONS = {"missing_label": "missing label (COCCluster blank)", "empty_mask": "no tumour in the masks",
                 "unreadable_tiff": "unreadable image: "}


@pytest.fixture(scope="module")
def faulty(faulty_lgg) -> Path:
    """8 patients of 128x128 slices, with the three injected faults (the session's, conftest.py)."""
    return faulty_lgg


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    """4 fault-free patients of 64x64 slices, copied and damaged by individual tests."""
    return synthesize_lgg(tmp_path_factory.mktemp("lgg") / "clean", patients=4, seed=1, size=64)


@pytest.fixture(scope="module")
def cohort(faulty) -> lgg.LggCohort:
    return lgg.load_cohort(faulty, progress=False)


def _digest(root: Path) -> dict[str, str]:
    return {str(f.relative_to(root)): hashlib.md5(f.read_bytes()).hexdigest() for f in sorted(root.rglob("*"))
            if f.is_file()}


def _copy(root: Path, dest: Path) -> Path:
    return Path(shutil.copytree(root, dest / "kaggle_3m"))


# ---------------------------------------------------------------------------------------------------------------
# The synthetic cohort


def test_synthetic_cohort_is_deterministic(tmp_path):
    a = synthesize_lgg(tmp_path / "a", patients=3, seed=7, size=64, faults=["empty_mask"])
    b = synthesize_lgg(tmp_path / "b", patients=3, seed=7, size=64, faults=["empty_mask"])
    c = synthesize_lgg(tmp_path / "c", patients=3, seed=8, size=64, faults=["empty_mask"])
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)
    assert synthesize_lgg(tmp_path / "a", patients=3, seed=7, size=64, faults=["empty_mask"]) == a  # reused


def test_synthetic_layout_matches_the_release(faulty):
    table = pd.read_csv(faulty / "data.csv")
    assert list(table.columns) == COLUMNS
    folders = sorted(d.name for d in faulty.glob("TCGA_*"))
    assert len(folders) == 8 and all(re.fullmatch(r"TCGA_[A-Z]{2}_\d{4}_\d{8}", f) for f in folders)
    assert sorted(f[:12] for f in folders) == sorted(table.Patient)
    assert set(table.COCCluster.dropna()) <= {1, 2, 3} and table.COCCluster.isna().sum() == 1
    folder = faulty / folders[0]
    n = len(list(folder.glob("*_mask.tif")))
    assert 20 <= n <= 40 and len(list(folder.glob("*.tif"))) == 2 * n
    image = tifffile.imread(folder / f"{folder.name}_{n}.tif")
    mask = tifffile.imread(folder / f"{folder.name}_1_mask.tif")
    assert image.shape == (128, 128, 3) and image.dtype == np.uint8
    assert mask.shape == (128, 128) and set(np.unique(mask)) <= {0, 255}
    manifest = json.loads((faulty / "cohort.json").read_text())
    assert manifest["generator"] == "radiolib.synth_lgg" and manifest["patients"] == 8 and manifest["seed"] == 3
    assert sorted(manifest["faults"].values()) == sorted(FAULTS)


def test_subtype_shares_follow_the_real_proportions():
    counts = _plan(30, 0, []).coc.value_counts().to_dict()
    assert counts == {1: 9, 2: 14, 3: 7}


def test_effect_zero_plants_no_link_and_effect_changes_only_the_post_contrast_tumour():
    null = [_render(coc, 0.0, _rng(5, 1, 0), 64) for coc in (1, 2, 3)]
    assert all(np.array_equal(null[0][0], n[0]) and np.array_equal(null[0][1], n[1]) for n in null)
    plain, mask, _ = _render(1, 1.5, _rng(5, 1, 0), 64)
    rim, _, truth = _render(2, 1.5, _rng(5, 1, 0), 64)
    assert truth["rim"] > 0
    changed = np.any(plain != rim, axis=0)
    assert changed[..., 2].any() and not changed[..., :2].any()  # pre-contrast and FLAIR untouched
    assert not np.any(plain[..., 2][~mask] != rim[..., 2][~mask])  # and only inside the tumour


def test_synthesize_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="faults"):
        synthesize_lgg(tmp_path, patients=5, faults=["bad_fault"])
    with pytest.raises(ValueError, match="size"):
        synthesize_lgg(tmp_path, patients=5, size=10)
    (tmp_path / "mine" / "kaggle_3m").mkdir(parents=True)
    with pytest.raises(FileExistsError):
        synthesize_lgg(tmp_path / "mine", patients=3, size=64)


# ---------------------------------------------------------------------------------------------------------------
# Loader: labels, targets, QC


def test_each_fault_is_excluded_with_its_reason_and_nothing_else(faulty, cohort):
    faults = json.loads((faulty / "cohort.json").read_text())["faults"]
    assert set(cohort.qc.patient) == set(faults)
    for patient, reason in cohort.qc.itertuples(index=False):
        assert reason.startswith(FAULT_REASONS[faults[patient]]), (patient, reason)
    unreadable = cohort.qc.reason[cohort.qc.patient == next(p for p, f in faults.items() if f == "unreadable_tiff")]
    assert re.search(r"_\d+\.tif: truncated", unreadable.iloc[0])
    assert len(cohort.table) == 5
    flow = cohort.flow().set_index("step").patients
    assert flow["patient folders found"] == 8 and flow["included"] == 5


def test_labels_follow_the_target(faulty, cohort):
    truth = pd.read_csv(faulty / "synthetic_truth.csv").set_index("patient")
    t = cohort.table.set_index("patient")
    assert (t.target_value == truth.coc_cluster[t.index]).all()
    assert (t.label == (truth.coc_cluster[t.index] == 2).astype(int)).all()
    assert cohort.target == "COCCluster==2" and cohort.target_spacing == 1.0
    assert {"slices", "rows", "columns", "pixel_spacing", "n_boxes", "manufacturer", "model",
            "field_strength"} <= set(cohort.table.columns)
    assert (t.rows == 128).all() and (t.pixel_spacing == 1.0).all() and t.field_strength.isna().all()

    data = pd.read_csv(faulty / "data.csv").set_index("Patient")
    other = lgg.load_cohort(faulty, target=" RNASeqCluster == 1 ", progress=False).table.set_index("patient")
    assert (other.label == (data.RNASeqCluster[other.index] == 1).astype(int)).all()


@pytest.mark.parametrize("target, message", [
    ("COCCluster=2", "e.g. 'COCCluster==2'"),
    ("==2", "e.g."),
    ("COC==2", "columns are: Patient, RNASeqCluster, .*COCCluster"),
    ("COCCluster==two", "holds numbers"),
    ("COCCluster==7", "no patient has this value"),
])
def test_bad_targets_are_explained(faulty, target, message):
    with pytest.raises(ValueError, match=message):
        lgg.load_cohort(faulty, target=target, progress=False)


def test_root_may_be_the_kaggle_folder_or_its_parent(faulty, tmp_path):
    assert lgg.load_cohort(faulty.parent, progress=False).root == faulty
    assert lgg.is_lgg_layout(faulty) and lgg.is_lgg_layout(faulty.parent) and not lgg.is_lgg_layout(tmp_path)
    with pytest.raises(FileNotFoundError, match="data folder not found"):
        lgg.load_cohort(tmp_path / "nowhere", progress=False)
    with pytest.raises(FileNotFoundError, match="no data.csv"):
        lgg.load_cohort(tmp_path, progress=False)
    (tmp_path / "data.csv").write_text("Patient,COCCluster\n")
    with pytest.raises(FileNotFoundError, match="no TCGA_"):
        lgg.load_cohort(tmp_path, progress=False)


def test_inconsistent_folders_are_excluded_with_reasons(clean, tmp_path):
    root = _copy(clean, tmp_path)
    a, b, c, d = sorted(d for d in root.glob("TCGA_*"))
    (a / f"{a.name}_3_mask.tif").unlink()
    (b / f"{b.name}_5.tif").unlink()
    (b / f"{b.name}_5_mask.tif").unlink()
    c.rename(root / "TCGA_QQ_0001_20000101")
    data = pd.read_csv(root / "data.csv")
    data.loc[data.Patient == d.name[:12], "COCCluster"] = 2
    data.to_csv(root / "data.csv", index=False)  # d keeps its label: the only included patient
    qc = lgg.load_cohort(root, progress=False).qc.set_index("patient").reason
    assert qc[a.name[:12]] == "slice/mask mismatch: slice 3 without mask"
    assert qc[b.name[:12]].startswith("slice/mask mismatch: slices numbered up to") and "missing 5" in qc[b.name[:12]]
    assert qc["TCGA_QQ_0001"] == "not in data.csv"
    assert len(qc) == 3


def test_exclude_moves_a_patient_to_qc(faulty):
    c = lgg.load_cohort(faulty, progress=False)
    patient = c.table.patient.iloc[0]
    c.exclude(patient, "unreadable image: found later")
    assert patient not in set(c.table.patient) and len(c.table) == 4
    assert c.qc.set_index("patient").reason[patient] == "unreadable image: found later"


# ---------------------------------------------------------------------------------------------------------------
# Volumes and regions


def test_regions_are_the_mask_bounding_boxes(faulty, cohort):
    patient = cohort.table.patient.iloc[1]
    folder = faulty / cohort.table.folder.iloc[1]
    masks = np.stack([tifffile.imread(folder / f"{folder.name}_{k}_mask.tif") > 0
                      for k in range(1, cohort.table.slices.iloc[1] + 1)])
    regions = cohort.volume(patient, 1.0).regions
    assert list(regions.slice) == list(np.flatnonzero(masks.any(axis=(1, 2))))
    assert len(regions) == cohort.table.n_boxes.iloc[1]
    for r in regions.itertuples():
        ys, xs = np.nonzero(masks[r.slice])
        assert (r.cy, r.cx) == ((ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2)
        assert (r.h, r.w, r.area) == (ys.max() - ys.min() + 1, xs.max() - xs.min() + 1, len(ys))
    boxes = cohort.boxes[cohort.boxes.patient == patient]
    first = boxes.iloc[0]
    ys, xs = np.nonzero(masks[first["Start Slice"] - 1])
    assert (first["Start Row"], first["End Row"], first["Start Column"], first["End Column"]) == \
        (ys.min() + 1, ys.max() + 1, xs.min() + 1, xs.max() + 1)


def test_mask_regions_number_components_by_size():
    mask = np.zeros((4, 20, 20), bool)
    mask[0:2, 2:4, 2:4] = True  # small lesion, slices 0-1
    mask[1:4, 10:16, 8:18] = True  # large lesion, slices 1-3
    regions = lgg.mask_regions(mask)
    assert list(regions.slice) == [0, 1, 2, 3]
    assert list(regions.lesion) == [2, 1, 1, 1]  # slice 1 holds both; the large one dominates
    assert regions.area.tolist() == [4, 64, 60, 60]
    assert regions.iloc[1][["cy", "cx", "h", "w"]].tolist() == [8.5, 9.5, 14.0, 16.0]


def test_volume_channels_keep_the_tiff_order_and_are_scaled(faulty, cohort):
    patient, folder, z_n = cohort.table[["patient", "folder", "slices"]].iloc[0]
    vol = cohort.volume(patient, cohort.target_spacing)
    assert vol.channels.shape == (3, z_n, 128, 128) and vol.channels.dtype == np.float32
    assert vol.spacing == (1.0, 1.0, 1.0)
    z = int(vol.regions.sort_values("area").slice.iloc[-1])
    raw = tifffile.imread(faulty / folder / f"{folder}_{z + 1}.tif").astype(np.float32)
    head = vol.channels.any(axis=0)
    for c in range(3):
        ratio = raw[..., c][raw[..., c] > 0] / vol.channels[c, z][raw[..., c] > 0]
        assert np.allclose(ratio, ratio[0], rtol=1e-5)
        assert np.percentile(vol.channels[c][head], 99) == pytest.approx(1.0, rel=1e-4)
    mask = tifffile.imread(faulty / folder / f"{folder}_{z + 1}_mask.tif") > 0
    brain = head[z] & ~mask
    assert vol.channels[1, z][mask].mean() > 1.3 * vol.channels[1, z][brain].mean()  # FLAIR is channel 1


def test_volume_errors_are_clear(clean, tmp_path):
    root = _copy(clean, tmp_path)
    c = lgg.load_cohort(root, progress=False)
    patient, folder = c.table[["patient", "folder"]].iloc[0]
    with pytest.raises(ValueError, match="nominal 1.0 mm"):
        c.volume(patient, 0.97)
    with pytest.raises(KeyError, match="TCGA_XX"):
        c.volume("TCGA_XX_0000", 1.0)
    (root / folder / f"{folder}_2.tif").write_bytes(b"not a tiff")  # damaged after the scan
    with pytest.raises(lgg.UnreadableImage) as err:
        c.volume(patient, 1.0)
    assert err.value.reason.startswith("unreadable image: ") and folder in err.value.reason


# ---------------------------------------------------------------------------------------------------------------
# The real sample (skipped where ../shared/data is absent)


def test_real_sample_loads():
    if not (REAL_SAMPLE / "kaggle_3m" / "data.csv").is_file():
        pytest.skip("the real lgg-mri-segmentation sample (../shared/data/lgg-sample) is not available")
    c = lgg.load_cohort(REAL_SAMPLE, progress=False)
    assert c.qc.empty and len(c.table) == 3
    assert sorted(c.table.target_value) == [1, 2, 3] and c.table.label.sum() == 1
    assert c.table.set_index("target_value").label[2] == 1
    for patient, z_n in c.table[["patient", "slices"]].itertuples(index=False):
        vol = c.volume(patient, c.target_spacing)
        assert vol.channels.shape == (3, z_n, 256, 256)
        assert len(vol.regions) == c.table.set_index("patient").n_boxes[patient] > 0


# ---------------------------------------------------------------------------------------------------------------
# End to end: the shared patch code on an LGG cohort


@pytest.fixture(scope="module")
def patch_set(faulty, tmp_path_factory):
    return dataset.build_patch_set(faulty, patch_sizes=[80], cache_dir=tmp_path_factory.mktemp("cache"),
                                   progress=False)


def test_patch_set_from_an_lgg_cohort(faulty, cohort, patch_set):
    assert isinstance(dataset.open_cohort(faulty, progress=False), lgg.LggCohort)
    ps = patch_set
    px = patches.patch_pixels(80, 1.0)
    assert ps.patches(80).shape == (len(ps.index), 3, px, px) and ps.meta["patch_pixels"] == {"80": px}
    assert set(ps.table.patient) == set(cohort.table.patient) and set(ps.qc.patient) == set(cohort.qc.patient)
    per = ps.index.groupby(["patient", "role"]).size().unstack()
    assert (per["test"] == 25).all()
    n_boxes = cohort.table.set_index("patient").n_boxes
    assert (per["train"] == n_boxes[per.index]).all() and (per["augmented"] == 4 * per["train"]).all()
    train = ps.index[ps.index.role == "train"]
    tumour_slices = cohort.boxes.assign(slice=cohort.boxes["Start Slice"] - 1)[["patient", "slice"]]
    assert len(train.merge(tumour_slices, on=["patient", "slice"])) == len(train)


def test_patch_set_target_and_parent_folder(faulty, cohort, tmp_path):
    ps = dataset.build_patch_set(faulty.parent, patch_sizes=[80], cache_dir=tmp_path, progress=False,
                                 target="COCCluster==1")
    expected = (cohort.table.set_index("patient").target_value == 1).astype(int)
    assert (ps.table.set_index("patient").label == expected[ps.table.patient].to_numpy()).all()
    assert (ps.index.label == ps.index.patient.map(expected)).all()


@pytest.mark.parametrize("stem", ["07_receptors", "08_associations", "09_gene_masking"])
def test_the_radiogenomic_notebooks_skip_an_lgg_cohort_and_say_why(stem, patch_set, tmp_path):
    """07-09 need Duke's clinical table: on an LGG cohort each writes its results file with the reason and no rows,
    states no protocol of Liu & Hu or Smedley et al. (only the target), and every view shows the reason."""
    from radiolib.steps.associations import GeneAssociations
    from radiolib.steps.gene_masking import GeneMasking
    from radiolib.steps.receptors import ReceptorPrediction
    step_class = {"07_receptors": ReceptorPrediction, "08_associations": GeneAssociations,
                  "09_gene_masking": GeneMasking}[stem]
    P = types.SimpleNamespace(**{**params.defaults(stem), "cache_dir": str(tmp_path / "cache"),
                                 "run_dir": str(tmp_path / "run")})
    if hasattr(P, "n_folds"):
        P.n_folds = 2
    step = step_class(P, progress=False, patch_set=patch_set).fit()
    assert step.skipped_ and step.skipped_.startswith("the radiogenomic analyses need the Duke layout"), step.skipped_
    assert step.features() == step.save_figures() == f"Skipped: {step.skipped_}"
    doc = step.write()
    assert json.loads(step.context_.results_path.read_text()) == json.loads(json.dumps(doc))
    assert doc["skipped"] == step.skipped_ and doc["rows"] == []
    assert doc["deviations"] == [protocol.target_statement(patch_set)] and "COCCluster" in doc["deviations"][0]
    assert "luminal" not in json.dumps(doc).lower()


# The lgg profile's study on a synthetic cohort: notebooks 01 to 05's steps, as the runner calls them, at the tiny
# study's settings (tests/studies.py) without a kernel per notebook; the session's tiny study shows the runner.
LGG_STUDY = {"synth_format": "lgg", "synth_patients": 12, "synth_faults": False, "test_patches": "tumour",
             "n_folds": 2, "patches_per_epoch": 32, "domain_patients": 4, "domain_patches_per_epoch": 32,
             "sources": ["domain", "in_cohort", "random", "imagenet"], "domain_task": "tumour_type"}


@pytest.fixture(scope="module")
def lgg_study(tmp_path_factory):
    """Each of notebooks 01 to 05's results document on a 12-patient synthetic LGG cohort (fault-free), in-domain
    pretraining on a synthetic brain-tumour cohort in the Figshare layout (tumour types) beside the in-cohort
    networks and random weights; no ImageNet weights (an empty TORCH_HOME); then notebook 06's
    report of them. Returns the documents by notebook, the report's page and the cache folder."""
    home = tmp_path_factory.mktemp("lgg-study")
    docs, ps = {}, None
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(home / "torch"))
        for stem in studies.ZHU[:5]:
            keys = params.defaults(stem)
            shared = {k: v for k, v in studies.TINY.items() if not isinstance(v, dict)}
            own = {k: v[stem] for k, v in studies.TINY.items() if isinstance(v, dict) and stem in v}
            chosen = {**shared, **LGG_STUDY, **own, "cache_dir": str(home / "cache"), "run_dir": str(home)}
            P = types.SimpleNamespace(**{**keys, **{k: v for k, v in chosen.items() if k in keys}})
            step = STEPS[stem](P, progress=False, patch_set=ps).fit()
            docs[stem] = step.write()
            ps = ps or step.patch_set_
    page = STEPS["06_report"](P, progress=False).fit().write().read_text()
    return types.SimpleNamespace(docs=docs, page=page, cache=home / "cache")


@pytest.mark.slow
def test_a_synthetic_lgg_cohort_runs_the_whole_study(lgg_study):
    """Buda et al.'s data layout (kaggle_3m) through notebooks 01 to 06, with in-domain pretraining on other
    patients."""
    docs = lgg_study.docs
    assert len(docs["01_preprocessing"]["included"]) == LGG_STUDY["synth_patients"]  # fault-free: every patient
    assert any("lgg-mri-segmentation" in d for d in docs["01_preprocessing"]["deviations"])
    transfer = {r["source"]: r for r in docs["03_transfer_learning"]["rows"] if "sweep" not in r}
    assert transfer["domain"]["skipped"] is None and transfer["imagenet"]["skipped"]
    assert transfer["in_cohort"]["skipped"] is None and transfer["random"]["skipped"] is None  # beside it, same folds
    assert "transfer GoogLeNet external: googlenet domain" in lgg_study.page  # the report's external pair
    # no leakage through pretraining: the in-domain network saw other (synthetic) patients, never the study's
    study_patients = {p["patient"] for p in docs["01_preprocessing"]["included"]}
    networks = [domain_meta(d, "googlenet")["meta"] for d in (lgg_study.cache / "domain").iterdir()]
    external = [m for m in networks if m.get("task_name") == "tumour_type"]
    assert len(external) == 1 and external[0]["input_channels"] == 1  # the Figshare-layout source, once
    assert all(not set(m["patients"]) & study_patients for m in external)
    assert len(networks) == 1 + LGG_STUDY["n_folds"]  # and one in-cohort network per fold
    for doc in docs.values():
        check_no_leakage(doc)
    # scored from every tumour slice, said in each approach's deviations; the handcrafted baseline: FLAIR in the mask
    for stem in ("02_training_from_scratch", "03_transfer_learning", "04_deep_features_svm", "05_layerwise_analysis"):
        assert any("every tumour slice" in d for d in docs[stem]["deviations"]), stem
        assert all(r["skipped"] or r["folds"] for r in docs[stem]["rows"]), stem
    baseline = docs["01_preprocessing"]["baseline"]
    assert baseline["skipped"] is None and baseline["channel"] == "FLAIR" and "tumour mask" in baseline["mask"]
    assert set(baseline["oof"]) == study_patients
    assert "COCCluster==2" in lgg_study.page and "Transfer learning (Buda et al. 2020" in lgg_study.page  # the report


@pytest.mark.slow
def test_an_lgg_run_never_says_luminal_and_names_buda(lgg_study):
    doc = lgg_study.docs["01_preprocessing"]
    assert doc["target"] == "COCCluster==2" and doc["descriptor"]["reference"] == "Buda et al. 2020"
    assert doc["deviations"][0].startswith("target COCCluster==2 (COCCluster 2 in data.csv")
    assert "Buda et al. 2020" in lgg_study.page and "COC 2 vs other clusters" in lgg_study.page
    texts = [json.dumps(d) for d in lgg_study.docs.values()] + [lgg_study.page]
    assert len(texts) == len(studies.ZHU)  # 5 results files and the report (07-09: above)
    assert not [t for t in texts if "luminal" in t.lower()]
