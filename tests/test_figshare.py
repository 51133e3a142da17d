"""The Figshare brain tumour cohort (Cheng et al.): the real JPEG derivative in ../shared/data (skipped when absent),
.mat files in the official release's structure written here with h5py (not by the generator, so that generator and
loader share no assumption), the synthetic cohort in both layouts, and the patch set of a one-channel source."""
import hashlib
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import ndimage

from radiolib.data import dataset, descriptor, figshare
from radiolib.data.source import DataSource
from radiolib.data.synth.figshare import synthesize_figshare

REAL_COPY = Path(__file__).resolve().parents[2] / "shared" / "data" / "brain-tumor-figshare"
needs_real = pytest.mark.skipif(not REAL_COPY.is_dir(), reason="../shared/data/brain-tumor-figshare is absent "
                                "(the real JPEG copy is on the developers' machines only)")


def _digest(root: Path) -> dict[str, str]:
    return {str(f.relative_to(root)): hashlib.md5(f.read_bytes()).hexdigest() for f in sorted(root.rglob("*"))
            if f.is_file()}


# ---------------------------------------------------------------------------------------------------------------
# The real JPEG derivative


@pytest.fixture(scope="module")
def real() -> figshare.FigshareCohort:
    if not REAL_COPY.is_dir():
        pytest.skip("../shared/data/brain-tumor-figshare is absent")
    return figshare.load_cohort(REAL_COPY, progress=False)


@needs_real
def test_the_real_copy_reads_every_slice_with_its_class_folders_type(real):
    assert figshare.is_figshare_layout(REAL_COPY) and real.layout == "jpeg"
    assert len(real.table) == 3064 and real.qc.empty
    assert real.table.tumour_type.value_counts().to_dict() == {"glioma": 1426, "pituitary": 930, "meningioma": 708}
    assert set(real.table.unit) == {"slice"} and real.unit == "slice"
    assert real.labels().sum() == 1426 and real.descriptor.positive == "glioma"  # the default target
    assert (real.table.source_label.astype(str).map(figshare.FOLDER_LABELS) == real.table.tumour_type).all()
    assert len(real.boxes) == 3064 and (real.boxes["End Column"] <= real.table["columns"].values).all()


@needs_real
def test_a_real_box_lies_on_the_bright_tumour_and_not_on_its_mirror_across_the_diagonal(real):
    """Meningiomas and pituitary tumours enhance (mean in their box above the head's mean); the same box with rows
    and columns swapped (what a transposed reading gives) does not lie on them."""
    units = real.table[real.table.tumour_type != "glioma"].patient.iloc[::40]
    ratios, swapped = [], []
    for unit in units:
        v = real.volume(unit)
        r = v.regions.iloc[0]
        image, head = v.channels[0, 0], v.body[0]
        assert v.channels.shape == (1, 1, 251, 251) and 0.2 < head.mean() < 0.95
        y0, y1, x0, x1 = (int(round(a)) for a in (r.cy - r.h / 2, r.cy + r.h / 2, r.cx - r.w / 2, r.cx + r.w / 2))
        assert 0 <= y0 < y1 < 251 and 0 <= x0 < x1 < 251
        assert np.percentile(image[head], 99) == pytest.approx(1, abs=1e-4)  # scaled inside the head
        ratios.append(image[y0:y1 + 1, x0:x1 + 1].mean() / image[head].mean())
        swapped.append(image[x0:x1 + 1, y0:y1 + 1].mean() / image[head].mean())
    assert len(ratios) >= 30
    assert np.median(ratios) > 1.1 and np.median(ratios) > np.median(swapped) + 0.1


# ---------------------------------------------------------------------------------------------------------------
# The official release's structure, written here


