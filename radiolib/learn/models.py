"""The four networks trained from scratch in Zhu et al. 2019 (Table 2), their sizes, and optimiser helpers.

Table 2: GoogLeNet (224x224x3), GoogLeNet_R (64x64x3), VGG_R (80x80x3) and CIFAR (80x80x3), each with 2 outputs,
L2 regularisation in the conv layers and 0.5 dropout in the fully connected layers. Each builder's docstring
states the paper's MACC / parameter counts and how far this implementation is from them, and why.
"""

from __future__ import annotations

import contextlib
import functools

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.googlenet import BasicConv2d, GoogLeNet

NETWORKS = ("googlenet", "googlenet_r", "vgg_r", "cifar")
NAMES = {"googlenet": "GoogLeNet", "googlenet_r": "GoogLeNet_R", "vgg_r": "VGG_R", "cifar": "CIFAR"}  # as in the paper
INPUT_SIZE = {"googlenet": 224, "googlenet_r": 64, "vgg_r": 80, "cifar": 80}
# Table 2 of the paper: multiply-accumulates per image and parameter count, as printed (rounded).
PAPER_TABLE2 = {
    "googlenet": {"input": 224, "macs": 1_590_000_000, "params": 5_980_000},
    "googlenet_r": {"input": 64, "macs": 388_770_000, "params": 5_980_000},
    "vgg_r": {"input": 80, "macs": 365_160_000, "params": 317_380},
    "cifar": {"input": 80, "macs": 77_000_000, "params": 92_130},
}
DROPOUT = 0.5


