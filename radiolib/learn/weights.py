"""Pretrained networks for transfer learning and deep features (Zhu et al. 2019, approaches 2 and 3, Table 6).

ImageNet weights of GoogLeNet and VGG16 come from torchvision's weights API and its cache folder
(`torch.hub.get_dir()/checkpoints`, which honours $TORCH_HOME); nothing is downloaded unless asked. In-domain
("domain") checkpoints are files this project writes itself; "random" is the untrained control.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision.models import GoogLeNet_Weights, VGG16_Weights, vgg16
from torchvision.models.feature_extraction import create_feature_extractor
from torchvision.models.googlenet import GoogLeNet

from ..core import cache
from . import models

PRETRAINED = {"googlenet": GoogLeNet_Weights.IMAGENET1K_V1, "vgg16": VGG16_Weights.IMAGENET1K_V1}
SOURCES = ("imagenet", "domain", "random")
DOMAIN_META_KEYS = ("task", "patients")

# Table 6 / Figure 3: the GoogLeNet nodes whose x-y pooled outputs feed one SVM each, and their lengths.
GOOGLENET_LAYERS = ("conv1", "conv3", "inception3a", "inception3b", "inception4a", "inception4b", "inception4c",
                    "inception4d", "inception4e", "inception5a", "inception5b", "fc")
PAPER_LAYER_NAMES = ("Conv1", "Conv2", "Incep1", "Incep2", "Incep3", "Incep4", "Incep5", "Incep6", "Incep7",
                     "Incep8", "Incep9", "FC1")
PAPER_LAYER_LENGTHS = (64, 192, 256, 480, 512, 512, 512, 528, 832, 832, 1024, 1000)


class WeightsMissing(FileNotFoundError):
    """A weights file the run needs is not on disk; the message says which file, where, and how to get it."""


def known_nets() -> tuple[str, ...]:
    """Networks `load_pretrained` can build: the ImageNet ones and the from-scratch ones of `models.NETWORKS`."""
    return tuple(dict.fromkeys((*PRETRAINED, *models.NETWORKS)))


# ---------------------------------------------------------------------------------------------------------------
# ImageNet weights in torchvision's cache


def expected_path(net: str) -> Path:
    """Where torchvision caches `net`'s ImageNet weights: <torch hub dir>/checkpoints/<file name of the URL>."""
    weights = _imagenet_weights(net)
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def imagenet_stats(net: str = "googlenet") -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) of the RGB [0, 1] inputs `net`'s ImageNet weights expect (from their transforms)."""
    preset = _imagenet_weights(net).transforms()
    return tuple(preset.mean), tuple(preset.std)


def imagenet_normalize(x: torch.Tensor, net: str = "googlenet") -> torch.Tensor:
    """Normalise a (B, 3, H, W) or (3, H, W) batch of [0, 1] RGB values as `net`'s ImageNet weights expect."""
    if x.ndim not in (3, 4) or x.shape[-3] != 3:
        raise ValueError(f"imagenet_normalize: expected (B, 3, H, W) or (3, H, W), got {tuple(x.shape)}")
    mean, std = (torch.tensor(v, dtype=x.dtype, device=x.device).view(3, 1, 1) for v in imagenet_stats(net))
    return (x - mean) / std


def _imagenet_weights(net: str):
    if net not in PRETRAINED:
        raise ValueError(f"no ImageNet weights for {net!r}; available: {tuple(PRETRAINED)}")
    return PRETRAINED[net]


def _missing_imagenet_message(net: str) -> str:
    path, url = expected_path(net), _imagenet_weights(net).url
    return (f"ImageNet weights for {net} not found: expected the file {path} (downloaded from {url}). Copy that "
            f"file there (or set $TORCH_HOME to the folder holding hub/checkpoints/{path.name}), or call "
            f"load_pretrained(..., allow_download=True) on a machine with network access.")


# ---------------------------------------------------------------------------------------------------------------
# In-domain checkpoints written by this project


def domain_checkpoint_path(domain_dir: str | os.PathLike, net: str) -> Path:
    """The state-dict file of `net` pretrained in-domain; its provenance JSON sits beside it (same stem)."""
    return Path(domain_dir) / f"{net}_domain.pt"