def write_official(path: Path, image: np.ndarray, mask: np.ndarray, label: float, pid: str) -> Path:
    """One slice as MATLAB v7.3 stores it: struct cjdata; every matrix column-major, so HDF5 holds its transpose;
    PID a 1 x n char row of uint16 codes; tumorBorder a 1 x 2k row [x1, y1, ...] (1-based, x = column)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ys, xs = np.nonzero(mask)
    border = np.stack([xs + 1, ys + 1], axis=1).ravel()[None, :].astype(float) if len(ys) else np.zeros((1, 0))
    with h5py.File(path, "w") as f:
        c = f.create_group("cjdata")
        c["image"] = np.asarray(image, np.int16).T
        c["label"] = np.array([[float(label)]])
        c["PID"] = np.array([[ord(ch) for ch in pid]], np.uint16).T
        c["tumorBorder"] = border.T
        c["tumorMask"] = np.asarray(mask, np.uint8).T
    return path


def _slice(side: int = 64, rows=slice(20, 30), cols=slice(20, 30), level: int = 900):
    """A head (a bright disc of 300) with a brighter tumour at rows x cols; (image, mask)."""
    yy, xx = np.mgrid[:side, :side]
    image = np.where((yy - side / 2) ** 2 + (xx - side / 2) ** 2 < (0.45 * side) ** 2, 300, 0).astype(np.int16)
    mask = np.zeros((side, side), bool)
    mask[rows, cols] = True
    image[mask] = level
    return image, mask


@pytest.fixture
def release(tmp_path) -> Path:
    """Four patients in two folders like the release's, file numbers interleaved, and cvind.mat."""
    root = tmp_path / "release"
    a = root / "brainTumorDataPublic_1-3"
    write_official(a / "1.mat", *_slice(), 1, "PAT-A")
    write_official(a / "2.mat", *_slice(), 2, "PAT-B")
    write_official(a / "3.mat", *_slice(rows=slice(22, 34)), 1, "PAT-A")
    b = root / "brainTumorDataPublic_4-5"
    write_official(b / "4.mat", *_slice(), 3, "PAT-C")
    write_official(b / "5.mat", *_slice(), 2, "PAT-D")
    with h5py.File(root / "cvind.mat", "w") as f:
        f["cvind"] = np.arange(1, 6, dtype=float)[None, :]
    return root


def test_official_files_are_grouped_by_pid_with_the_official_label_coding(release):
    assert figshare.is_figshare_layout(release)
    c = dataset.open_cohort(release, progress=False)
    assert isinstance(c, figshare.FigshareCohort) and isinstance(c, DataSource)
    assert c.layout == "mat" and c.unit == "patient" and c.target_spacing == 1.0
    t = c.table.set_index("patient")
    assert list(t.index) == ["PAT-A", "PAT-B", "PAT-C", "PAT-D"] and c.qc.empty  # cvind.mat is no slice
    assert t.tumour_type.to_dict() == {"PAT-A": "meningioma", "PAT-B": "glioma", "PAT-C": "pituitary",
                                       "PAT-D": "glioma"}
    assert t.slices.to_dict() == {"PAT-A": 2, "PAT-B": 1, "PAT-C": 1, "PAT-D": 1}
    assert set(t.unit) == {"patient"} and t.pixel_spacing.eq(0.49 * 512 / 64).all()
    assert [p.name for p in c.files["PAT-A"]] == ["1.mat", "3.mat"]  # z in file-number order
    assert c.labels().to_dict() == {"PAT-A": 0.0, "PAT-B": 1.0, "PAT-C": 0.0, "PAT-D": 1.0}
    assert c.labels("tumour_type==meningioma").to_dict()["PAT-A"] == 1.0
    a = c.regions("PAT-A")  # slice 2 (3.mat) has the taller tumour: rows 23..34 (1-based)
    assert a[["Start Slice", "Start Row", "End Row"]].values.tolist() == [[1, 21, 30], [2, 23, 34]]


def test_a_mask_drawn_top_right_in_matlabs_image_comes_out_top_right(tmp_path):
    """h5py returns the transpose of MATLAB's matrices: read as stored, the top-right tumour lands bottom-left."""
    image, mask = _slice(rows=slice(4, 14), cols=slice(40, 60))
    write_official(tmp_path / "r" / "1.mat", image, mask, 2, "P1")
    c = figshare.load_cohort(tmp_path / "r", progress=False)
    box = c.boxes.iloc[0]
    assert (box["Start Row"], box["End Row"], box["Start Column"], box["End Column"]) == (5, 14, 41, 60)
    v = c.volume("P1", 1.0)  # 64 pixels of 3.92 mm -> 251 of 1 mm
    ys, xs = np.nonzero(v.mask[0])
    assert ys.max() < 0.3 * 251 and xs.min() > 0.6 * 251
    r = v.regions.iloc[0]
    assert r.cy < 0.3 * 251 and r.cx > 0.6 * 251
    inside = v.channels[0, 0][v.mask[0]]
    assert inside.mean() > 2 * v.channels[0, 0][v.body[0] & ~v.mask[0]].mean()  # the image turned the same way