def default_device() -> torch.device:
    """CUDA when a GPU is present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


DEVICES = "auto, cpu, cuda or cuda:N"  # the values of the `device` parameter


def resolve_device(name: str = "auto") -> torch.device:
    """The `device` parameter as a torch.device: "auto" is CUDA when a GPU is present, else CPU; "cpu", "cuda" or
    "cuda:N" as named. ValueError naming the key for another value, or for a CUDA device this machine lacks."""
    if name == "auto":
        return default_device()
    kind, _, number = str(name).partition(":")
    if kind not in ("cpu", "cuda") or (number and (kind == "cpu" or not number.isdigit())):
        raise ValueError(f"device = {name!r}: must be one of {DEVICES}")
    if kind == "cuda" and (not torch.cuda.is_available() or int(number or 0) >= torch.cuda.device_count()):
        raise ValueError(f"device = {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s); "
                         "use auto or cpu")
    return torch.device(name)


def to_device(model: nn.Module, device: torch.device | str, channels_last: bool = True) -> nn.Module:
    """`model` on `device`, its 4-D weights NHWC when `channels_last`; on CUDA, cuDNN times its kernels for each new
    input shape once and keeps the fastest (`cudnn.benchmark`: the study's inputs keep one shape)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model = model.to(device)
    return to_channels_last(model) if channels_last else model


# ---------------------------------------------------------------------------------------------------------------
# The networks of Table 2


def googlenet(num_classes: int = 2) -> GoogLeNet:
    """GoogLeNet, Table 2 row 1: 224x224x3 input; paper 1.59G MACC, 5.98M params. Here 1.497G MACs, 5.602M params.

    torchvision's architecture (batch norm, no auxiliary classifiers, 0.5 dropout before the FC). The gap (-6%) is
    torchvision's known 3x3 kernel in each Inception "5x5" branch, kept so ImageNet weights fit: with 5x5 kernels
    the count is 5,982,882 params and 1.58G MACs, the paper's (Caffe) figures.
    """
    return GoogLeNet(num_classes=num_classes, aux_logits=False, transform_input=False, init_weights=True,
                     dropout=DROPOUT)


def googlenet_r(num_classes: int = 2, conv1_stride: int = 2) -> GoogLeNet:
    """GoogLeNet_R, Table 2 row 2: 64x64x3 input; paper 388.77M MACC, 5.98M params. Here 381.8M MACs, 5.593M params.

    conv1 has 32 filters of 5x5 with pad 2 (not 64, 7x7, pad 3) and the next max-pool has stride 1, so conv2 takes
    32 channels. The text also says conv1 stride 1, but Table 2's 388.77M MACC is only reached with stride 2
    (stride 1 gives 1.661G, 4.3x the table): we follow the table, which is also 4x cheaper on a CPU;
    `conv1_stride=1` gives the text's reading. Params differ as for `googlenet`.
    """
    model = googlenet(num_classes)
    model.conv1 = BasicConv2d(3, 32, kernel_size=5, stride=conv1_stride, padding=2)
    model.maxpool1 = nn.MaxPool2d(3, stride=1, ceil_mode=True)
    model.conv2 = BasicConv2d(32, 64, kernel_size=1)
    model.conv1.apply(_init_googlenet_like)
    model.conv2.apply(_init_googlenet_like)
    return model


class VGG_R(nn.Module):
    """VGG_R, Table 2 row 3: 80x80x3 input; paper 365.16M MACC, 317.38K params. Here 365.16M MACs, 317.41K params.

    The text keeps "the first 2 convolution layers and all the fully connected layers" of VGG16, but two 3x3x64
    convs reach only 247M MACs at 80x80 and VGG16's 4096-wide FCs hold >200M params. Table 2's figures are met
    exactly by VGG16's first three convs (conv1_1, conv1_2, pool, conv2_1, pool) and a 4-wide fc6, so we read it
    so: fc6 and fc7 of width 4 with ReLU and 0.5 dropout, fc8 to the classes (+30 params for the extra fc7/fc8).
    """

    def __init__(self, num_classes: int = 2, input_size: int = 80, fc_width: int = 4):
        super().__init__()
        self.input_size = input_size
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(inplace=True),  # conv1_1
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(inplace=True),  # conv1_2
            nn.MaxPool2d(2, 2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(inplace=True),  # conv2_1
            nn.MaxPool2d(2, 2),
        )
        flat = 128 * (input_size // 4) ** 2
        self.classifier = nn.Sequential(
            nn.Linear(flat, fc_width), nn.ReLU(inplace=True), nn.Dropout(DROPOUT),  # fc6
            nn.Linear(fc_width, fc_width), nn.ReLU(inplace=True), nn.Dropout(DROPOUT),  # fc7
            nn.Linear(fc_width, num_classes),  # fc8
        )
        self.apply(_init_vgg_like)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.input_size, "VGG_R")
        return self.classifier(torch.flatten(self.features(x), 1))


class WithinChannelLRN(nn.Module):
    """Caffe's LRN with norm_region WITHIN_CHANNEL: x / (1 + alpha * mean of x^2 over a size x size window)^beta."""

    def __init__(self, size: int = 3, alpha: float = 5e-5, beta: float = 0.75):
        super().__init__()
        self.size, self.alpha, self.beta = size, alpha, beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean_sq = nn.functional.avg_pool2d(x * x, self.size, stride=1, padding=self.size // 2,
                                           count_include_pad=True)
        return x / (1 + self.alpha * mean_sq).pow(self.beta)


class CIFAR(nn.Module):
    """CIFAR, Table 2 row 4: 80x80x3 input; paper 77M MACC, 92.13K params. Here 76.81M MACs, 92,130 params.

    Caffe's cifar10_full (not cifar10_quick, whose extra ip 64 layer would give 489K params at 80x80): conv 5x5x32,
    max-pool 3/2, LRN, conv 5x5x32, avg-pool 3/2, LRN, conv 5x5x64, avg-pool 3/2, then one FC to the classes
    after 0.5 dropout. Pools round up (Caffe), so 80 -> 40 -> 20 -> 10 and the FC takes 10*10*64 features.
    """

    def __init__(self, num_classes: int = 2, input_size: int = 80):
        super().__init__()
        self.input_size = input_size
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 5, padding=2), nn.MaxPool2d(3, 2, ceil_mode=True), nn.ReLU(inplace=True),
            WithinChannelLRN(),
            nn.Conv2d(32, 32, 5, padding=2), nn.ReLU(inplace=True), nn.AvgPool2d(3, 2, ceil_mode=True),
            WithinChannelLRN(),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(inplace=True), nn.AvgPool2d(3, 2, ceil_mode=True),
        )
        side = input_size
        for _ in range(3):
            side = -(-(side - 3) // 2) + 1
        self.classifier = nn.Sequential(nn.Dropout(DROPOUT), nn.Linear(64 * side * side, num_classes))
        self.apply(_init_vgg_like)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.input_size, "CIFAR")
        return self.classifier(torch.flatten(self.features(x), 1))