def save_domain_checkpoint(model: nn.Module, domain_dir: str | os.PathLike, net: str, meta: dict) -> Path:
    """Write `model`'s weights as the in-domain checkpoint of `net`, with `meta` (task, patients, ...) as JSON.

    Both files are written atomically (`cache.atomic_write`), so a reader never sees half a checkpoint.
    """
    missing = [k for k in DOMAIN_META_KEYS if k not in meta]
    if missing:
        raise ValueError(f"save_domain_checkpoint({net!r}): meta lacks {missing}; say what task the network was "
                         f"pretrained on and on which patients")
    if net not in known_nets():
        raise ValueError(f"save_domain_checkpoint: unknown network {net!r}; expected one of {known_nets()}")
    path = domain_checkpoint_path(domain_dir, net)
    record = {"net": net, "num_classes": models.head(model).out_features, "params": models.count_params(model),
              "architecture": _architecture_options(model), "torch": torch.__version__, "meta": meta}
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    cache.atomic_write_text(path.with_suffix(".json"), json.dumps(record, indent=1, sort_keys=True, default=str))
    cache.atomic_write(path, lambda fh: torch.save(state, fh))
    return path


def domain_meta(domain_dir: str | os.PathLike, net: str) -> dict:
    """The provenance record saved beside the in-domain checkpoint of `net` (net, num_classes, meta, ...)."""
    json_path = domain_checkpoint_path(domain_dir, net).with_suffix(".json")
    if not json_path.is_file():
        raise WeightsMissing(_missing_domain_message(domain_dir, net))
    return json.loads(json_path.read_text())


def _missing_domain_message(domain_dir, net: str) -> str:
    path = domain_checkpoint_path(domain_dir, net)
    return (f"in-domain checkpoint for {net} not found: expected {path} and {path.with_suffix('.json')}. Run the "
            f"domain pretraining first (it saves them with save_domain_checkpoint).")


# ---------------------------------------------------------------------------------------------------------------
# Loading


def load_pretrained(net: str, source: str = "imagenet", allow_download: bool = False,
                    domain_dir: str | os.PathLike | None = None, num_classes: int | None = None,
                    seed: int = 0, contrast_channel: int | None = None) -> nn.Module:
    """`net` with weights from `source`: "imagenet" (torchvision cache), "domain" (our checkpoint) or "random".

    GoogLeNet is built as torchvision's pretrained one (transform_input=True: it takes ImageNet-normalised input,
    see `imagenet_normalize`; no auxiliary heads; their keys in the file are dropped). With num_classes the last
    layer is replaced by a fresh one (`models.replace_head`, seeded). Returned in train mode, on the CPU.

    A domain checkpoint pretrained on a one-channel source (meta `input_channels` 1) has its first layer adapted to
    the study's channels (`adapt_first_conv`): `contrast_channel` (the study's post-contrast channel) is then
    required. Other checkpoints and sources ignore it.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown weights source {source!r}; expected one of {SOURCES}")
    if net not in known_nets():
        raise ValueError(f"unknown network {net!r}; expected one of {known_nets()}")
    if source == "imagenet":
        path = expected_path(net)
        if path.is_file():
            state = _read_state_dict(path, net)
        elif allow_download:
            state = _imagenet_weights(net).get_state_dict(progress=True, check_hash=True)
        else:
            raise WeightsMissing(_missing_imagenet_message(net))
        state = {k: v for k, v in state.items() if not k.startswith(("aux1.", "aux2."))}
        model = architecture(net, num_classes=len(_imagenet_weights(net).meta["categories"]), seed=seed)
        _load_strict(model, state, path, f"{net}'s ImageNet weights",
                     f"replace it with the file from {_imagenet_weights(net).url}")
    elif source == "domain":
        if domain_dir is None:
            raise ValueError(f"load_pretrained({net!r}, source='domain') needs domain_dir")
        path = domain_checkpoint_path(domain_dir, net)
        if not path.is_file():
            raise WeightsMissing(_missing_domain_message(domain_dir, net))
        record = domain_meta(domain_dir, net)
        model = architecture(net, num_classes=int(record["num_classes"]), seed=seed,
                             **record.get("architecture", {}))
        _load_strict(model, _read_state_dict(path, net), path, f"an in-domain {net} checkpoint",
                     "re-run the domain pretraining for this network")
        if int(record.get("meta", {}).get("input_channels", 3)) == 1:
            if contrast_channel is None:
                raise ValueError(f"{path} was pretrained on a one-channel source (post-contrast slices): "
                                 f"load_pretrained({net!r}, 'domain', ...) needs contrast_channel= (the index of the "
                                 f"study's post-contrast channel) to adapt its first layer")
            adapt_first_conv(model, contrast_channel)
    else:
        model = architecture(net, num_classes=1000 if net in PRETRAINED else 2, seed=seed)
    if num_classes is not None:
        models.replace_head(model, num_classes, seed=seed)
    return model


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The convolution that reads the network's input: the first one registered (torchvision GoogLeNet's
    `conv1.conv`, also in GoogLeNet_R whose conv1 replaces it in place; VGG16's `features[0]`; the first of VGG_R's
    and CIFAR's `features`)."""
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None or conv.in_channels != 3:
        raise ValueError(f"{type(model).__name__}: no first convolution reading 3 input channels")
    return conv


