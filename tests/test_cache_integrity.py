"""Patch caches that cannot give wrong results: keyed on what the loader reads, checked before use, rebuilt."""
import os
import shutil

import numpy as np
import pytest

from radiolib.core import cache
from radiolib.data import dataset


@pytest.fixture(scope="module")
def built(faulty_cohort, tmp_path_factory):
    """A patch cache of its own (the tests damage copies of it)."""
    root = tmp_path_factory.mktemp("intact")
    ps = dataset.build_patch_set(faulty_cohort, [80, 120], 4, 0, root, progress=False)
    return root, ps.path.name, {s: np.array(ps.patches(s)) for s in (80, 120)}


def _damaged_copy(built, tmp_path, size, damage):
    root, key, _ = built
    shutil.copytree(root, tmp_path / "cache")
    damage(tmp_path / "cache" / "patches" / key / f"patches_{size}.npy")
    return tmp_path / "cache"


def _truncate(path):
    os.truncate(path, path.stat().st_size // 2)


def _garbage(path):
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))  # same size, valid-looking nothing


@pytest.mark.parametrize("size, damage, why", [(80, _truncate, "bytes, expected"),
                                               (120, _garbage, "differs from the checksum")])
def test_a_damaged_patch_file_is_named_and_the_entry_rebuilt(built, faulty_cohort, tmp_path, size, damage, why):
    cache_dir = _damaged_copy(built, tmp_path, size, damage)
    with pytest.warns(UserWarning, match=f"patches_{size}.npy: .*{why}"):
        ps = dataset.build_patch_set(faulty_cohort, [80, 120], 4, 0, cache_dir, progress=False)
    for s, original in built[2].items():
        assert np.array_equal(np.asarray(ps.patches(s)), original)
    assert cache.damaged(ps.path) == []


def test_an_edited_copy_of_a_synthetic_cohort_is_not_served_the_clean_patches(patch_set, faulty_cohort, tmp_path):
    copy = shutil.copytree(faulty_cohort, tmp_path / "copy")  # copy2: same bytes, same mtimes
    assert dataset.fingerprint(copy) == dataset.fingerprint(faulty_cohort)
    boxes = copy / "Annotation_Boxes.csv"
    stamp = boxes.stat()
    text = boxes.read_text()
    lines = text.splitlines(keepends=True)
    row = lines[1].rstrip("\n")
    lines[1] = row[:-1] + ("7" if row[-1] != "7" else "8") + "\n"
    boxes.write_text("".join(lines))  # one digit of a box changed: same size; the mtime is even set back
    os.utime(boxes, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert boxes.stat().st_size == stamp.st_size and boxes.read_text() != text
    assert dataset.fingerprint(copy) != dataset.fingerprint(faulty_cohort)
    boxes.write_text(text)

    first = sorted((copy / "Breast_MRI_001").rglob("*.dcm"))[0]
    first.write_bytes(first.read_bytes()[:200])  # one corrupted DICOM: patient 001 can no longer be read
    edited = dataset.build_patch_set(copy, [80, 120], 4, 0, patch_set.path.parents[1], progress=False)
    assert edited.path != patch_set.path
    assert len(edited.table) == len(patch_set.table) - 1 and "Breast_MRI_001" not in set(edited.table.patient)
    assert "Breast_MRI_001" in set(edited.qc.patient)


def test_results_record_an_identity_of_the_data_that_survives_regeneration(faulty_cohort, tmp_path):
    """The cache key follows modification times; what results files record does not (byte-identical reruns)."""
    copy = shutil.copytree(faulty_cohort, tmp_path / "copy", copy_function=shutil.copy)  # new mtimes
    a, b = dataset._data_entries(faulty_cohort), dataset._data_entries(copy)
    assert dataset.fingerprint(faulty_cohort, a) != dataset.fingerprint(copy, b)
    assert dataset.data_identity(a) == dataset.data_identity(b)
    (copy / "Annotation_Boxes.csv").write_text((copy / "Annotation_Boxes.csv").read_text().replace(",1", ",2", 1))
    assert dataset.data_identity(dataset._data_entries(copy)) != dataset.data_identity(a)
