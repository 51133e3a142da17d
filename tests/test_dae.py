"""The denoising autoencoder of Liu & Hu 2023 (issue 13, notebook 07): its published shape, the published loss that
trains nothing, losses that do, and the quantile-normalised deep radiomic features."""
import numpy as np
import pytest
import torch

from radiolib.learn import dae


def _slices(n: int = 64, seed: int = 0) -> np.ndarray:
    """n 64 x 64 slices in [0, 1]: a bright disc of random place, size and brightness on a dim noisy background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:64, :64]
    out = np.empty((n, 64, 64), np.float32)
    for i in range(n):
        cy, cx, r = rng.uniform(16, 48), rng.uniform(16, 48), rng.uniform(5, 14)
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2) * rng.uniform(0.5, 0.9)
        out[i] = np.clip(0.1 + disc + rng.normal(0, 0.02, (64, 64)), 0, 1)
    return out


def test_the_network_is_shaped_as_published():
    model = dae.DenoisingAutoencoder()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (1, 16, (3, 3)), (16, 16, (3, 3)), (16, 16, (3, 3)),  # encoder
        (16, 16, (3, 3)), (16, 16, (3, 3)), (16, 16, (3, 3)),  # decoder
        (16, 1, (3, 3))]  # the sigmoid output
    x = torch.from_numpy(_slices(4)).unsqueeze(1)
    assert model.encode(x).shape == (4, 16, 8, 8) and model.encode(x, upto=2).shape == (4, 16, 16, 16)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (4, 1, 64, 64) and float(out.min()) > 0 and float(out.max()) < 1


def test_the_noise_is_gaussian_of_the_given_scale_and_clipped():
    gen = torch.Generator().manual_seed(0)
    mid = dae.add_noise(torch.full((1, 1, 64, 64), 0.5), 0.05, gen)
    assert abs(float((mid - 0.5).std()) - 0.05) < 0.005
    edges = dae.add_noise(torch.cat([torch.zeros(1, 1, 64, 64), torch.ones(1, 1, 64, 64)]), 0.05, gen)
    assert float(edges.min()) == 0.0 and float(edges.max()) == 1.0


@pytest.mark.slow
def test_the_published_keras_loss_trains_nothing_while_mse_and_image_cosine_learn():
    """Keras' cosine_proximity over the size-1 channel axis makes each pixel its own sign: its gradient is zero up to
    rounding, so Adam only moves the weights by rounding noise and the reconstruction stays where it started."""
    images = _slices()
    x = torch.from_numpy(images).unsqueeze(1)
    untrained = dae.train(images, dae.DaeConfig(epochs=0)).model
    gradient = {}
    for loss in ("keras_cosine", "mse"):
        untrained.zero_grad()
        dae.reconstruction_loss(loss, untrained(x), x).backward()
        gradient[loss] = max(float(p.grad.abs().max()) for p in untrained.parameters())
    untrained.zero_grad()
    assert gradient["keras_cosine"] < 1e-8 * gradient["mse"], gradient  # measured: 7e-12 against 0.18
    with torch.no_grad():
        start = {loss: float(dae.reconstruction_loss(loss, untrained(x), x)) for loss in dae.LOSSES}
    keras = dae.train(images, dae.DaeConfig(loss="keras_cosine", epochs=2))
    assert keras.losses == [pytest.approx(-1.0)] * 2  # every pixel positive: -1 whatever the weights
    moved = max(float((a - b).abs().max()) for a, b in zip(untrained.state_dict().values(),
                                                           keras.model.state_dict().values()))
    assert moved < 1e-4, moved
    with torch.no_grad():
        assert float(dae.reconstruction_loss("mse", keras.model(x), x)) == pytest.approx(start["mse"], abs=1e-4)
    for loss in ("mse", "cosine"):
        trained = dae.train(images, dae.DaeConfig(loss=loss, epochs=12, batch_size=8))
        with torch.no_grad():
            end = float(dae.reconstruction_loss(loss, trained.model(x), x))
        assert end < 0.5 * start[loss], (loss, start[loss], end)
        assert trained.losses[-1] < trained.losses[0]


@pytest.mark.slow
def test_training_is_reproducible_from_its_seed():
    images = _slices(32)
    first, again = (dae.train(images, dae.DaeConfig(epochs=2, seed=3)) for _ in range(2))
    assert first.losses == again.losses
    other = dae.train(images, dae.DaeConfig(epochs=2, seed=4))
    assert other.losses != first.losses


@pytest.mark.slow
def test_bf16_training_learns_as_fp32_does_and_leaves_the_features_in_fp32():
    """`dae_bf16` (the demo's CPU budget) autocasts the training steps only: the loss falls about as far as in fp32,
    the weights stay fp32, and the DRFs are computed in fp32."""
    images = _slices()
    x = torch.from_numpy(images).unsqueeze(1)
    runs = {bf16: dae.train(images, dae.DaeConfig(epochs=12, batch_size=8, bf16=bf16)) for bf16 in (False, True)}
    with torch.no_grad():
        start = float(dae.reconstruction_loss("mse", dae.train(images, dae.DaeConfig(epochs=0)).model(x), x))
        end = {bf16: float(dae.reconstruction_loss("mse", r.model(x), x)) for bf16, r in runs.items()}
    assert end[True] < 0.5 * start and end[True] < 2 * end[False], (start, end)
    assert runs[True].losses != runs[False].losses  # autocast did run
    assert all(p.dtype == torch.float32 for p in runs[True].model.parameters())
    assert dae.deep_radiomic_features(runs[True].model, images, normalise=False).dtype == np.float32


def test_quantile_normalisation_by_hand():
    # sorted rows [2, 3, 5] and [1, 4, 4]: reference [1.5, 3.5, 4.5]; the tied 4s share ranks 2-3: (3.5 + 4.5) / 2
    out = dae.quantile_normalise(np.array([[5.0, 2.0, 3.0], [4.0, 1.0, 4.0]]))
    np.testing.assert_allclose(out, [[4.5, 1.5, 3.5], [4.0, 1.5, 4.0]])


def test_the_deep_radiomic_features_are_4096_per_image_on_one_distribution():
    images = _slices(16)
    model = dae.train(images, dae.DaeConfig(epochs=1)).model
    raw = dae.deep_radiomic_features(model, images, normalise=False)
    drf = dae.deep_radiomic_features(model, images)
    assert raw.shape == drf.shape == (16, 4096)
    assert np.array_equal(raw, model.encode(torch.from_numpy(images).unsqueeze(1), upto=2).flatten(1).detach().numpy())
    np.testing.assert_allclose(drf.mean(axis=1), drf.mean(axis=1)[0])  # one distribution: same mean for all
    for r, d in zip(raw, drf):  # each image keeps its own order of features
        assert (np.sign(np.subtract.outer(r, r)[:50]) == np.sign(np.subtract.outer(d, d)[:50])).all()


def test_bad_input_and_settings_are_named():
    with pytest.raises(ValueError, match=r"64 x 64 slices, shape \(n, 64, 64\); got \(2, 32, 32\)"):
        dae.train(np.zeros((2, 32, 32)))
    with pytest.raises(ValueError, match=r"scaled to \[0, 1\]"):
        dae.train(np.full((2, 64, 64), 255.0))
    with pytest.raises(ValueError, match="unknown DAE loss 'cosine_proximity'"):
        dae.train(_slices(2), dae.DaeConfig(loss="cosine_proximity"))


def test_the_inputs_are_the_lesion_centred_first_subtraction_patches_of_a_patch_set(patch_set):
    images, meta = dae.lesion_slices(patch_set)
    train = patch_set.index[patch_set.index.role == "train"]
    assert images.shape == (len(train), 64, 64) and len(meta) == len(train) > 0
    assert meta.patient.tolist() == train.patient.tolist() and set(meta.columns) >= {"patient", "slice", "label"}
    assert images.min() == 0 and images.max() == 1
    units, _ = dae.lesion_intensities(patch_set)  # in the patch set's units
    assert np.array_equal(images, dae.to_input(units))  # one map for every image
    from scipy import ndimage
    first = np.asarray(patch_set.patches(80)[train.index[0], 0], np.float32)  # channel 0: post1 - pre
    other = ndimage.zoom(first, 64 / first.shape[0], order=1)[:64, :64]  # an independent resize
    assert np.corrcoef(units[0].ravel(), other.ravel())[0, 1] > 0.9  # area against bilinear: the same patch
    assert patch_set.descriptor.channels[0] == "post1 - pre"
    with pytest.raises(ValueError, match="no patches of role 'lesion'"):
        dae.lesion_slices(patch_set, role="lesion")


def test_whole_slices_are_the_lesion_slices_of_the_volume_with_the_lesion_where_its_box_is(patch_set, faulty_cohort):
    from radiolib.data import dataset
    _, meta = dae.lesion_slices(patch_set)
    meta = meta[meta.patient.isin(meta.patient.unique()[:2])]
    source = dataset.open_cohort(faulty_cohort, progress=False)
    slices = dae.whole_slices(source, meta)
    assert slices.shape == (len(meta), 64, 64) and slices.min() >= 0 and slices.max() <= 1
    train = patch_set.index[patch_set.index.role == "train"].reset_index(drop=True).loc[meta.index]
    shapes = {p: source.volume(p, source.target_spacing).channels.shape[1:] for p in meta.patient.unique()}
    brightness = []  # the lesion centre against the slice's 90th percentile (vessels and heart enhance too)
    for image, row in zip(slices, train.itertuples()):
        height, width = shapes[row.patient][1:]
        y, x = int(row.cy * 64 / height), int(row.cx * 64 / width)
        brightness.append(image[max(0, y - 1):y + 2, max(0, x - 1):x + 2].mean() / np.percentile(image, 90))
    # the lesion enhances in post1 - pre: on its fullest slice (not on the tips its box also covers) it stands out
    best = train.assign(b=brightness).groupby(["patient", "lesion"]).b.max()
    assert (best > 1).all(), best  # elsewhere: the median slice pixel is a tenth of the 90th percentile
    depth = shapes[meta.patient.iloc[0]][0]
    beyond = meta.head(1).assign(slice=depth + 5)
    with pytest.raises(ValueError, match=f"patient {beyond.patient.iloc[0]}: slice {depth + 5} is outside"):
        dae.whole_slices(source, beyond)
