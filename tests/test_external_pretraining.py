"""The learn layer of an external in-domain source (issue 28): pretraining tasks, one-channel sources, the first
layer adapted to the study's post-contrast channel, the held-out unit."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from radiolib.core import cache
from radiolib.data.dataset import PatchSet
from radiolib.learn import pretraining, training, weights
from radiolib.run import inputs, params

TYPES = ("glioma", "meningioma", "pituitary")
PX = 16


def _source(root, channels=1, types=TYPES, unit="slice", n=12, seed=0) -> PatchSet:
    """A tiny patch set: per unit 1 train, 2 augmented and 3 normal patches; a type's patches differ in brightness."""
    root.mkdir(parents=True)
    units = [f"u{i:03d}" for i in range(n)]
    rows = [(u, role) for u in units for role, k in (("train", 1), ("augmented", 2), ("normal", 3)) for _ in range(k)]
    index = pd.DataFrame(rows, columns=["patient", "role"])
    table = pd.DataFrame({"patient": units, "label": 0, "unit": unit})
    if types:
        table["tumour_type"] = [types[i % len(types)] for i in range(n)]
    rng = np.random.default_rng(seed)
    level = index.patient.map(dict(zip(units, (np.arange(n) % 3 + 1) / 3))) * index.role.ne("normal")
    x = rng.random((len(index), channels, PX, PX)) * 0.3 + level.to_numpy()[:, None, None, None]
    np.save(root / f"patches_{PX}.npy", x.astype(np.float16))
    return PatchSet(path=root, index=index, table=table, qc=pd.DataFrame(), meta={})


def _cfg(**kw):
    return training.TrainConfig(input_size=32, epochs=1, patches_per_epoch=24, batch_size=8, normalize="imagenet",
                                bn_patches=16, channels_last=False, device="cpu", **kw)


def _todays_key(net, source_set, patch_size, cfg, patients=None):
    """`domain_checkpoint`'s cache key as computed before pretraining tasks existed (kept to check it is unchanged)."""
    chosen = {} if patients is None else {"patients": sorted(str(p) for p in patients)}
    return cache.key_of(source=source_set.path.name, **pretraining.recipe(net, patch_size, cfg), **chosen)


def _first_conv_output(model, x):
    """The output of the network's first convolution for input x (a forward hook; the whole net runs, eval mode)."""
    seen = {}
    handle = weights.first_conv(model).register_forward_hook(lambda m, a, out: seen.setdefault("out", out))
    with torch.no_grad():
        model.eval()(x)
    handle.remove()
    return seen["out"]


def test_tumour_type_task_labels_tumour_patches_by_the_patients_type(tmp_path):
    src = _source(tmp_path / "src")
    rows, y, patients, classes = pretraining.task_labels(src, PX, "tumour_type")
    assert classes == sorted(TYPES) and set(np.unique(y)) == {0, 1, 2}
    assert set(src.index.role[rows]) == {"train", "augmented"}  # tumour-centred patches only, never normal tissue
    types = dict(zip(src.table.patient, src.table.tumour_type))
    assert [classes[k] for k in y] == [types[p] for p in src.index.patient[rows]]
    assert patients == sorted(src.table.patient)
    two = _source(tmp_path / "two", types=("glioma", "pituitary"))
    assert pretraining.task_labels(two, PX, "tumour_type")[3] == ["glioma", "pituitary"]  # k = the types present
    some = pretraining.task_labels(src, PX, "tumour_type", patients=["u000", "u001"])
    assert some[2] == ["u000", "u001"] and some[3] == ["glioma", "meningioma"]
    duke_like = _source(tmp_path / "duke", channels=3, types=None)
    with pytest.raises(ValueError, match="tumour_type` column"):
        pretraining.task_labels(duke_like, PX, "tumour_type")
    with pytest.raises(ValueError, match="tumour_type` column"):
        pretraining.pretrain("cifar", duke_like, PX, tmp_path / "out", _cfg(), progress=False, task="tumour_type")