def vgg_r(num_classes: int = 2, input_size: int = 80) -> VGG_R:
    """VGG_R, by default at the paper's 80x80x3 input (see `VGG_R`); its fc6 width follows the input side."""
    return VGG_R(num_classes, input_size)


def cifar(num_classes: int = 2, input_size: int = 80) -> CIFAR:
    """The CIFAR net, by default at the paper's 80x80x3 input (see `CIFAR`)."""
    return CIFAR(num_classes, input_size)


_BUILDERS = {"googlenet": googlenet, "googlenet_r": googlenet_r, "vgg_r": vgg_r, "cifar": cifar}


def build(name: str, num_classes: int = 2, seed: int | None = None, input_size: int | None = None,
          **kwargs) -> nn.Module:
    """One of NETWORKS, freshly initialised; with a seed the init is reproducible and global RNG state untouched.

    `input_size` sizes the fully connected layers of VGG_R and CIFAR; the GoogLeNets pool globally and take any.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown network {name!r}; expected one of {NETWORKS}")
    if input_size is not None and name in ("vgg_r", "cifar"):
        kwargs["input_size"] = input_size
    if seed is None:
        return _BUILDERS[name](num_classes, **kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _BUILDERS[name](num_classes, **kwargs)


def _check_input(x: torch.Tensor, size: int, net: str) -> None:
    if isinstance(x, torch.fx.Proxy):  # symbolic tracing (feature extraction) has no shapes to check
        return
    if x.ndim != 4 or x.shape[1] != 3 or tuple(x.shape[-2:]) != (size, size):
        raise ValueError(f"{net} takes (B, 3, {size}, {size}) patches, got {tuple(x.shape)}")


def _init_googlenet_like(m: nn.Module) -> None:
    """torchvision GoogLeNet's init (truncated normal, std 0.01) for the replaced layers too."""
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.constant_(m.weight, 1)
        nn.init.constant_(m.bias, 0)


def _init_vgg_like(m: nn.Module) -> None:
    """torchvision VGG's init: Kaiming (fan-out) convs, N(0, 0.01) linears, zero biases."""
    if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, 0, 0.01)
        nn.init.zeros_(m.bias)


# ---------------------------------------------------------------------------------------------------------------
# Sizes: parameters and multiply-accumulates, against Table 2


def inception_sides(name: str, input_size: int) -> dict[int, int]:
    """{3: side, 4: side, 5: side}: the side of the maps GoogLeNet's (or GoogLeNet_R's) inception blocks 3, 4 and 5
    work on at input side `input_size`, read from one forward pass of an image (so conv1's stride and the max-pools
    that round up, ceil_mode, decide, not a formula restated here). The pass runs on the meta device: shapes only."""
    return dict(_inception_sides(name, int(input_size)))