def first_conv_input_map(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, b) per input channel, float64: the first convolution reads a[c] * v + b[c] where the patch value v in
    [0, 1] is fed as every pretrained network's input is (`imagenet_normalize`, by transfer's scorer and the feature
    extractor alike), followed by GoogLeNet's own `transform_input` when set (read off torchvision's function)."""
    mean, std = (torch.tensor(v, dtype=torch.float64) for v in imagenet_stats("googlenet"))
    a, b = 1 / std, -mean / std
    if isinstance(model, GoogLeNet) and model.transform_input:
        probe = torch.stack([torch.zeros(3), torch.ones(3)]).view(2, 3, 1, 1).to(torch.float64)
        zero, one = model._transform_input(probe).view(2, 3)
        a, b = a * (one - zero), b * (one - zero) + zero
    return a, b


@torch.no_grad()
def adapt_first_conv(model: nn.Module, contrast_channel: int) -> nn.Module:
    """Adapt a network pretrained on one channel replicated three times to a study whose channel `contrast_channel`
    is that same contrast (post-contrast T1), in place: that channel gets the filters, the others zero weights.

    Pretraining fed v on all three channels, so conv1 read z[c] = a[c] v + b[c] (`first_conv_input_map`) and gave
    sum_c W[:, c] (a[c] v + b[c]). The study's channel k = contrast_channel gives W'[:, k] (a[k] v + b[k]) with
    W'[:, k] = sum_c (a[c] / a[k]) W[:, c] and W'[:, other] = 0: the same response to v. The constants then match
    when b[c] / a[c] is the same on every channel, as for GoogLeNet with transform_input (a = 2, b = -1 on every
    channel: ImageNet normalisation and the transform cancel), exactly, borders included; otherwise (VGG16, nets
    without the transform) the constant left over, per filter, goes into the convolution's bias, or into the running
    mean of the batch norm that follows a bias-free one: exact away from the zero-padded border. Fine-tuning (03)
    grows weights for the other channels from zero; frozen features (04/05) see the post-contrast channel only.
    """
    conv = first_conv(model)
    if not 0 <= contrast_channel < conv.in_channels:
        raise ValueError(f"contrast_channel {contrast_channel} is not one of the {conv.in_channels} input channels")
    a, b = first_conv_input_map(model)
    k = contrast_channel
    w = conv.weight.detach().to(torch.float64)
    summed = (w * (a / a[k]).view(1, -1, 1, 1)).sum(1)
    offset = (w.sum((2, 3)) * (b - a * b[k] / a[k]).view(1, -1)).sum(1)  # pretrained constant minus the new one
    adapted = torch.zeros_like(w)
    adapted[:, k] = summed
    conv.weight.copy_(adapted.to(conv.weight.dtype))
    norm = getattr(_parent_of(model, conv), "bn", None)  # torchvision's BasicConv2d: conv, batch norm, ReLU
    if conv.bias is not None:
        conv.bias.add_(offset.to(conv.bias.dtype))
    elif isinstance(norm, nn.BatchNorm2d):
        norm.running_mean.sub_(offset.to(norm.running_mean.dtype))
    elif offset.abs().max() > 1e-6:
        raise ValueError(f"{type(model).__name__}: nowhere to put the first layer's constant offset")
    return model


def _parent_of(model: nn.Module, child: nn.Module) -> nn.Module | None:
    return next((m for m in model.modules() if any(c is child for c in m.children())), None)


def domain_input_channels(domain_dir: str | os.PathLike, net: str) -> int:
    """The channels of the source the domain checkpoint of `net` was pretrained on (1: adapt with contrast_channel)."""
    return int(domain_meta(domain_dir, net).get("meta", {}).get("input_channels", 3))


def available_sources(net: str, domain_dir: str | os.PathLike | None = None) -> dict[str, str | None]:
    """For each weights source: None if `load_pretrained(net, source)` can run here, else why it cannot."""
    if net not in known_nets():
        raise ValueError(f"unknown network {net!r}; expected one of {known_nets()}")
    status: dict[str, str | None] = {"imagenet": None, "domain": None, "random": None}
    if net not in PRETRAINED:
        status["imagenet"] = f"no ImageNet weights for {net} (only {', '.join(PRETRAINED)})"
    elif not expected_path(net).is_file():
        status["imagenet"] = f"weights file missing: {expected_path(net)} (from {PRETRAINED[net].url})"
    if domain_dir is None:
        status["domain"] = "no domain_dir given (no in-domain pretraining run)"
    else:
        path = domain_checkpoint_path(domain_dir, net)
        for p in (path, path.with_suffix(".json")):
            if not p.is_file():
                status["domain"] = f"in-domain checkpoint missing: {p}"
                break
    return status


def architecture(net: str, num_classes: int, seed: int, transform_input: bool | None = None,
                  conv1_stride: int | None = None, input_size: int | None = None) -> nn.Module:
    """The bare network, seeded without touching the global RNG; "googlenet" is torchvision's ImageNet variant.

    The options are those of `_architecture_options`, which the weights alone do not pin down.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if net == "googlenet":
            model = GoogLeNet(num_classes=num_classes, aux_logits=False, transform_input=True, init_weights=True)
        elif net == "vgg16":
            model = vgg16(weights=None, num_classes=num_classes)
        else:
            kwargs = {"conv1_stride": conv1_stride} if conv1_stride is not None else {}
            model = models.build(net, num_classes, input_size=input_size, **kwargs)
    if transform_input is not None:
        model.transform_input = transform_input
    return model