def test_the_lesion_task_keeps_its_cache_keys_and_another_task_gets_its_own(tmp_path, monkeypatch):
    src = _source(tmp_path / "src", channels=3, types=None)
    calls = []
    monkeypatch.setattr(pretraining, "pretrain", lambda *args: calls.append(args))
    cfg = _cfg()
    for patients in (None, ["u001", "u000"]):
        plain = pretraining.domain_checkpoint("cifar", src, PX, cfg, tmp_path / "c", False, "s", patients)
        lesion = pretraining.domain_checkpoint("cifar", src, PX, cfg, tmp_path / "c", False, "s", patients,
                                               task="lesion")
        assert plain.name == lesion.name == _todays_key("cifar", src, PX, cfg, patients)
        other = pretraining.domain_checkpoint("cifar", src, PX, cfg, tmp_path / "c", False, "s", patients,
                                              task="tumour_type")
        assert other.name != plain.name
    assert [c[-1] for c in calls] == ["lesion", "tumour_type", "lesion", "tumour_type"]  # built once per key
    with pytest.raises(ValueError, match="unknown pretraining task"):
        pretraining.domain_checkpoint("cifar", src, PX, cfg, tmp_path / "c", task="subtype")


def test_a_one_channel_source_pretrains_k_way_and_its_network_reads_the_studys_contrast_channel(tmp_path):
    src = _source(tmp_path / "src", channels=1, unit="slice")
    out = pretraining.pretrain("googlenet", src, PX, tmp_path / "ckpt", _cfg(), progress=False, task="tumour_type")
    record = weights.domain_meta(out, "googlenet")
    meta = record["meta"]
    assert record["num_classes"] == 3 and meta["classes"] == sorted(TYPES) and meta["task_name"] == "tumour_type"
    assert meta["input_channels"] == 1 and meta["held_out_unit"] == "slices"
    assert sum(v["patches"] for v in meta["held_out_by_class"].values()) == meta["held_out_patches"] > 0
    correct = sum(v["correct"] for v in meta["held_out_by_class"].values())
    assert meta["held_out_accuracy"] == round(correct / meta["held_out_patches"], 4)
    assert weights.domain_input_channels(out, "googlenet") == 1
    # through the real input pipeline: the study's post-contrast channel (2) equal to the source slice, others not
    scorer = training.PatchScorer(None, _cfg(), None, None)
    slices = src.patches(PX)[:4].astype(np.float32)
    study = np.random.default_rng(1).random((4, 3, PX, PX)).astype(np.float32)
    study[:, 2] = slices[:, 0]
    source_input = scorer.batch(np.repeat(slices, 3, axis=1))
    pretrained = weights.architecture("googlenet", 3, seed=0, **record["architecture"])  # as saved, not adapted
    pretrained.load_state_dict(torch.load(weights.domain_checkpoint_path(out, "googlenet"), weights_only=True))
    adapted = weights.load_pretrained("googlenet", "domain", domain_dir=out, contrast_channel=2, num_classes=2)
    expected = _first_conv_output(pretrained, source_input)
    assert torch.allclose(_first_conv_output(adapted, scorer.batch(study)), expected, atol=1e-5)
    assert not torch.allclose(_first_conv_output(pretrained, scorer.batch(study)), expected, atol=1e-2)


def test_the_held_out_unit_follows_the_sources_table(tmp_path):
    assert pretraining.held_out_unit(_source(tmp_path / "a", unit="slice")) == "slices"
    patients = _source(tmp_path / "b", unit="patient")
    assert pretraining.held_out_unit(patients) == "patients"
    out = pretraining.pretrain("googlenet_r", patients, PX, tmp_path / "lesion", _cfg(), progress=False)
    meta = weights.domain_meta(out, "googlenet_r")["meta"]  # the lesion task on a one-channel source of patients
    assert (meta["held_out_unit"], meta["input_channels"], meta["classes"]) == ("patients", 1, ["normal", "lesion"])
    assert meta["task"] == "lesion vs normal-tissue patches (no subtype labels)" and meta["task_name"] == "lesion"
    no_unit = _source(tmp_path / "c", channels=3, types=None)
    no_unit.table = no_unit.table.drop(columns="unit")
    assert pretraining.held_out_unit(no_unit) == "patients"  # a Duke or LGG table has no unit column: patients


