"""The paper profile on one GPU: training images/s of each network, and the time the profile's training would take.

On a CUDA machine: each network's training images/s (the study's CUDA step, `training.train_fold`'s: channels_last,
`models.autocast` (bfloat16, or float16 with a `GradScaler`), cuDNN benchmark, Adam over `models.l2_param_groups`) and
evaluation images/s (forward only, as the per-epoch scoring), at the paper's 224 px, at 32 px, and at the input the
paper profile gives it (02: Table 2's sides, 03: 224), for 02's four networks from scratch (batch 64) and 03's
pretrained GoogLeNet and VGG16 (batch 32). Then the estimated time of the paper profile's trainings
(params/paper: repeats x folds x epochs x every training patch, the learning-rate sweeps, the per-epoch scoring and
batch-norm recomputation, the in-domain pretraining of 03-05), from those rates.
On a machine without CUDA it says so, prints the profile's workload (images to train and to score, per notebook),
and exits 0.

The training patches per patient are not known before the data is read: `--patches-per-patient` (default 68, the
synthetic Duke cohort's train + augmented patches per patient with n_augment 4; `--normal-per-patient` 12, its normal
tissue patches, for the pretraining). Feature extraction and SVMs (04, 05) are not counted (one forward pass each).
Run: `python benchmarks/bench_gpu.py [--seconds 2] [--rounds 2] [--sizes 224 32]`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from timing import best_rate

from radiolib.learn import models, weights
from radiolib.run import params
from radiolib.steps import approaches

REPO = Path(__file__).resolve().parents[1]
PROFILE = "paper"
LARGEST = 25  # patches a patient is scored from (5 slices x 5 patches)


def profile_params(stem: str) -> SimpleNamespace:
    """A notebook's parameters in the paper profile."""
    return SimpleNamespace(**{**params.defaults(stem), **params.load_profile(PROFILE, stem, REPO / "params")})


@dataclass
class Work:
    """Images one kind of training passes through a network: trained, and scored without gradient."""

    notebook: str
    net: str
    pretrained: bool
    input_size: int
    batch: int
    train_images: float = 0.0
    eval_images: float = 0.0


def workload(per_patient: float, normal_per_patient: float) -> list[Work]:
    """The paper profile's trainings (02, 03 and the in-domain pretraining), as images per network and input."""
    p02, p03 = profile_params(params.SCRATCH), profile_params(params.TRANSFER)
    patients, folds, repeats = p02.synth_patients, p02.n_folds, p02.repeats
    train_patches = patients * (folds - 1) / folds * per_patient
    test_patients = patients / folds
    cvs = repeats * folds

    def fold_eval(cfg, net) -> float:  # per epoch: test and curve patients scored, batch-norm statistics recomputed
        curve = min(cfg.curve_patients or patients, patients - test_patients)
        bn = min(cfg.bn_patches or train_patches, train_patches) if net.startswith("googlenet") else 0
        return (test_patients + curve) * LARGEST + bn

    def per_epoch(cfg) -> float:
        return cfg.patches_per_epoch or train_patches

    out = []
    sweep02 = [lr for lr in p02.lr_sweep if lr != p02.lr]
    for net in p02.networks:
        cfg = approaches.scratch_config(net, p02)
        runs = 1 + (len(sweep02) if net == p02.sweep_network else 0)
        out.append(Work("02", net, False, cfg.input_size, cfg.batch_size, runs * cvs * cfg.epochs * per_epoch(cfg),
                        runs * cvs * cfg.epochs * fold_eval(cfg, net)))
    cfg = approaches.transfer_config(p03)
    sweep03 = [lr for lr in p03.fc_lr_sweep if lr != p03.fc_lr]
    for net in p03.networks:
        runs = len(p03.sources) + (len(sweep03) if net == p03.sweep_network else 0)
        out.append(Work("03", net, True, cfg.input_size, cfg.batch_size, runs * cvs * cfg.epochs * per_epoch(cfg),
                        runs * cvs * cfg.epochs * fold_eval(cfg, net)))
    domain = profile_params(params.TRANSFER)
    if "domain" in domain.sources:
        images = domain.domain_patients * (per_patient + normal_per_patient)
        per = domain.domain_patches_per_epoch or images
        nets = sorted(set(p03.networks) | set(profile_params(params.FEATURES).networks))
        for net in nets:
            out.append(Work("03-05 domain", net, True, cfg.input_size, 64, domain.domain_epochs * per, images))
    return out


def make_model(work: Work, size: int) -> torch.nn.Module:
    if work.pretrained:
        return weights.load_pretrained(work.net, "random", num_classes=2, seed=0)
    return models.build(work.net, seed=0, input_size=size)


def rates(work: Work, size: int, device: torch.device, seconds: float, rounds: int) -> tuple[float, float]:
    """(training, evaluation) images/s of `work`'s network at input `size` on `device`, as train_fold runs it."""
    model = models.to_device(make_model(work, size), device, channels_last=True).train()
    x = torch.randn(work.batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.arange(work.batch, device=device) % 2
    opt = torch.optim.Adam(models.l2_param_groups(model, 5e-4, 1e-4))
    scaler = models.grad_scaler(device)

    def train_step():
        with models.autocast(device):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        torch.cuda.synchronize(device)

    @torch.no_grad()
    def eval_step():
        model.eval()
        with models.autocast(device):
            model(x)
        torch.cuda.synchronize(device)
        model.train()

    best = best_rate({"train": train_step, "eval": eval_step}, work.batch, seconds, rounds)
    return best["train"], best["eval"]


def print_workload(works: list[Work]) -> None:
    print(f"\nThe {PROFILE} profile's trainings (millions of images):")
    for w in works:
        print(f"  {w.notebook:13s} {w.net:12s} {w.input_size:4d} px  train {w.train_images / 1e6:8.2f}  "
              f"score {w.eval_images / 1e6:7.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[224, 32])
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--patches-per-patient", type=float, default=68)
    ap.add_argument("--normal-per-patient", type=float, default=12)
    args = ap.parse_args()
    works = workload(args.patches_per_patient, args.normal_per_patient)
    if not torch.cuda.is_available():
        print(f"No CUDA device present (torch {torch.__version__}, built for CUDA {torch.version.cuda}): no GPU rate "
              "measured and no time estimated here.")
        print_workload(works)
        return 0
    device = models.resolve_device(args.device)
    print(f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}, "
          f"{'bfloat16' if torch.cuda.is_bf16_supported() else 'float16 + GradScaler'} autocast, channels_last")
    measured: dict[tuple[str, bool, int], tuple[float, float]] = {}
    print("\nimages/s (train / score):")
    for w in works:
        for size in dict.fromkeys([*args.sizes, w.input_size]):
            key = (w.net, w.pretrained, size)
            if key not in measured:
                measured[key] = rates(w, size, device, args.seconds, args.rounds)
                kind = "pretrained" if w.pretrained else "scratch"
                print(f"  {w.net:12s} {kind:10s} {size:4d} px  b{w.batch:<3d} {measured[key][0]:9,.0f} / "
                      f"{measured[key][1]:9,.0f}")
    print_workload(works)
    total = 0.0
    print("\nestimated hours:")
    for w in works:
        train, score = measured[(w.net, w.pretrained, w.input_size)]
        hours = (w.train_images / train + w.eval_images / score) / 3600
        total += hours
        print(f"  {w.notebook:13s} {w.net:12s} {hours:7.2f}")
    print(f"  the paper profile's trainings: {total:.1f} hours on this GPU (feature extraction and SVMs not counted)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