def test_one_bad_file_excludes_only_its_patient_with_the_file_named(release):
    sub = release / "brainTumorDataPublic_4-5"
    four = (sub / "4.mat").read_bytes()
    (sub / "4.mat").write_bytes(four[: len(four) // 3])  # a partial download: not even the PID can be read
    write_official(sub / "6.mat", *_slice(), 4, "PAT-E")  # an unknown label
    write_official(sub / "7.mat", _slice()[0], np.zeros((64, 64), bool), 2, "PAT-F")  # an empty tumour mask
    write_official(sub / "8.mat", *_slice(), 2, "PAT-D")  # PAT-D's second slice, damaged after its PID
    with h5py.File(sub / "8.mat", "a") as f:
        del f["cjdata/tumorMask"]
    c = figshare.load_cohort(release, progress=False)
    assert c.patients == ["PAT-A", "PAT-B"]
    reasons = dict(zip(c.qc.patient, c.qc.reason, strict=True))
    assert reasons["file brainTumorDataPublic_4-5/4.mat"].startswith("unreadable image: brainTumorDataPublic_4-5/4.mat")
    assert reasons["PAT-E"].startswith("unknown tumour label: brainTumorDataPublic_4-5/6.mat: label 4")
    assert reasons["PAT-F"] == "empty tumour mask: brainTumorDataPublic_4-5/7.mat"
    assert reasons["PAT-D"].startswith("unreadable image: brainTumorDataPublic_4-5/8.mat")
    assert len(c.qc) == 4 and c.flow().patients.iloc[-1] == 2


# ---------------------------------------------------------------------------------------------------------------
# The JPEG derivative's QC, on files written here


def _jpeg_slice(root: Path, folder: str, n: int, line: str | None) -> Path:
    image, _ = _slice()
    path = root / folder / f"{n}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((image // 4).astype(np.uint8)).save(path, quality=95)
    if line is not None:
        path.with_suffix(".txt").write_text(line)
    return path


def test_a_jpeg_slice_that_cannot_be_used_is_excluded_with_its_file_named(tmp_path):
    root = tmp_path / "jpeg"
    _jpeg_slice(root, "2", 1, "2 0.39 0.39 0.16 0.16")  # fine: glioma
    _jpeg_slice(root, "0", 2, "0 0.39 0.39 0.16 0.16")  # fine: pituitary
    _jpeg_slice(root, "1", 3, None)  # no box file
    _jpeg_slice(root, "1", 4, "1 0.5 0.5")  # malformed
    _jpeg_slice(root, "1", 5, "2 0.39 0.39 0.16 0.16")  # a label other than its folder's
    _jpeg_slice(root, "1", 6, "1 0.95 0.5 0.2 0.2")  # the box overruns the image
    (root / "2" / "7.jpg").write_bytes(b"")  # an empty file
    c = figshare.load_cohort(root, progress=False)
    assert c.patients == ["slice-0001", "slice-0002"] and c.table.tumour_type.tolist() == ["glioma", "pituitary"]
    reasons = dict(zip(c.qc.patient, c.qc.reason, strict=True))
    assert reasons == {
        "slice-0003": "missing box file: 1/3.txt",
        "slice-0004": "malformed box file: 1/4.txt: 3 fields (expected one line 'label x_center y_center width "
                      "height')",
        "slice-0005": "unknown tumour label: 1/5.txt: label 2 in class folder 1",
        "slice-0006": "box outside the image: 1/6.txt: x 0.850..1.050, y 0.400..0.600 (fractions of the side)",
        "slice-0007": reasons["slice-0007"]}
    assert reasons["slice-0007"].startswith("unreadable image: 2/7.jpg: ")
    box = c.regions("slice-0001").iloc[0]  # 0.31..0.47 of 64 pixels: pixels 20..30, 1-based 20..31
    assert (box["Start Row"], box["End Row"], box["Start Column"], box["End Column"]) == (20, 31, 20, 31)
    path = c.files["slice-0002"][0]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated after the scan
    with pytest.raises(figshare.UnreadableImage) as err:
        c.volume("slice-0002")
    assert err.value.reason.startswith("unreadable image: 0/2.jpg")


def test_targets_and_the_post_contrast_channel():
    assert descriptor.figshare_descriptor().target == "tumour_type==glioma"
    assert descriptor.figshare_descriptor("tumour_type==pituitary").negative == "glioma or meningioma"
    for bad in ("COCCluster==2", "tumour_type==astrocytoma", "glioma"):
        with pytest.raises(ValueError, match=bad):
            descriptor.figshare_descriptor(bad)
    assert descriptor.contrast_channel(descriptor.lgg_descriptor("COCCluster", "2")) == 2
    assert descriptor.contrast_channel(descriptor.duke_descriptor()) == 0
    assert descriptor.contrast_channel(descriptor.figshare_descriptor()) == 0
    with pytest.raises(ValueError, match="post-contrast"):
        descriptor.contrast_channel(("T2", "FLAIR"))


# ---------------------------------------------------------------------------------------------------------------
# The synthetic cohort


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("figshare")
    return {(layout, signal): synthesize_figshare(out / f"{layout}-{signal}", patients=8, seed=1, signal=signal,
                                                  layout=layout, size=256)
            for layout in ("mat", "jpeg") for signal in (True, False) if layout == "mat" or signal}


def test_the_synthetic_cohort_reads_back_in_both_layouts(synthetic):
    truth = pd.read_csv(synthetic["mat", True] / "synthetic_truth.csv")
    mat = figshare.load_cohort(synthetic["mat", True], progress=False)
    assert (synthetic["mat", True] / "cvind.mat").is_file() and mat.qc.empty
    assert (synthetic["mat", True] / "1.mat").exists() is False  # in release-style folders
    assert mat.table.set_index("patient").tumour_type.to_dict() == truth.set_index("pid").tumour_type.to_dict()
    assert mat.table.set_index("patient").slices.to_dict() == truth.set_index("pid").slices.to_dict()
    assert (synthetic["mat", True] / "brainTumorDataPublic_1-" f"{truth.slices.sum()}" / "1.mat").read_bytes()[:19] \
        == b"MATLAB 7.3 MAT-file"
    jpeg = figshare.load_cohort(synthetic["jpeg", True], progress=False)
    per_slice = truth.loc[truth.index.repeat(truth.slices)].tumour_type.tolist()
    assert jpeg.qc.empty and jpeg.unit == "slice" and jpeg.table.tumour_type.tolist() == per_slice
    assert set(truth.tumour_type) == {"glioma", "meningioma", "pituitary"}
    for c in (mat, jpeg):  # the mask and boxes lie on the bright meningiomas and pituitary tumours
        for unit in c.table[c.table.tumour_type != "glioma"].patient[:4]:
            v = c.volume(unit)
            r = v.regions.iloc[0]
            image = v.channels[0, int(r.slice)]
            core = image[int(r.cy - r.h / 4):int(r.cy + r.h / 4) + 1, int(r.cx - r.w / 4):int(r.cx + r.w / 4) + 1]
            assert core.mean() > 1.3 * image[v.body[int(r.slice)]].mean()
            if v.mask is not None:
                assert image[v.mask[int(r.slice)]].mean() > 1.3 * image[v.body[int(r.slice)]].mean()


def test_same_arguments_same_bytes(synthetic, tmp_path):
    for layout in ("mat", "jpeg"):
        again = synthesize_figshare(tmp_path / layout, patients=8, seed=1, signal=True, layout=layout, size=256)
        assert _digest(again) == _digest(synthetic[layout, True])
    other = synthesize_figshare(tmp_path / "seed2", patients=8, seed=2, layout="jpeg", size=256)
    assert _digest(other) != _digest(synthetic["jpeg", True])


def _rim_contrast(volume) -> float:
    """Mean over tumour slices of (mean of the tumour's outer ring - mean of its centre), by distance to its edge."""
    values = []
    for z in range(volume.mask.shape[0]):
        m = volume.mask[z]
        if m.sum() < 50:
            continue
        rel = ndimage.distance_transform_edt(m)
        rel = rel / rel.max()
        image = volume.channels[0, z]
        values.append(image[(rel > 0.05) & (rel < 0.35)].mean() - image[rel > 0.6].mean())
    return float(np.mean(values))


def test_synthetic_gliomas_have_a_rim_with_signal_and_none_without(synthetic):
    contrast = {}
    for signal in (True, False):
        c = figshare.load_cohort(synthetic["mat", signal], progress=False)
        gliomas = c.table[c.table.tumour_type == "glioma"].patient
        contrast[signal] = [_rim_contrast(c.volume(p)) for p in gliomas]
    assert len(contrast[True]) >= 3
    assert min(contrast[True]) > 0.03 and max(contrast[False]) < 0.03
    assert np.mean(contrast[True]) > np.mean(contrast[False]) + 0.04


def test_a_patch_set_of_one_channel_builds_from_either_layout(synthetic, tmp_path):
    for layout in ("mat", "jpeg"):
        ps = dataset.build_patch_set(synthetic[layout, True], patch_sizes=(80,), n_augment=1, cache_dir=tmp_path,
                                     progress=False)
        arr = ps.patches(80)
        assert arr.shape[1:] == (1, 78, 78) and len(arr) == len(ps.index) and np.isfinite(arr).all()
        assert ps.descriptor.dataset == "figshare" and ps.descriptor.channels == ("post-contrast T1",)
        assert ps.meta["target_spacing_mm"] == 1.0 and {"train", "test", "normal"} <= set(ps.index.role)
        normal = arr[(ps.index.role == "normal").to_numpy()]
        assert normal.astype(float).mean(axis=(1, 2, 3)).min() > 0.1  # cut on the head, not in the air
        assert 0.3 < np.percentile(arr.astype(float), 99) < 1.5  # scaled: the head's 99th percentile is 1


def test_the_generator_refuses_to_replace_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "figshare-jpeg").mkdir()
    (tmp_path / "figshare-jpeg" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        synthesize_figshare(tmp_path, patients=3, layout="jpeg", size=64)
    root = synthesize_figshare(tmp_path / "ok", patients=3, layout="jpeg", size=64)
    shutil.copy(root / "synthetic_truth.csv", root / "2" / "mine.csv")
    with pytest.raises(FileExistsError, match="mine.csv"):
        synthesize_figshare(tmp_path / "ok", patients=4, layout="jpeg", size=64)
    (root / "2" / "mine.csv").unlink()
    assert synthesize_figshare(tmp_path / "ok", patients=4, layout="jpeg", size=64) == root


@pytest.mark.slow
def test_a_planted_cohort_tells_its_types_apart_by_the_lgg_patterns_or_by_size_only(tmp_path):
    cohorts = {signal: synthesize_figshare(tmp_path / str(signal), patients=9, seed=3, signal=signal, size=256,
                                           planted=True) for signal in (True, False)}
    c = figshare.load_cohort(cohorts[True], progress=False)
    contrast = {t: [_rim_contrast(c.volume(p)) for p in c.table[c.table.tumour_type == t].patient]
                for t in ("glioma", "meningioma", "pituitary")}
    assert min(contrast["glioma"]) > 0.05 and max(map(abs, contrast["meningioma"])) < 0.03  # the cluster-2 rim
    truth = {s: pd.read_csv(root / "synthetic_truth.csv") for s, root in cohorts.items()}
    assert (truth[True].rim > 0).tolist() == (truth[True].tumour_type == "glioma").tolist()
    assert (truth[False].rim == 0).all()  # without signal no rim, and the types differ by size only
    size = truth[False].groupby("tumour_type").radius_mm
    assert size.max()["pituitary"] < size.min()["meningioma"] <= size.max()["meningioma"] < size.min()["glioma"]
    release_look = synthesize_figshare(tmp_path / "look", patients=9, seed=3, size=256)
    assert "planted" not in json.loads((release_look / "cohort.json").read_text())["parameters"]
