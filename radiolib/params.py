"""Notebook parameters: the valid keys, their smoke-sized defaults, and validation.

Each notebook's `parameters` cell holds exactly the defaults listed here (a test checks it), the profiles in
`params/<profile>/<stem>.yaml` override them, and `bind()` (the cell after the parameters) refuses any unknown or
misspelled key with the list of valid ones; papermill alone would only log a warning.
"""
from __future__ import annotations

import difflib
import types
from pathlib import Path
from typing import Any, Mapping

import yaml

# Keys every notebook shares: where the data is, how the synthetic cohort is made, how patches are cut.
COMMON: dict[str, Any] = {
    "profile": "smoke",
    "data_dir": None,
    "target": None,
    "synth_format": "duke",
    "synth_patients": 24,
    "synth_seed": 0,
    "synth_effect": 1.5,
    "synth_faults": True,
    "patch_sizes": [80, 120],
    "n_augment": 4,
    "seed": 0,
    "n_jobs": 1,
    "run_dir": "../runs/interactive",
    "cache_dir": None,
}

DOC: dict[str, str] = {
    "profile": "name of the params/ profile this run comes from",
    "data_dir": "a Duke or LGG download; None: the synthetic cohort below",
    "target": "the label; None: luminal A (Duke), COCCluster 2 (LGG); README: other targets",
    "synth_format": "synthetic cohort layout: duke (breast DCE-MRI) or lgg (glioma, kaggle_3m)",
    "synth_patients": "synthetic cohort: number of patients",
    "synth_seed": "synthetic cohort: seed (same seed, same bytes)",
    "synth_effect": "synthetic cohort: subtype-image signal (0: a null cohort)",
    "synth_faults": "synthetic cohort: inject the faults the paper excluded patients for",
    "patch_sizes": "patch sides in the paper's pixels (0.97 mm), scaled to the data's spacing",
    "n_augment": "augmented patches per lesion region (translation + rotation)",
    "seed": "seed of augmentation, folds and training",
    "n_jobs": "parallel workers (joblib)",
    "run_dir": "where results/ and figures/ go",
    "cache_dir": "None: $RADIOLIB_CACHE, else ~/.cache/radiolib",
    "n_folds": "patient-level stratified folds (paper: 10)",
    "repeats": "repeats of the cross-validation, median reported (paper: 5)",
    "n_boot": "bootstrap resamples of patients for the 95% CI",
    "bf16": "bfloat16 autocast: faster, but features differ from fp32 (see benchmarks/)",
    "channels_last": "NHWC memory format (faster convolutions)",
    "domain_data_dir": "other patients (same layout, none in the study) to pretrain on; None: a synthetic cohort",
    "domain_patients": "size of the disjoint synthetic source cohort of the domain pretraining",
    "domain_epochs": "epochs of the lesion-vs-normal pretraining",
    "domain_patches_per_epoch": "class-balanced patches per pretraining epoch",
    "pretrained_input_scale": "input side / 224 for GoogLeNet and VGG16 (paper: 1.0)",
    "allow_download": "fetch ImageNet weights when missing (needs a network)",
    "networks": "networks to run (02: cifar, vgg_r, googlenet_r, googlenet; 03, 04: googlenet, vgg16)",
    "sources": "pretraining sources: imagenet, domain, random (a labelled control)",
    "train_patch_size": "patch size (paper px) the networks are trained on",
    "input_scale": "input side / the paper's input side (Table 2); paper: 1.0",
    "epochs": "training epochs (paper: 40)",
    "patches_per_epoch": "class-balanced training patches per epoch; None: all (paper)",
    "batch_size": "patches per step",
    "lr": "learning rate (paper: 1e-4, halved every 5 epochs)",
    "lr_sweep": "learning rates of the Figure 2 sweep",
    "sweep_network": "network of the learning-rate sweep (paper: vgg_r)",
    "fc_lr": "learning rate of the re-initialised last layer (paper: 1e-3, 10x the rest)",
    "fc_lr_sweep": "last-layer learning rates of the Figure 2 sweep",
    "kernels": "SVM kernels",
    "svm_train_roles": "patches the SVM trains on: train (originals), augmented",
    "svm_max_train": "class-balanced cap on SVM training patches per fold; None: all",
    "layer_patch_size": "patch size of the layer-wise SVMs; None: the best GoogLeNet row of notebook 04 (paper: 120)",
    "kernel": "SVM kernel of the layer-wise analysis; None: the best GoogLeNet row of notebook 04 (paper: poly)",
    "maps_channels": "feature maps shown per layer in the viewer",
}

# The cross-validation protocol, shared by the approach notebooks (paper: 10 folds x 5 repeats).
PROTOCOL: dict[str, Any] = {
    "n_folds": 3,
    "repeats": 1,
    "n_boot": 1000,
    "bf16": False,
    "channels_last": True,
}

# The label-free in-domain pretraining (lesion vs normal tissue on a disjoint source cohort): one recipe shared by
# every notebook that uses the `domain` source, so they all reuse the same cached checkpoint.
DOMAIN: dict[str, Any] = {
    "domain_data_dir": None,
    "domain_patients": 12,
    "domain_epochs": 2,
    "domain_patches_per_epoch": 512,
    "pretrained_input_scale": 0.25,
    "allow_download": False,
}

