"""Patch geometry: sizes, centres, rotations inside the volume, the 25-patch test layout."""
import numpy as np
import pandas as pd
import pytest

from radiolib.data import patches


def _regions(slices, cy=20.0, cx=30.0, h=6.0, w=8.0, lesion=1):
    return pd.DataFrame([{"lesion": lesion, "slice": z, "cy": cy, "cx": cx, "h": h, "w": w} for z in slices])


def test_patch_pixels_keep_millimetres():
    assert patches.patch_pixels(120, patches.PAPER_SPACING_MM) == 120
    assert patches.patch_pixels(120, 4 * patches.PAPER_SPACING_MM) == 30
    assert patches.patch_pixels(80, 3.8571) == 20


def test_sample_patch_is_centred_and_sized():
    vol = np.zeros((3, 4, 60, 70), np.float32)
    vol[:, 2, 30, 40] = 1.0  # a single bright voxel
    patch, cy, cx = patches.sample_patch(vol, 2, 30.0, 40.0, 11)
    assert patch.shape == (3, 11, 11)
    assert (cy, cx) == (30.0, 40.0)
    assert patch[0, 5, 5] == pytest.approx(1.0) and patch[0].sum() == pytest.approx(1.0)


@pytest.mark.parametrize("angle", [0.0, 30.0, 45.0, 90.0, 200.0])
@pytest.mark.parametrize("centre", [(0.0, 0.0), (59.0, 69.0), (5.0, 65.0), (30.0, 35.0)])
def test_rotated_patches_stay_inside_the_volume(angle, centre):
    ny, nx, px = 60, 70, 21
    cy, cx = patches.clamp_centre(centre[0], ny, patches._half_extent(px, angle)), \
        patches.clamp_centre(centre[1], nx, patches._half_extent(px, angle))
    offs = np.arange(px) - (px - 1) / 2
    gy, gx = np.meshgrid(offs, offs, indexing="ij")
    a = np.deg2rad(angle)
    yy, xx = cy + gy * np.cos(a) - gx * np.sin(a), cx + gy * np.sin(a) + gx * np.cos(a)
    assert yy.min() >= -1e-9 and yy.max() <= ny - 1 + 1e-9
    assert xx.min() >= -1e-9 and xx.max() <= nx - 1 + 1e-9
    vol = np.random.default_rng(0).random((3, 2, ny, nx)).astype(np.float32)
    _, cy2, cx2 = patches.sample_patch(vol, 1, *centre, px, angle)
    assert (cy2, cx2) == (cy, cx)


def test_rotation_by_90_degrees_rotates_the_content():
    vol = np.zeros((1, 1, 41, 41), np.float32)
    vol[0, 0, 20, 25] = 1.0  # right of the centre
    patch, _, _ = patches.sample_patch(vol, 0, 20.0, 20.0, 15, angle=90.0)
    y, x = np.unravel_index(np.argmax(patch[0]), patch[0].shape)
    assert (y, x) == (7 - 5, 7) or (y, x) == (7 + 5, 7)  # moved onto the vertical axis


def test_training_layout_has_one_original_and_n_augmented_per_region():
    rng = np.random.default_rng(0)
    layout = patches.training_layout(_regions(range(3, 9)), 30, 4, rng)
    assert len(layout) == 6 * 5
    assert (layout.role == "train").sum() == 6 and (layout.role == "augmented").sum() == 24
    aug = layout[layout.role == "augmented"]
    assert aug.angle.between(0, 360).all() and aug.angle.nunique() == 24
    assert (aug.cy - 20).abs().max() <= 3.0 + 1e-9  # 10% of 30 px


def test_test_layout_is_5_slices_times_5_spots():
    regions = pd.concat([_regions(range(10, 20), h=4, w=4),
                         _regions(range(14, 17), cy=40, cx=10, h=10, w=12, lesion=2)])
    layout = patches.test_layout(regions, 30)
    assert len(layout) == 25
    assert sorted(layout.slice.unique()) == [13, 14, 15, 16, 17]  # the window holding the large lesion
    assert layout.groupby("slice").spot.nunique().eq(5).all()
    middle = layout[(layout.slice == 15) & (layout.spot == "middle")].iloc[0]
    assert (middle.cy, middle.cx, middle.lesion) == (40, 10, 2)
    corner = layout[(layout.slice == 15) & (layout.spot == "top-left")].iloc[0]
    assert (corner.cy, corner.cx) == (40 - 4.5, 10 - 5.5)


def test_thin_lesion_uses_nearest_region_and_volume_edges():
    layout = patches.test_layout(_regions([0]), 12)  # a one-slice lesion on the first slice
    assert sorted(layout.slice.unique()) == [0, 1, 2, 3, 4]
    assert (layout.cy[layout.spot == "middle"] == 20).all()
    short = patches.test_layout(_regions([1]), 3)  # fewer slices than 5
    assert sorted(short.slice.unique()) == [0, 1, 2]


def test_normal_tissue_patches_avoid_every_lesion_box():
    regions = pd.concat([_regions(range(3, 8), cy=30, cx=30, h=10, w=10),
                         _regions(range(5, 7), cy=10, cx=50, h=6, w=6, lesion=2)])
    layout = patches.normal_layout(regions, (64, 64), 12, 15, np.random.default_rng(1))
    assert len(layout) == 15 and (layout.role == "normal").all()
    assert set(layout.slice) <= set(regions.slice)
    for r in layout.itertuples():
        here = regions[regions.slice == r.slice]
        overlap = (np.abs(here.cy - r.cy) <= here.h / 2 + 5.5) & (np.abs(here.cx - r.cx) <= here.w / 2 + 5.5)
        assert not overlap.any()
        assert 5.5 <= r.cy <= 64 - 1 - 5.5 and 5.5 <= r.cx <= 64 - 1 - 5.5
