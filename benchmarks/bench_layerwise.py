"""Layer-wise GoogLeNet features (Table 6): one forward pass for all 12 layers vs 12 separate passes.

(a) `weights.layer_extractor(model, GOOGLENET_LAYERS)`: every batch goes through the network once and the 12 x-y
pooled outputs are read off; (b) `weights.layer_extractor(model, (layer,))` once per layer, 12 passes (each cut
after its layer). Both on the same network inputs (random 30x30 patches resized to 224 and to 56, ImageNet
normalised, channels_last, fp32, batch 64). Prints seconds, the speed-up and the largest |(a) - (b)| over all
features, which should be 0. Goal (the issue): (a) at least 6x faster than (b).
Run: `python benchmarks/bench_layerwise.py [--n 256]`.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from radiolib.learn import features, weights
from radiolib.learn.weights import GOOGLENET_LAYERS


@torch.no_grad()
def run(extractor: torch.nn.Module, batches: list[torch.Tensor]) -> dict[str, np.ndarray]:
    outs = [extractor(x) for x in batches]
    return {name: torch.cat([o[name] for o in outs]).numpy() for name in extractor.layers}


def bench(model: torch.nn.Module, patches: np.ndarray, size: int, batch: int = 64) -> None:
    batches = [features.to_network_input(patches[i:i + batch], size, "googlenet")
               .contiguous(memory_format=torch.channels_last) for i in range(0, len(patches), batch)]
    one = weights.layer_extractor(model, GOOGLENET_LAYERS)
    separate = [weights.layer_extractor(model, (layer,)) for layer in GOOGLENET_LAYERS]
    run(one, batches[:1])  # warm-up
    start = time.perf_counter()
    a = run(one, batches)
    t_one = time.perf_counter() - start
    start = time.perf_counter()
    b = {}
    for extractor in separate:
        b.update(run(extractor, batches))
    t_sep = time.perf_counter() - start
    diff = max(float(np.abs(a[name] - b[name]).max()) for name in GOOGLENET_LAYERS)
    print(f"input {size}x{size}, {len(patches)} patches: one pass {t_one:.2f} s, 12 passes {t_sep:.2f} s, "
          f"speed-up {t_sep / t_one:.2f}x (goal >= 6x: {'met' if t_sep / t_one >= 6 else 'NOT met'}), "
          f"max |one - separate| = {diff:.3g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="patches (at 56 px, 4x as many)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    model = weights.load_pretrained("googlenet", "random").to(memory_format=torch.channels_last)
    rng = np.random.default_rng(0)
    bench(model, (rng.random((args.n, 3, 30, 30)) * 1.5).astype(np.float16), 224)
    bench(model, (rng.random((4 * args.n, 3, 30, 30)) * 1.5).astype(np.float16), 56)


if __name__ == "__main__":
    main()
