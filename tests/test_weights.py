"""Pretrained weights from a local torchvision cache (never the network), domain checkpoints, layer-wise features."""

import json
import urllib.request

import pytest
import torch
import torchvision.models._api
from torchvision.models import GoogLeNet_Weights
from torchvision.models.googlenet import GoogLeNet

from radiolib.learn import models, weights


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty TORCH_HOME, and any attempt to reach the network fails the test."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "torch" / "hub"))  # what torch.hub.set_dir sets

    def no_network(*args, **kwargs):
        raise AssertionError("tried to use the network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return tmp_path / "torch"


@pytest.fixture(scope="module")
def fake_googlenet_file_state():
    """A randomly initialised state dict laid out like torchvision's GoogLeNet ImageNet file (aux heads included)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        return GoogLeNet(aux_logits=True, transform_input=True, init_weights=True).state_dict()


def test_expected_path_follows_torch_home(torch_home):
    path = weights.expected_path("googlenet")
    assert path == torch_home / "hub" / "checkpoints" / "googlenet-1378be20.pth"
    assert weights.expected_path("vgg16").name == "vgg16-397923af.pth"


def test_imagenet_googlenet_is_loaded_from_the_cache_file_without_network(torch_home, fake_googlenet_file_state):
    path = weights.expected_path("googlenet")
    path.parent.mkdir(parents=True)
    torch.save(fake_googlenet_file_state, path)
    assert weights.available_sources("googlenet")["imagenet"] is None
    model = weights.load_pretrained("googlenet")
    loaded = model.state_dict()
    assert not any(k.startswith("aux") for k in loaded)
    assert model.transform_input and model.fc.out_features == 1000
    for key, value in fake_googlenet_file_state.items():
        if not key.startswith("aux"):
            assert torch.equal(loaded[key], value), key
    two_way = weights.load_pretrained("googlenet", num_classes=2)
    assert two_way.fc.out_features == 2
    assert torch.equal(two_way.inception5b.branch1.conv.weight,
                       fake_googlenet_file_state["inception5b.branch1.conv.weight"])


def test_allow_download_asks_torchvision_for_the_state_dict(torch_home, fake_googlenet_file_state, monkeypatch):
    calls = []

    def fake_get_state_dict(self, *args, **kwargs):
        calls.append((self, kwargs))
        return fake_googlenet_file_state

    monkeypatch.setattr(GoogLeNet_Weights, "get_state_dict", fake_get_state_dict)
    with pytest.raises(weights.WeightsMissing):
        weights.load_pretrained("googlenet")
    model = weights.load_pretrained("googlenet", allow_download=True)
    assert calls == [(GoogLeNet_Weights.IMAGENET1K_V1, {"progress": True, "check_hash": True})]
    assert torch.equal(model.conv1.conv.weight, fake_googlenet_file_state["conv1.conv.weight"])


@pytest.mark.parametrize("net", ["googlenet", "vgg16"])
def test_missing_file_names_the_full_path_and_url(torch_home, net):
    with pytest.raises(weights.WeightsMissing) as caught:
        weights.load_pretrained(net)
    message = str(caught.value)
    assert str(weights.expected_path(net)) in message
    assert weights.PRETRAINED[net].url in message and "allow_download=True" in message
    assert isinstance(caught.value, FileNotFoundError)
    assert str(weights.expected_path(net)) in weights.available_sources(net)["imagenet"]


def test_a_file_that_is_not_the_right_state_dict_is_a_clear_error(torch_home):
    path = weights.expected_path("vgg16")
    path.parent.mkdir(parents=True)
    torch.save({"features.0.weight": torch.zeros(2, 3, 3, 3)}, path)
    with pytest.raises(ValueError, match=r"vgg16-397923af.pth does not hold vgg16's ImageNet weights: \d+ missing"):
        weights.load_pretrained("vgg16")
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="is not a readable vgg16 state dict"):
        weights.load_pretrained("vgg16")


def test_domain_checkpoint_round_trip(tmp_path):
    model = models.build("googlenet_r", seed=5)
    meta = {"task": "LGG COC 2 vs rest", "patients": ["TCGA_CS_4941", "TCGA_CS_4942"]}
    path = weights.save_domain_checkpoint(model, tmp_path / "domain", "googlenet_r", meta)
    assert path == weights.domain_checkpoint_path(tmp_path / "domain", "googlenet_r")
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["meta"] == meta and record["num_classes"] == 2 and record["net"] == "googlenet_r"
    assert weights.available_sources("googlenet_r", tmp_path / "domain")["domain"] is None
    loaded = weights.load_pretrained("googlenet_r", source="domain", domain_dir=tmp_path / "domain")
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    three_way = weights.load_pretrained("googlenet_r", "domain", domain_dir=tmp_path / "domain", num_classes=3)
    assert three_way.fc.out_features == 3
    assert sorted(p.name for p in path.parent.iterdir()) == ["googlenet_r_domain.json", "googlenet_r_domain.pt"]


def test_domain_checkpoint_keeps_what_the_weights_cannot_tell(tmp_path):
    """conv1 stride, input transform and input size change the network but not its state dict's keys."""
    text_reading = models.build("googlenet_r", seed=0, conv1_stride=1)
    weights.save_domain_checkpoint(text_reading, tmp_path, "googlenet_r", {"task": "t", "patients": []})
    loaded = weights.load_pretrained("googlenet_r", "domain", domain_dir=tmp_path)
    assert loaded.conv1.conv.stride == (1, 1) and loaded.transform_input is False
    small = models.build("cifar", seed=0, input_size=64)
    weights.save_domain_checkpoint(small, tmp_path, "cifar", {"task": "t", "patients": []})
    assert weights.load_pretrained("cifar", "domain", domain_dir=tmp_path)(torch.zeros(1, 3, 64, 64)).shape == (1, 2)
    scratch = models.build("googlenet", seed=0)  # transform_input False, unlike the ImageNet GoogLeNet
    weights.save_domain_checkpoint(scratch, tmp_path, "googlenet", {"task": "t", "patients": []})
    assert weights.load_pretrained("googlenet", "domain", domain_dir=tmp_path).transform_input is False


def test_domain_checkpoint_missing_or_without_provenance(tmp_path):
    with pytest.raises(weights.WeightsMissing, match="domain pretraining") as caught:
        weights.load_pretrained("cifar", source="domain", domain_dir=tmp_path)
    assert str(weights.domain_checkpoint_path(tmp_path, "cifar")) in str(caught.value)
    assert "missing" in weights.available_sources("cifar", tmp_path)["domain"]
    assert "no domain_dir" in weights.available_sources("cifar")["domain"]
    with pytest.raises(ValueError, match="needs domain_dir"):
        weights.load_pretrained("cifar", source="domain")
    with pytest.raises(ValueError, match=r"meta lacks \['patients'\]"):
        weights.save_domain_checkpoint(models.build("cifar"), tmp_path, "cifar", {"task": "x"})


def test_random_source_is_a_seeded_control_and_unknown_names_fail(torch_home):
    a = weights.load_pretrained("cifar", source="random", seed=2)
    b = weights.load_pretrained("cifar", source="random", seed=2)
    assert torch.equal(a.features[0].weight, b.features[0].weight)
    sources = weights.available_sources("vgg_r")
    assert sources["random"] is None and "no ImageNet weights for vgg_r" in sources["imagenet"]
    with pytest.raises(ValueError, match="unknown weights source"):
        weights.load_pretrained("cifar", source="scratch")
    with pytest.raises(ValueError, match="unknown network 'resnet50'"):
        weights.available_sources("resnet50")


def test_imagenet_normalize_uses_the_weights_transforms():
    preset = GoogLeNet_Weights.IMAGENET1K_V1.transforms()
    assert weights.imagenet_stats("googlenet") == (tuple(preset.mean), tuple(preset.std))
    x = torch.rand(2, 3, 4, 4)
    out = weights.imagenet_normalize(x)
    assert torch.allclose(out[:, 1], (x[:, 1] - preset.mean[1]) / preset.std[1])
    assert weights.imagenet_normalize(x[0]).shape == (3, 4, 4)
    with pytest.raises(ValueError, match=r"got \(2, 1, 4, 4\)"):
        weights.imagenet_normalize(x[:, :1])


def test_layer_extractor_gives_the_papers_twelve_lengths_in_one_pass(torch_home):
    model = weights.load_pretrained("googlenet", source="random").eval()
    calls = []
    model.conv1.conv.register_forward_hook(lambda module, inputs, output: calls.append(output))
    extractor = weights.layer_extractor(model)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        features = extractor(x)
        logits = model(x)
    assert len(calls) == 2  # one for the extractor, one for the direct call above
    assert tuple(features) == weights.GOOGLENET_LAYERS
    assert tuple(v.shape[1] for v in features.values()) == weights.PAPER_LAYER_LENGTHS
    assert all(v.shape[0] == 2 for v in features.values())
    assert len(weights.PAPER_LAYER_NAMES) == len(weights.GOOGLENET_LAYERS)
    assert torch.allclose(features["fc"], logits, atol=1e-5)
    assert torch.allclose(features["conv1"], torch.relu(model.conv1.bn(calls[0])).mean(dim=(2, 3)), atol=1e-5)