NOTEBOOKS: dict[str, dict[str, Any]] = {
    "01_preprocessing": {},
    "02_training_from_scratch": {
        **PROTOCOL,
        "networks": ["cifar", "vgg_r", "googlenet_r", "googlenet"],
        "train_patch_size": 80,
        "input_scale": 0.25,
        "epochs": 2,
        "patches_per_epoch": 256,
        "batch_size": 64,
        "lr": 1e-4,
        "lr_sweep": [1e-4, 5e-4, 2e-5],
        "sweep_network": "cifar",
    },
    "03_transfer_learning": {
        **PROTOCOL,
        **DOMAIN,
        "networks": ["googlenet"],
        "sources": ["imagenet", "domain", "random"],
        "train_patch_size": 80,
        "epochs": 2,
        "patches_per_epoch": 256,
        "batch_size": 32,
        "lr": 1e-4,
        "fc_lr": 1e-3,
        "fc_lr_sweep": [1e-3, 5e-3, 2e-4],
        "sweep_network": "googlenet",
    },
    "04_deep_features_svm": {
        **PROTOCOL,
        **DOMAIN,
        "networks": ["googlenet"],
        "sources": ["imagenet", "domain"],
        "kernels": ["poly", "rbf", "linear"],
        "svm_train_roles": ["train"],
        "svm_max_train": 600,
    },
    "05_layerwise_analysis": {
        **PROTOCOL,
        **DOMAIN,
        "sources": ["imagenet", "domain", "random"],
        "layer_patch_size": None,
        "kernel": None,
        "svm_train_roles": ["train"],
        "svm_max_train": 600,
        "maps_channels": 16,
    },
    "06_report": {},
}

# Settings of the study runner (radiolib.study), not of a notebook: they change how a run is watched, never what it
# computes, so they are neither in a parameters cell nor in a results file. Profiles set them in
# `params/<profile>/study.yaml`; `-p key=value` overrides them like any parameter.
RUNNER: dict[str, Any] = {
    "cell_timeout": 1800,
}
RUNNER_DOC: dict[str, str] = {
    "cell_timeout": "seconds one notebook cell may run before the runner stops the notebook and retries it once",
}

_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


def parameters_cell(stem: str) -> str:
    """The source of a notebook's `parameters` cell: every key with its default and what it means."""
    lines = []
    for key, value in defaults(stem).items():
        note = DOC.get(key)
        lines.append(f"{key} = {value!r}" + (f"  # {note}" if note else ""))
    return "\n".join(lines)


def defaults(stem: str) -> dict[str, Any]:
    """The full default parameters of one notebook (common keys first)."""
    if stem not in NOTEBOOKS:
        raise KeyError(f"unknown notebook {stem!r}; known: {', '.join(NOTEBOOKS)}")
    return {**COMMON, **NOTEBOOKS[stem]}


def _unknown_key_message(stem: str, bad: list[str]) -> str:
    valid = list(defaults(stem))
    hints = []
    for key in bad:
        close = difflib.get_close_matches(key, valid, n=1)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return (f"unknown parameter {', '.join(hints)} for notebook {stem}. "
            f"Valid keys: {', '.join(valid)}")


def validate(stem: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Check keys and types against the defaults; return the merged parameters."""
    spec = defaults(stem)
    bad = [k for k in values if k not in spec]
    if bad:
        raise ValueError(_unknown_key_message(stem, bad))
    merged = dict(spec)
    for key, value in values.items():
        ref = spec[key]
        if ref is not None and value is not None and not _same_kind(ref, value):
            raise TypeError(f"parameter {key!r} of {stem} should be {type(ref).__name__}, "
                            f"got {value!r} ({type(value).__name__})")
        merged[key] = value
    return merged


def _same_kind(ref: Any, value: Any) -> bool:
    if isinstance(ref, bool) or isinstance(value, bool):
        return isinstance(ref, bool) and isinstance(value, bool)
    if isinstance(ref, (int, float)):
        return isinstance(value, (int, float))
    if isinstance(ref, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(ref))


def bind(namespace: Mapping[str, Any], stem: str) -> types.SimpleNamespace:
    """Collect the notebook's parameters from its globals, refusing names that are not parameters.

    Called in the cell right after the `parameters` cell (and papermill's injected cell), where the only
    user-level globals are parameters: anything else is a misspelled or unknown key.
    """
    values = {k: v for k, v in namespace.items()
              if not k.startswith("_") and k not in _IPYTHON_NAMES
              and not isinstance(v, types.ModuleType) and not callable(v)}
    return types.SimpleNamespace(**validate(stem, values))


def load_profile(profile: str, stem: str, params_dir: Path) -> dict[str, Any]:
    """Read `params/<profile>/<stem>.yaml` and validate it (missing file = no overrides)."""
    path = Path(params_dir) / profile / f"{stem}.yaml"
    if not (Path(params_dir) / profile).is_dir():
        profiles = sorted(p.name for p in Path(params_dir).iterdir() if p.is_dir())
        raise ValueError(f"unknown profile {profile!r}; available: {', '.join(profiles)}")
    values = yaml.safe_load(path.read_text()) if path.exists() else {}
    try:
        validate(stem, values or {})
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path.name} of profile {profile}: {err}") from None
    return dict(values or {})


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Turn `-p key=value` pairs into typed values (YAML scalars: 3, 0.5, true, [80, 120], null)."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"-p expects key=value, got {pair!r}")
        key, raw = pair.split("=", 1)
        out[key.strip()] = yaml.safe_load(raw)
    return out