def _architecture_options(model: nn.Module) -> dict:
    """What a state dict cannot tell: GoogLeNet's input transform and conv1 stride, the input size of VGG_R/CIFAR."""
    options = {}
    if isinstance(model, GoogLeNet):
        options["transform_input"] = bool(model.transform_input)
        if model.conv1.conv.out_channels == 32:  # GoogLeNet_R
            options["conv1_stride"] = model.conv1.conv.stride[0]
    if isinstance(getattr(model, "input_size", None), int):
        options["input_size"] = model.input_size
    return options


def _read_state_dict(path: Path, net: str) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and torch errors alike: the file is not a readable checkpoint
        raise ValueError(f"{path} is not a readable {net} state dict ({type(err).__name__}: {err})") from err
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a {net} state dict")
    return state


def _load_strict(model: nn.Module, state: dict, path: Path, what: str, remedy: str) -> None:
    """load_state_dict, with an error listing missing / unexpected / misshapen keys and what to do about it."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    misshapen = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or misshapen:
        raise ValueError(f"{path} does not hold {what}: {len(missing)} missing keys {missing[:3]}, "
                         f"{len(unexpected)} unexpected {unexpected[:3]}, {len(misshapen)} of another shape "
                         f"{misshapen[:3]}; {remedy}")
    model.load_state_dict(state)


# ---------------------------------------------------------------------------------------------------------------
# Layer-wise features (Table 6)


class PooledLayers(nn.Module):
    """Outputs of several nodes in one forward pass, each averaged over x-y: {layer: (B, channels)}."""

    def __init__(self, model: nn.Module, layers: tuple[str, ...]):
        super().__init__()
        self.layers = tuple(layers)
        self.body = create_feature_extractor(model, return_nodes={name: name for name in self.layers})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.body(x)
        return {name: out[name].mean(dim=(-2, -1)) if out[name].ndim == 4 else out[name] for name in self.layers}


def layer_extractor(model: nn.Module, layers: tuple[str, ...] = GOOGLENET_LAYERS) -> PooledLayers:
    """A module returning the x-y pooled output of each of `layers` in ONE forward pass, put in eval mode."""
    return PooledLayers(model, layers).eval()


def pretraining_record(domain_dir: Path, net: str) -> dict:
    """What a fold's results record says of its in-cohort network: the patients it was pretrained on, read from
    the checkpoint's own metadata."""
    return {"pretraining_patients": [str(p) for p in domain_meta(domain_dir, net)["meta"]["patients"]]}
