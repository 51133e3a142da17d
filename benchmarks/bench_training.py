"""Training speed on this CPU: which switches pay off (bf16, channels_last, torch.compile, threads, resize caching).

Sections (`--sections`, all by default):
1. peak: GFLOP/s of square fp32 and bf16 matmuls (torch.mm, n = 1024 and 2048) with torch's threads: the ceiling.
2. training: images/s of the study's training step (`training.train_fold`: forward under `models.autocast`,
   cross-entropy, backward, Adam over `models.l2_param_groups`) for each network and input size the profiles use
   (`--profiles demo paper`: 02's networks at `training.scaled_input(net, input_scale)`, batch 64; 03's GoogLeNet
   at `inputs.pretrained_input`, batch 32), in the modes fp32, bf16 (autocast), channels_last, bf16+channels_last
   and compile (`torch.compile(model)`, inductor, on the study's default channels_last fp32). Inputs are ready-made
   tensors of the input size (resizing is section 4). Beside each rate: the GFLOP/s it achieves (FLOPs of one
   forward + backward from `FlopCounterMode`, optimizer not counted) and its % of the matmul peak of its dtype.
   The compile column's first call (tracing + code generation, with an empty inductor cache, as a first run) is
   reported apart from its steady rate; a compile that fails or exceeds `--compile-timeout` shows the reason.
3. threads: total images/s of the same step (channels_last fp32) with 1 process x 1 or 2 threads, and 2 joblib
   (loky) workers, as `evaluation.cross_validate(n_jobs=2)` runs folds, with joblib's default thread limit
   (printed; loky sets cpus // n_jobs, i.e. 1 here), 1 thread or 2 threads each (4 threads on 2 cores:
   oversubscribed). The workers time the same wall-clock window (their overlap is printed).
4. resize: ms per batch of the study's input pipeline (`training.PatchScorer.batch`: 80x80 patches standardised,
   resized with `F.interpolate` bilinear, channels_last; 03 also crops at random) against reading the batch from
   tensors resized once (03: resized once to input*256/224, cropped per batch), as a % of the training step.
5. notebooks: seconds per notebook of the last demo run (`--run-dir`, default runs/demo: the runner's run.json).
Each rate is the best of `--rounds` interleaved rounds of at least `--seconds` (and two steps), as other work on
the machine slows single runs.
Run: `python benchmarks/bench_training.py [--quick] [--seconds 2] [--rounds 2] [--json out.json]`
(full run: roughly 45 to 75 minutes on 2 idle cores, about half of it compiling 9 networks: `--modes fp32 bf16
channels_last bf16+channels_last` leaves compile out; --quick: 3 to 4 minutes, 1 of them compiling CIFAR).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from joblib import Parallel, delayed
from timing import best_rate
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from radiolib.learn import models, training, weights
from radiolib.run import params, study
from radiolib.steps import approaches

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ("peak", "training", "threads", "resize", "notebooks")
# mode: (bf16 autocast, channels_last, torch.compile)
MODES = {"fp32": (False, False, False), "bf16": (True, False, False), "channels_last": (False, True, False),
         "bf16+channels_last": (True, True, False), "compile": (False, True, True),
         "compile+bf16": (True, True, True)}
DEFAULT_MODES = ("fp32", "bf16", "channels_last", "bf16+channels_last", "compile")
STUDY_MODE = "channels_last"  # the study's default (TrainConfig: channels_last=True, bf16=False)
SCRATCH, TRANSFER = "02_training_from_scratch", "03_transfer_learning"


# ---------------------------------------------------------------------------------------------------------------
# Timing and printing


def print_table(title: str, header: list[str], rows: list[list]) -> None:
    """Rows as aligned text columns (first column left-aligned, the others right-aligned)."""
    cells = [header] + [[c if isinstance(c, str) else str(c) if isinstance(c, int) else f"{c:,.1f}" for c in row]
                        for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    for i, row in enumerate(cells):
        print("  " + "  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("  " + "  ".join("-" * w for w in widths))


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise TimeoutError in the main thread if the block runs longer than `seconds` (SIGALRM; Unix)."""
    def expire(signum, frame):
        raise TimeoutError(f"did not finish within {seconds:g} s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def empty_inductor_cache():
    """Inductor caches compiled code in a fresh folder (the compile time of a first run), deleted on exit."""
    old = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = folder = tempfile.mkdtemp(prefix="bench-inductor-")
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TORCHINDUCTOR_CACHE_DIR")
        else:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = old
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# 1. Matmul peak


def matmul_peak(sizes: tuple[int, ...], seconds: float, rounds: int) -> dict[str, dict[int, float]]:
    """{dtype: {n: GFLOP/s}} of n x n @ n x n matmuls (2 n^3 FLOPs each), best of interleaved rounds."""
    gen = torch.Generator().manual_seed(0)
    steps, work = {}, {}
    for dtype, torch_dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        for n in sizes:
            a, b = (torch.randn(n, n, generator=gen).to(torch_dtype) for _ in range(2))
            out = torch.empty_like(a)
            steps[dtype, n] = lambda a=a, b=b, out=out: torch.mm(a, b, out=out)
            work[dtype, n] = 2 * n ** 3 / 1e9
    gflops = {key: rate * work[key] for key, rate in best_rate(steps, 1, seconds, rounds).items()}
    return {dtype: {n: gflops[dtype, n] for n in sizes} for dtype in ("fp32", "bf16")}


def report_peak(peak: dict[str, dict[int, float]]) -> None:
    sizes = list(peak["fp32"])
    print_table(f"Matmul peak, torch.mm, {torch.get_num_threads()} threads (GFLOP/s)",
                ["dtype", *map(str, sizes), "best"],
                [[dtype, *by_n.values(), max(by_n.values())] for dtype, by_n in peak.items()])


# ---------------------------------------------------------------------------------------------------------------
# The study's training rows: network, input size, batch, from the profiles' parameters


@dataclass(frozen=True)
class Row:
    """One network at one input size as a notebook of a profile trains it (`cfg`: its TrainConfig)."""

    profile: str
    notebook: str
    net: str
    cfg: training.TrainConfig
    train_patch_size: int

    @property
    def label(self) -> str:
        return f"{self.net} {self.cfg.input_size}px b{self.cfg.batch_size} ({self.profile} {self.notebook[:2]})"

    def model(self) -> nn.Module:
        """A fresh model as the notebook builds it: from scratch (02), or a random-weight pretrained net (03)."""
        if self.notebook == TRANSFER:
            return weights.load_pretrained(self.net, "random", num_classes=2, seed=0).train()
        return models.build(self.net, seed=0, input_size=self.cfg.input_size).train()


def notebook_params(profile: str, stem: str) -> SimpleNamespace:
    """A notebook's parameters in a profile: its defaults <- params/<profile>/study.yaml <- <stem>.yaml."""
    return SimpleNamespace(**{**params.defaults(stem), **params.load_profile(profile, stem, REPO / "params")})


def study_rows(profiles: list[str], networks: list[str]) -> list[Row]:
    """The (network, input size) pairs the profiles train, first profile first; a pair seen before is skipped."""
    rows, seen = [], set()
    for profile in profiles:
        p02, p03 = notebook_params(profile, SCRATCH), notebook_params(profile, TRANSFER)
        candidates = [Row(profile, SCRATCH, net, approaches.scratch_config(net, p02), p02.train_patch_size)
                      for net in p02.networks]
        candidates += [Row(profile, TRANSFER, net, approaches.transfer_config(p03), p03.train_patch_size)
                       for net in p03.networks]
        for row in candidates:
            key = (row.net, row.cfg.input_size)
            if row.net in networks and key not in seen:
                seen.add(key)
                rows.append(row)
    return sorted(rows, key=lambda r: (networks.index(r.net), r.cfg.input_size))


def example_batch(row: Row, batch: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed random input batch at the row's input size, and balanced labels."""
    n = batch or row.cfg.batch_size
    x = torch.randn(n, 3, row.cfg.input_size, row.cfg.input_size, generator=torch.Generator().manual_seed(0))
    return x, torch.arange(n) % 2


def training_step(row: Row, mode: str):
    """`step()`: one training step of `train_fold` for the row in `mode` (a fresh model and Adam)."""
    bf16, channels_last, compiled = MODES[mode]
    cfg = replace(row.cfg, bf16=bf16, channels_last=channels_last)
    model = row.model()
    x, y = example_batch(row)
    if channels_last:
        model, x = models.to_channels_last(model), x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(models.l2_param_groups(model, cfg.weight_decay, cfg.lr, cfg.head_lr))
    if compiled:
        torch._dynamo.reset()  # a new model per row: without a reset, recompiles hit dynamo's limit (then eager)
        forward = torch.compile(model)
    else:
        forward = model

    def step():
        with models.autocast(cfg.device, enabled=cfg.bf16):
            loss = F.cross_entropy(forward(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def step_flops(row: Row) -> float:
    """FLOPs per image of one forward + backward (FlopCounterMode: convolutions and matmuls), counted on 2 images."""
    model = row.model()
    x, y = example_batch(row, batch=2)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops() / 2


# ---------------------------------------------------------------------------------------------------------------
# 2. Training throughput per mode


def bench_row(row: Row, modes: list[str], seconds: float, rounds: int, compile_timeout: float) -> dict:
    """{"rates": {mode: images/s}, "failed": {mode: why it did not run}, "compile_seconds": {mode: s}}.

    A compile mode's seconds are those of its first call (its step built, traced and compiled) less one step.
    """
    steps, first_call, failed = {}, {}, {}
    for mode in modes:
        start = time.perf_counter()
        try:
            step = training_step(row, mode)
            with time_limit(compile_timeout) if MODES[mode][2] else contextlib.nullcontext():
                step()
        except Exception as err:  # a compile that fails or runs too long is a result, not a crash
            failed[mode] = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
            continue
        steps[mode], first_call[mode] = step, time.perf_counter() - start
    rates = best_rate(steps, row.cfg.batch_size, seconds, rounds)
    compile_s = {m: first_call[m] - row.cfg.batch_size / rates[m] for m in steps if MODES[m][2]}
    return {"rates": rates, "failed": failed, "compile_seconds": compile_s}


def bench_training(rows: list[tuple[Row, list[str]]], seconds: float, rounds: int, compile_timeout: float,
                   peak: dict[str, float]) -> dict:
    """Images/s per row and its modes, printed with achieved GFLOP/s and % of the matmul peak of the mode's dtype."""
    out = {}
    table, compile_rows = [], []
    for row, modes in rows:
        flops = step_flops(row)
        result = bench_row(row, modes, seconds, rounds, compile_timeout)
        result["gflop_per_image"] = flops / 1e9
        out[row.label] = {"net": row.net, "input_size": row.cfg.input_size, "batch": row.cfg.batch_size,
                          "profile": row.profile, "notebook": row.notebook, **result}
        for mode in modes:
            dtype = "bf16" if MODES[mode][0] else "fp32"
            if mode in result["failed"]:
                table.append([row.label, mode, "-", "-", "-", "-", result["failed"][mode][:70]])
                continue
            rate = result["rates"][mode]
            achieved = rate * flops / 1e9
            pct = f"{100 * achieved / peak[dtype]:.1f}% of {dtype}" if peak.get(dtype) else "-"
            table.append([row.label, mode, f"{flops / 1e9:.3f}", rate, achieved, pct, ""])
        for mode, s in result["compile_seconds"].items():
            compile_rows.append([row.label, mode, s, result["rates"][mode] / result["rates"][STUDY_MODE]
                                 if STUDY_MODE in result["rates"] else "-"])
        done = ", ".join(f"{m} {r:.1f}" for m, r in result["rates"].items())
        compiled = "".join(f", {m} first call {s:.0f} s" for m, s in result["compile_seconds"].items())
        print(f"  {row.label}: {done} images/s{compiled}{''.join(f', {m} failed' for m in result['failed'])}",
              flush=True)
    print_table("Training step (forward + backward + Adam), images/s; GFLOP/s from FlopCounterMode (fwd+bwd)",
                ["network, input, batch (profile, notebook)", "mode", "GFLOP/image", "images/s", "GFLOP/s", "of peak",
                 "note"],
                table)
    if compile_rows:
        print_table("torch.compile: first call (tracing + inductor code generation, empty cache) and steady speed-up",
                    ["row", "mode", "compile s", f"x {STUDY_MODE}"],
                    [[r[0], r[1], r[2], r[3] if isinstance(r[3], str) else f"{r[3]:.2f}x"] for r in compile_rows])
    return out


# ---------------------------------------------------------------------------------------------------------------
# 3. Threads: one process vs two joblib workers


def timed_steps(row: Row, threads: int | None, seconds: float, start_at: float | None = None) -> dict:
    """Images/s of the study-mode step with `threads` torch threads (None: as found), timed from `start_at`.

    Runs in a joblib worker too: the thread count found on entry is restored on exit, so a reused worker keeps
    joblib's own limit for the next call.
    """
    found = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        step = training_step(row, STUDY_MODE)
        step()
        if start_at is not None:
            time.sleep(max(0.0, start_at - time.time()))
        begin, n = time.time(), 0
        while n < 2 or time.time() - begin < seconds:
            step()
            n += 1
        end = time.time()
        return {"rate": n * row.cfg.batch_size / (end - begin), "threads": torch.get_num_threads(),
                "found": found, "window": (begin, end)}
    finally:
        torch.set_num_threads(found)


def parallel_rate(row: Row, workers: int, threads: int | None, seconds: float) -> dict:
    """Total images/s of `workers` loky workers stepping at once (each timed over the same wall-clock window)."""
    run = Parallel(n_jobs=workers, backend="loky")
    ready = run(delayed(timed_steps)(row, threads, 0.0) for _ in range(workers))  # spawn, import, warm up
    lead = 3 + 2 * max(r["window"][1] - r["window"][0] for r in ready)
    start_at = time.time() + lead + 2 * row.cfg.batch_size / min(r["rate"] for r in ready)
    parts = run(delayed(timed_steps)(row, threads, seconds, start_at) for _ in range(workers))
    overlap = min(p["window"][1] for p in parts) - max(p["window"][0] for p in parts)
    span = max(p["window"][1] for p in parts) - min(p["window"][0] for p in parts)
    return {"rate": sum(p["rate"] for p in parts), "threads": parts[0]["threads"], "found": parts[0]["found"],
            "overlap": max(0.0, overlap) / span}


def bench_threads(rows: list[Row], seconds: float, rounds: int) -> dict:
    """1 process x 1 / 2 threads vs 2 loky workers x joblib's default / 1 / 2 threads, total images/s."""
    cores = os.cpu_count()
    setups = [("1 process x 1 thread", 1, 1), (f"1 process x {cores} threads", 1, cores),
              ("2 joblib workers x default threads", 2, None), ("2 joblib workers x 1 thread", 2, 1),
              (f"2 joblib workers x {cores} threads", 2, cores)]
    out, table = {}, []
    for row in rows:
        best = {}
        for _ in range(rounds):
            for name, workers, threads in setups:
                r = (timed_steps(row, threads, seconds) if workers == 1 else
                     parallel_rate(row, workers, threads, seconds))
                r.pop("window", None)
                if r["rate"] > best.get(name, {"rate": 0})["rate"]:
                    best[name] = r
        out[row.label] = best
        for name, workers, _ in setups:
            r = best[name]
            total_threads = workers * r["threads"]
            note = f"{total_threads} thread{'s' * (total_threads > 1)} on {cores} cores"
            note += ", oversubscribed" if total_threads > cores else ""
            if "overlap" in r:
                note += f", windows overlap {100 * r['overlap']:.0f}%"
            table.append([row.label, name, r["threads"], r["rate"], note])
        print(f"  measured {row.label}", flush=True)
    print_table(f"Threads: study-mode ({STUDY_MODE} fp32) training step, total images/s of all processes",
                ["row", "setup", "threads each", "images/s", "note"], table)
    return out


# ---------------------------------------------------------------------------------------------------------------
# 4. Resizing every batch vs tensors resized once


def random_crop(t: torch.Tensor, size: int, rng: np.random.Generator) -> torch.Tensor:
    """One random size x size crop per image (what `PatchScorer.batch` does in training with `crop`)."""
    offs = rng.integers(0, t.shape[-1] - size + 1, size=(len(t), 2))
    return torch.stack([t[i, :, oy:oy + size, ox:ox + size] for i, (oy, ox) in enumerate(offs)])


def bench_resize(rows: list[Row], seconds: float, rounds: int, step_rates: dict) -> dict:
    """ms per batch: the study's input pipeline vs indexing pre-resized tensors, as a % of the training step."""
    out, table = {}, []
    for row in rows:
        cfg, n = row.cfg, row.cfg.batch_size
        rng = np.random.default_rng(0)
        patches = rng.random((4 * n, 3, row.train_patch_size, row.train_patch_size), dtype=np.float32)
        ones = torch.ones(1, 3, 1, 1)
        scorer = training.PatchScorer(None, replace(cfg, device="cpu"), 0 * ones, ones)
        if cfg.crop:  # 03: resized once to input*256/224 (the same pipeline without its crop), cropped per batch
            big = int(round(cfg.input_size * 256 / 224))
            once = training.PatchScorer(None, replace(cfg, device="cpu", crop=False, input_size=big), 0 * ones, ones)
            cached = once.batch(patches)
        else:
            cached = scorer.batch(patches)

        def from_cache():
            idx = torch.from_numpy(rng.choice(len(cached), n, replace=False))
            t = cached[idx]
            t = random_crop(t, cfg.input_size, rng) if cfg.crop else t
            return t.contiguous(memory_format=torch.channels_last)

        def per_batch():
            return scorer.batch(patches[rng.choice(len(patches), n, replace=False)], train=True, rng=rng)

        steps = {"PatchScorer.batch (resizes)": per_batch, "resized once, indexed": from_cache}
        rates = best_rate(steps, 1, seconds, rounds)
        step_rate = step_rates.get(row.label) or best_rate({0: training_step(row, STUDY_MODE)}, n, seconds, rounds)[0]
        step_ms = 1000 * n / step_rate
        out[row.label] = {"step_ms": step_ms, **{k: 1000 / v for k, v in rates.items()}}
        for name, rate in rates.items():
            table.append([row.label, name, 1000 / rate, f"{100 * (1000 / rate) / step_ms:.1f}%"])
        print(f"  measured {row.label}", flush=True)
    print_table(f"Input pipeline per batch (patches -> input), ms, and % of the {STUDY_MODE} training step",
                ["row", "inputs", "ms/batch", "of step"], table)
    return out


# ---------------------------------------------------------------------------------------------------------------
# 5. The demo's notebooks


def notebook_seconds(run_dir: Path) -> dict:
    """{notebook: seconds} of the run.json the study runner wrote in `run_dir` ({} when there is none)."""
    path = run_dir / study.RUN_FILE
    if not path.is_file():
        print(f"\nNotebooks: no {path} (run `python -m radiolib study --profile demo` or `make study` first)")
        return {}
    doc = json.loads(path.read_text())
    seconds = doc.get("seconds", {})
    rows = [[stem, doc.get("state", {}).get(stem, {}).get("status", "?"), s, s / 60] for stem, s in seconds.items()]
    rows.append(["total", doc.get("status", "?"), sum(seconds.values()), sum(seconds.values()) / 60])
    m = doc.get("machine", {})
    print_table(f"Notebooks of {path} (profile {doc.get('profile')}, started {doc.get('started')}, "
                f"{m.get('cpus')} cpus, {m.get('torch_threads')} torch threads)",
                ["notebook", "status", "seconds", "minutes"], rows)
    return seconds


# ---------------------------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="minimum timed seconds per round and setting")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the best one is reported")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--profiles", nargs="+", default=["demo", "paper"],
                        help="params/ profiles whose input sizes and batches are measured")
    parser.add_argument("--networks", nargs="+", default=list(models.NETWORKS),
                        help=f"of {', '.join(weights.known_nets())} (vgg16: the paper profile's transfer net)")
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(DEFAULT_MODES))
    parser.add_argument("--thread-networks", nargs="+", default=["cifar", "googlenet"],
                        help="networks of the threads section (at the first profile's sizes)")
    parser.add_argument("--threads", type=int, help="torch threads of sections 1, 2 and 4 (default: torch's)")
    parser.add_argument("--matmul-sizes", nargs="+", type=int, default=[1024, 2048])
    parser.add_argument("--compile-timeout", type=float, default=600.0, help="seconds allowed to a first compile")
    parser.add_argument("--run-dir", type=Path, default=REPO / "runs" / "demo", help="the demo run folder")
    parser.add_argument("--json", type=Path, help="also save every figure to this JSON file")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: demo profile, cifar and googlenet_r, compile on cifar only")
    args = parser.parse_args()
    if args.quick:
        args.profiles, args.networks, args.thread_networks = ["demo"], ["cifar", "googlenet_r"], ["cifar"]
    return args


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cpus, "
          f"cpu capability {torch.backends.cpu.get_cpu_capability()}")
    results: dict = {"torch": torch.__version__, "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count()}
    peak = {}
    if "peak" in args.sections:
        results["peak"] = matmul_peak(tuple(args.matmul_sizes), args.seconds, args.rounds)
        report_peak(results["peak"])
        peak = {dtype: max(by_n.values()) for dtype, by_n in results["peak"].items()}
    rows = study_rows(args.profiles, args.networks)
    step_rates = {}
    if "training" in args.sections:
        modes = [(row, [m for m in args.modes if not (args.quick and MODES[m][2] and row.net != "cifar")])
                 for row in rows]
        with empty_inductor_cache():
            results["training"] = bench_training(modes, args.seconds, args.rounds, args.compile_timeout, peak)
        step_rates = {k: v["rates"].get(STUDY_MODE) for k, v in results["training"].items()}
    first = [r for r in rows if r.profile == args.profiles[0]]
    if "threads" in args.sections:
        results["threads"] = bench_threads([r for r in first if r.net in args.thread_networks], args.seconds,
                                           args.rounds)
    if "resize" in args.sections:
        results["resize"] = bench_resize(first, args.seconds, args.rounds, step_rates)
    if "notebooks" in args.sections:
        results["notebooks"] = notebook_seconds(args.run_dir)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
        print(f"\nsaved {args.json}")


if __name__ == "__main__":
    main()
