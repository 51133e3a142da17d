"""Images per second of the paper's networks on this machine: fp32 vs bf16 autocast vs channels_last (and both).

Feature extraction: GoogLeNet forward at 224x224, batch 64, eval mode, no grad (approach 3 / Table 6).
Training: forward + backward + SGD step of CIFAR at 80x80 and GoogLeNet_R at 64x64 (approach 1).
Equivalence, on the 12 pooled GoogLeNet layers: channels_last fp32 must match fp32 within 1e-4 of each layer's
largest value; bf16 within 5% of it, with every image's feature vector at cosine >= 0.999 to the fp32 one.
Each figure is the best of a few interleaved rounds, as other work on the machine slows single runs.
Run: `python benchmarks/bench_models.py [--seconds 3] [--rounds 2] [--train-batch 32]`.
"""

from __future__ import annotations

import argparse

import torch
from timing import best_rate
from torch import nn

from radiolib.learn import models, weights

MODES = {"fp32": (False, False), "bf16": (True, False), "channels_last": (False, True),
         "bf16+channels_last": (True, True)}


def _prepare(model: nn.Module, x: torch.Tensor, channels_last: bool) -> tuple[nn.Module, torch.Tensor]:
    if channels_last:
        return models.to_channels_last(model), x.contiguous(memory_format=torch.channels_last)
    return model.to(memory_format=torch.contiguous_format), x.contiguous()


def _calibrated(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Batch-norm statistics from one train-mode pass over x, so a random net's deep activations keep their scale.

    (Its identity running stats in eval mode shrink activations ~10x per layer, to 1e-11 at inception5b.)
    """
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average: one pass sets the statistics of x
    with torch.no_grad():
        model.train()(x)
    return model.eval()


def bench_forward(seconds: float, rounds: int, batch: int = 64) -> None:
    """Layer-wise feature extraction (all 12 Table 6 layers in one pass) of a random GoogLeNet, BN calibrated."""
    device = models.default_device()
    x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(device)
    outputs, steps = {}, {}
    for mode, (bf16, channels_last) in MODES.items():
        model = _calibrated(weights.load_pretrained("googlenet", source="random", seed=0).to(device), x[:16])
        model, xm = _prepare(model, x, channels_last)
        extractor = weights.layer_extractor(model)

        def step(extractor=extractor, xm=xm, bf16=bf16, mode=mode):
            with torch.no_grad(), models.autocast(device, enabled=bf16):
                outputs[mode] = {k: v.float() for k, v in extractor(xm).items()}

        steps[mode] = step
    print(f"GoogLeNet forward, 12 pooled layers in one pass, 224x224, batch {batch}, {device}:")
    for mode, rate in best_rate(steps, batch, seconds, rounds).items():
        print(f"  {mode:20s} {rate:8.1f} images/s")
    _report_equivalence(outputs)


def _report_equivalence(outputs: dict[str, dict[str, torch.Tensor]]) -> None:
    """Worst layer's max |out - fp32| relative to that layer's max |fp32|, and the lowest per-image cosine."""
    print("  equivalence with fp32 (worst of the 12 layers):")
    for mode, layers in outputs.items():
        if mode == "fp32":
            continue
        rel, cos = 0.0, 1.0
        for name, out in layers.items():
            ref = outputs["fp32"][name]
            rel = max(rel, float((out - ref).abs().max() / ref.abs().max()))
            a, b = out.double(), ref.double()
            cos = min(cos, float(((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).min()))
        ok = rel <= 1e-4 if mode == "channels_last" else rel <= 0.05 and cos >= 0.999
        print(f"  {mode:20s} max relative error {rel:.2e}, min cosine {cos:.6f}: {'PASS' if ok else 'FAIL'}")


def bench_training(name: str, batch: int, seconds: float, rounds: int) -> None:
    device = models.default_device()
    size = models.INPUT_SIZE[name]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, size, size, generator=generator).to(device)
    y = torch.randint(0, 2, (batch,), generator=generator).to(device)
    steps = {}
    for mode, (bf16, channels_last) in MODES.items():
        model = models.build(name, seed=0).train().to(device)
        model, xm = _prepare(model, x, channels_last)
        optimizer = torch.optim.SGD(models.l2_param_groups(model, weight_decay=5e-4, lr=1e-4), lr=1e-4,
                                    momentum=0.9)

        def step(model=model, xm=xm, optimizer=optimizer, bf16=bf16):
            optimizer.zero_grad(set_to_none=True)
            with models.autocast(device, enabled=bf16):
                loss = nn.functional.cross_entropy(model(xm), y)
            loss.backward()
            optimizer.step()

        steps[mode] = step
    print(f"{name} training step (forward+backward+SGD), {size}x{size}, batch {batch}, {device}:")
    for mode, rate in best_rate(steps, batch, seconds, rounds).items():
        print(f"  {mode:20s} {rate:8.1f} images/s")
    logits = {}
    for mode, (bf16, channels_last) in MODES.items():
        model, xm = _prepare(models.build(name, seed=0).train().to(device), x, channels_last)
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.eval()  # batch-norm on batch statistics as in training, but no random masks to compare
        with torch.no_grad(), models.autocast(device, enabled=bf16):
            logits[mode] = model(xm).float()
    scale = float(logits["fp32"].abs().max())
    for mode in ("bf16", "channels_last", "bf16+channels_last"):
        diff = float((logits[mode] - logits["fp32"]).abs().max())
        print(f"  {mode:20s} training-mode logits: max |out - fp32| = {diff:.3g} (max |fp32| {scale:.3g})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum timed seconds per round and mode")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the best one is reported")
    parser.add_argument("--forward-batch", type=int, default=64)
    parser.add_argument("--train-batch", type=int, default=32)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    bench_forward(args.seconds, args.rounds, args.forward_batch)
    bench_training("cifar", args.train_batch, args.seconds, args.rounds)
    bench_training("googlenet_r", args.train_batch, args.seconds, args.rounds)


if __name__ == "__main__":
    main()