@pytest.mark.parametrize("net", ["googlenet", "vgg16", "googlenet_r"])
def test_the_adapted_first_layer_answers_the_contrast_channel_as_the_replicated_source(net):
    """GoogLeNet (with transform_input): the first convolution's output equals everywhere. VGG16: the constant
    offset goes into the bias, equal away from the zero-padded border. GoogLeNet_R (bias-free, batch norm next):
    equal after the batch norm, away from the border."""
    def pretrained():
        model = weights.architecture(net, num_classes=2, seed=3).eval()
        for m in model.modules():  # batch-norm statistics as after training (not the initial 0 and 1)
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.linspace(-0.1, 0.1, len(m.running_mean)))
                m.running_var.copy_(torch.linspace(0.5, 2.0, len(m.running_var)))
        return model

    model = pretrained()
    rng = np.random.default_rng(0)
    v = torch.from_numpy(rng.random((2, 1, 32, 32))).float()
    study = torch.from_numpy(rng.random((2, 3, 32, 32))).float()
    study[:, 1] = v[:, 0]
    to_input = weights.imagenet_normalize  # how transfer's scorer and the feature extractor feed [0, 1] values
    adapted = weights.adapt_first_conv(pretrained(), 1)

    def response(m, x):
        if net != "googlenet_r":
            return _first_conv_output(m, to_input(x))
        with torch.no_grad():
            return m.conv1(to_input(x))  # conv, batch norm, ReLU

    expected = response(model, v.expand(-1, 3, -1, -1))
    got = response(adapted, study)
    border = {"googlenet": 0, "vgg16": 1, "googlenet_r": 2}[net]  # outputs whose window reaches the zero padding
    inner = (slice(None), slice(None), slice(border, got.shape[-2] - border), slice(border, got.shape[-1] - border))
    assert torch.allclose(got[inner], expected[inner], atol=1e-4)
    assert not torch.allclose(response(model, study)[inner], expected[inner], atol=1e-2)  # unadapted: it differs
    assert (weights.first_conv(adapted).weight[:, [0, 2]] == 0).all()  # other channels start from zero


def test_a_one_channel_checkpoint_needs_the_contrast_channel_and_a_three_channel_one_is_unchanged(tmp_path):
    model = weights.architecture("googlenet_r", num_classes=3, seed=0)
    weights.save_domain_checkpoint(model, tmp_path / "one", "googlenet_r",
                                   {"task": "t", "patients": [], "input_channels": 1})
    with pytest.raises(ValueError, match="contrast_channel"):
        weights.load_pretrained("googlenet_r", "domain", domain_dir=tmp_path / "one")
    weights.save_domain_checkpoint(model, tmp_path / "three", "googlenet_r", {"task": "t", "patients": []})
    for channel in (None, 2):
        loaded = weights.load_pretrained("googlenet_r", "domain", domain_dir=tmp_path / "three",
                                         contrast_channel=channel)
        assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))


def test_pretraining_gives_the_same_network_whatever_the_process_drew_before(tmp_path):
    """Dropout draws from torch's global generator: pretraining seeds it, so the checkpoint does not depend on what
    ran before it in the process (another notebook's networks, another test)."""
    src = _source(tmp_path / "src", channels=1)
    states = []
    for i, draws in enumerate((0, 5)):
        torch.rand(draws)  # what ran before: nothing, or a few draws from the global generator
        out = pretraining.pretrain("googlenet", src, PX, tmp_path / f"ckpt{i}", _cfg(), progress=False,
                                   task="tumour_type")
        states.append(torch.load(weights.domain_checkpoint_path(out, "googlenet"), weights_only=True))
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_the_pretraining_learning_rate_is_a_parameter_whose_default_keeps_the_cached_checkpoints():
    P = SimpleNamespace(**params.defaults("03_transfer_learning"))
    default = inputs.domain_config(P)
    assert default.lr == training.TrainConfig(input_size=default.input_size).lr  # so recipe() and its keys unchanged
    P.domain_lr = 1e-3
    faster = inputs.domain_config(P)
    assert faster.lr == 1e-3 and pretraining.recipe("googlenet", 80, faster) != pretraining.recipe("googlenet", 80,
                                                                                                    default)
    with pytest.raises(ValueError, match="domain_lr"):
        params.validate("03_transfer_learning", {**params.defaults("03_transfer_learning"), "domain_lr": 0})