@functools.lru_cache(maxsize=None)
def _inception_sides(name: str, input_size: int) -> tuple[tuple[int, int], ...]:
    if name not in ("googlenet", "googlenet_r"):
        raise ValueError(f"inception_sides: {name!r} has no inception blocks; expected googlenet or googlenet_r")
    with torch.device("meta"):
        model = build(name).eval()
    sides = {}

    def record(k, module, args):
        sides[k] = int(args[0].shape[-1])
    hooks = [getattr(model, f"inception{k}a").register_forward_pre_hook(functools.partial(record, k))
             for k in (3, 4, 5)]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, input_size, input_size, device="meta"))
    finally:
        for h in hooks:
            h.remove()
    return tuple(sorted(sides.items()))


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers such as batch-norm statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_size: int | tuple[int, int]) -> int:
    """Multiply-accumulates of one forward pass on a single 3-channel image (conv and linear layers, eval mode)."""
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    param = next(model.parameters(), None)
    x = torch.zeros(1, 3, h, w, device=param.device if param is not None else "cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


def describe(name: str) -> dict:
    """Parameters and MACs of `build(name)` at its paper input size, beside Table 2's figures."""
    model = build(name, seed=0)
    paper = PAPER_TABLE2[name]
    return {"params": count_params(model), "macs": count_macs(model, INPUT_SIZE[name]),
            "paper_params": paper["params"], "paper_macs": paper["macs"]}


def architecture_table() -> pd.DataFrame:
    """Table 2 reproduced: one row per network with input, params and MACs (ours, paper's, relative gap in %)."""
    rows = []
    for name in NETWORKS:
        d = describe(name)
        rows.append({"network": name, "input": f"{INPUT_SIZE[name]}x{INPUT_SIZE[name]}x3",
                     "params": d["params"], "paper_params": d["paper_params"],
                     "params_gap_%": round(100 * (d["params"] / d["paper_params"] - 1), 2),
                     "macs": d["macs"], "paper_macs": d["paper_macs"],
                     "macs_gap_%": round(100 * (d["macs"] / d["paper_macs"] - 1), 2)})
    return pd.DataFrame(rows).set_index("network")


# ---------------------------------------------------------------------------------------------------------------
# Training helpers: L2 on conv weights only, a fresh 2-way head, speed switches


def head(model: nn.Module) -> nn.Linear:
    """The final classification layer: `model.fc` (GoogLeNet) or else the last nn.Linear (VGG, VGG_R, CIFAR)."""
    fc = getattr(model, "fc", None)
    if isinstance(fc, nn.Linear):
        return fc
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer to serve as the classification head")
    return linears[-1]


def l2_param_groups(model: nn.Module, weight_decay: float, lr: float, head_lr: float | None = None) -> list[dict]:
    """Optimizer param groups: weight decay on conv weights only (Table 2: "L2 in conv layers"), none elsewhere.

    With head_lr, the final layer (`head`) gets its own group at that rate (transfer learning: 10x the rest).
    Frozen parameters (requires_grad False) are left out; empty groups are dropped.
    """
    head_ids = {id(p) for p in head(model).parameters()} if head_lr is not None else set()
    conv_weight_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)}
    groups = {"conv_weights": [], "other": [], "head": []}
    for p in model.parameters():
        if not p.requires_grad:
            continue
        key = "head" if id(p) in head_ids else "conv_weights" if id(p) in conv_weight_ids else "other"
        groups[key].append(p)
    settings = {"conv_weights": (weight_decay, lr), "other": (0.0, lr), "head": (0.0, head_lr)}
    return [{"name": key, "params": params, "weight_decay": settings[key][0], "lr": settings[key][1]}
            for key, params in groups.items() if params]


def replace_head(model: nn.Module, num_classes: int = 2, seed: int = 0) -> nn.Module:
    """Swap the final layer for a fresh N(0, 0.01), zero-bias `num_classes`-way one (Table 4: 2-way), in place."""
    old = head(model)
    parent_name, _, attr = next(n for n, m in model.named_modules() if m is old).rpartition(".")
    parent = model.get_submodule(parent_name)
    new = nn.Linear(old.in_features, num_classes, device=old.weight.device, dtype=old.weight.dtype)
    generator = torch.Generator(device=old.weight.device).manual_seed(seed)
    with torch.no_grad():
        nn.init.normal_(new.weight, 0.0, 0.01, generator=generator)
        nn.init.zeros_(new.bias)
    setattr(parent, attr, new)
    return model


def to_channels_last(model: nn.Module) -> nn.Module:
    """Store 4-D weights NHWC (faster convs with oneDNN / cuDNN); feed inputs with the same memory format."""
    return model.to(memory_format=torch.channels_last)


def autocast(device: torch.device | str, enabled: bool = True) -> contextlib.AbstractContextManager:
    """Mixed precision: bfloat16 on CPU and on GPUs that support it, else float16 (needs a GradScaler to train)."""
    device = torch.device(device)
    dtype = torch.bfloat16
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        dtype = torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=enabled)


def grad_scaler(device: torch.device | str, enabled: bool = True) -> torch.amp.GradScaler:
    """The loss scaling float16 autocast needs to train (on a GPU without bfloat16); a pass-through elsewhere."""
    device = torch.device(device)
    fp16 = enabled and device.type == "cuda" and not torch.cuda.is_bf16_supported()
    return torch.amp.GradScaler(device.type, enabled=fp16)

