"""Throughput of the three approaches' hot loops on this machine, to pick the speed switches and the SVM budget.

1. Deep features (approach 3): images/s of `features.extract` with a random GoogLeNet on (N, 3, 30, 30) float16
   patches at inputs 56 and 224, for fp32, bf16 autocast, channels_last and both; plus the largest difference of
   the bf16 / channels_last features from fp32, in units of each feature's fp32 standard deviation (z-scores,
   as the random net's raw features are tiny). Compared: the 1024 pooled inception5b features ("flatten", the
   fc's input); the random net's fc output is its bias plus a ~1e-7 relative variation, below float32 (let alone
   bf16) resolution, so its z-scores would be rounding noise.
2. Training (approaches 1 and 2): images/s of forward + backward + Adam steps, batch 64, of CIFAR at 32x32 and
   GoogLeNet at 56x56, for the same four combinations (`models.autocast`, `models.to_channels_last`).
3. SVM (approach 3): seconds per fit of `features.svm_fit_predict`'s pipeline (StandardScaler + SVC, gamma
   "scale") per kernel on random (n, 1024) features with balanced labels, n = 600, 2000, 6000 (the linear kernel
   is skipped at 6000 by default: it took 326 s there, against 17 s for poly and rbf).
Goal: know which switches pay off on a CPU and how many training patches an SVM fit can afford.
Run: `python benchmarks/bench_approaches.py [--quick] [--svm-skip-after inf]` (default: about 2 minutes).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from radiolib.learn import features, models, weights

MODES = {"fp32": (False, False), "bf16": (True, False), "channels_last": (False, True),
         "bf16+channels_last": (True, True)}


def bench_features(n: dict[int, int], batch: int = 64) -> None:
    model = weights.load_pretrained("googlenet", "random")
    layers = ("flatten", features.LAST_FC["googlenet"])
    for size, count in n.items():
        patches = (np.random.default_rng(0).random((count, 3, 30, 30)) * 1.5).astype(np.float16)
        print(f"feature extraction: random GoogLeNet, layers {'+'.join(layers)}, {count} patches 30x30 -> "
              f"{size}x{size}, batch {batch}")
        out = {}
        for mode, (bf16, cl) in MODES.items():
            model.to(memory_format=torch.contiguous_format)  # extract(channels_last=True) converts it in place
            kwargs = dict(net="googlenet", layers=layers, size=size, batch_size=batch, bf16=bf16,
                          channels_last=cl, progress=False)
            features.extract(model, patches[:batch], **kwargs)  # warm-up
            start = time.perf_counter()
            out[mode] = features.extract(model, patches, **kwargs)["flatten"]
            print(f"  {mode:20s} {count / (time.perf_counter() - start):8.1f} images/s")
        ref = out["fp32"].astype(np.float64)
        std = ref.std(0)
        live = std > 0  # ReLU leaves some columns at 0 for every patch: no z-score there
        print(f"  raw fp32 flatten features: max |value| {np.abs(ref).max():.3g}, median std "
              f"{np.median(std[live]):.3g}; {live.sum()} of {len(std)} columns vary")
        for mode in ("bf16", "channels_last"):  # |z - z_fp32|, both z-scored with fp32's column mean and std
            diff = np.abs(out[mode][:, live] - ref[:, live]) / std[live]
            print(f"  {mode:20s} max |z - z_fp32| = {diff.max():.3g} (median {np.median(diff):.3g})")


def bench_training(name: str, size: int, steps: int, batch: int = 64) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, size, size, generator=gen)
    y = torch.randint(0, 2, (batch,), generator=gen)
    print(f"training: {name} at {size}x{size}, batch {batch}, forward+backward+Adam, {steps} timed steps")
    for mode, (bf16, cl) in MODES.items():
        model = models.build(name, seed=0, input_size=size).train()
        xm = x
        if cl:
            model, xm = models.to_channels_last(model), x.contiguous(memory_format=torch.channels_last)
        opt = torch.optim.Adam(models.l2_param_groups(model, 5e-4, 1e-4))

        def step():
            with models.autocast("cpu", bf16):
                loss = F.cross_entropy(model(xm).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        step()  # warm-up
        start = time.perf_counter()
        for _ in range(steps):
            step()
        print(f"  {mode:20s} {steps * batch / (time.perf_counter() - start):8.1f} images/s")


def bench_svm(sizes: tuple[int, ...], skip_after: float, dim: int = 1024) -> None:
    print(f"SVM fit: StandardScaler + SVC(gamma='scale'), random ({'/'.join(map(str, sizes))}, {dim}) features, "
          f"balanced labels; a kernel slower than {skip_after:g} s is not run at larger n")
    rng = np.random.default_rng(0)
    last = {}
    for n in sizes:
        x = rng.standard_normal((n, dim)).astype(np.float32)
        y = np.arange(n) % 2
        row = []
        for kernel in ("poly", "rbf", "linear"):
            if last.get(kernel, 0) > skip_after:
                row.append(f"{kernel} skipped")
                continue
            clf = make_pipeline(StandardScaler(), SVC(kernel=kernel, gamma="scale", degree=3))
            start = time.perf_counter()
            clf.fit(x, y)
            last[kernel] = time.perf_counter() - start
            row.append(f"{kernel} {last[kernel]:7.2f} s")
        print(f"  n={n:<6d} " + ", ".join(row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small fraction of the work (smoke run)")
    parser.add_argument("--svm-skip-after", type=float, default=10.0,
                        help="seconds of one SVM fit beyond which that kernel skips larger n (linear at n=6000 "
                             "takes minutes); 'inf' runs all")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    q = args.quick
    bench_features({56: 256 if q else 1024, 224: 64 if q else 256})
    bench_training("cifar", 32, steps=5 if q else 30)
    bench_training("googlenet", 56, steps=2 if q else 8)
    bench_svm((300, 600) if q else (600, 2000, 6000), args.svm_skip_after)


if __name__ == "__main__":
    main()
