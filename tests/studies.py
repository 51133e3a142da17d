"""The smallest whole study (notebooks 01 to 09 through the CLI), shared by the end-to-end tests: its profile, the
command that runs it, and what it wrote. The session fixture `tiny_study` (conftest.py) runs it
once per test session; the tests that need a run of their own (interrupted, kernel killed) start it here."""
import subprocess
import sys
import types
from pathlib import Path

import yaml

from radiolib.data import dataset
from radiolib.data.synth.lgg import synthesize_lgg
from radiolib.run import context, params

ROOT = Path(__file__).resolve().parents[1]
TINY = {  # the smallest study that still runs every approach
    "synth_patients": 20, "n_folds": 3, "epochs": 1, "patches_per_epoch": 64, "lr_sweep": [1e-4],
    "networks": {"02_training_from_scratch": ["cifar"]}, "fc_lr_sweep": [1e-3], "domain_patients": 8,
    "domain_epochs": 1, "domain_patches_per_epoch": 128, "kernels": ["linear"], "svm_max_train": 200,
    "n_boot": 200, "dae_epochs": 2, "gene_epochs": 20, "random_sets": 5, "mixed_pairs": 2,
}
# Zhu et al.'s notebooks and the report: what the runs that are interrupted on purpose run (07-09 run in the session's
# tiny study)
ZHU = ["01_preprocessing", "02_training_from_scratch", "03_transfer_learning", "04_deep_features_svm",
       "05_layerwise_analysis", "06_report"]


def tiny_profile(folder: Path) -> Path:
    """A params folder holding the profile "tiny": the smoke profile (the defaults) made smaller, TINY's shared keys
    in its study.yaml and a notebook's own keys in that notebook's file."""
    (folder / "tiny").mkdir(parents=True, exist_ok=True)
    shared = {k: v for k, v in TINY.items() if not isinstance(v, dict)}
    (folder / "tiny" / "study.yaml").write_text(yaml.safe_dump({"profile": "tiny", **shared}))
    for stem in params.NOTEBOOKS:
        own = {k: v[stem] for k, v in TINY.items() if isinstance(v, dict) and stem in v}
        if own:
            (folder / "tiny" / f"{stem}.yaml").write_text(yaml.safe_dump(own))
    return folder


def start(out: Path, cache: Path, params_dir: Path, *extra: str, **kw) -> subprocess.Popen:
    """`radiolib study --profile tiny` into `out` with its own cache, in a new process group (to be killed)."""
    cmd = [sys.executable, "-m", "radiolib", "study", "--profile", "tiny", "--params", str(params_dir),
           "--out", str(out), "-p", f"cache_dir={cache}", *extra]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, **kw)


def run(out: Path, cache: Path, params_dir: Path, *extra: str) -> str:
    """Runs the study to its end and returns what it printed; fails naming the end of that output."""
    proc = start(out, cache, params_dir, *extra)
    output, _ = proc.communicate(timeout=1200)
    assert proc.returncode == 0, output[-3000:]
    return output


def results(run_dir: Path, stems=None) -> dict[str, bytes]:
    """The run's results files, by name (only those of `stems`, when given)."""
    return {p.name: p.read_bytes() for p in sorted((run_dir / "results").glob("*.json"))
            if stems is None or p.stem in stems}


# The tiny LGG setting of the in-domain tests (tests/test_in_cohort.py, tests/test_external_source.py): 8 synthetic
# patients, 2 folds, one short epoch; each test module adds what its source needs.
TINY_LGG = {"synth_format": "lgg", "patch_sizes": [80], "n_folds": 2, "repeats": 1, "n_boot": 50, "epochs": 1,
            "patches_per_epoch": 32, "batch_size": 16, "domain_epochs": 1, "domain_patches_per_epoch": 32,
            "pretrained_input_scale": 0.25}


def tiny_lgg_patch_set(root: Path):
    """8 synthetic LGG patients (kaggle_3m layout, 256 x 256 slices as in the release), patches of 80 px."""
    cohort = synthesize_lgg(root / "lgg", patients=8, seed=4, faults=False, size=256)
    return dataset.build_patch_set(cohort, [80], cache_dir=root / "cache", progress=False)


def tiny_lgg_params(stem: str, cache_dir: Path, **overrides) -> types.SimpleNamespace:
    """Notebook `stem`'s parameters at TINY_LGG and `overrides`, checked as a notebook checks them."""
    values = {**params.defaults(stem), **TINY_LGG, "cache_dir": str(cache_dir),
              "run_dir": str(Path(cache_dir) / "run"), **overrides}
    params.validate(stem, {k: v for k, v in values.items() if k in params.defaults(stem)})
    return types.SimpleNamespace(**values)


def tiny_lgg_context(stem: str, patch_set, cache_dir: Path, **overrides):
    """Notebook `stem`'s loaded RunContext at `tiny_lgg_params`."""
    P = tiny_lgg_params(stem, cache_dir, **overrides)
    return context.RunContext(P, stem, progress=False, patch_set=patch_set).load()
