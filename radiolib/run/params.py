"""Notebook parameters: the valid keys, their smoke-sized defaults, and validation.

Each notebook's `parameters` cell holds exactly the defaults listed here (a test checks it). A profile is a folder
`params/<profile>/` that states only what differs from these defaults: `study.yaml` the settings shared by the whole
study (each notebook takes the keys it has; the runner's `cell_timeout` too), and `<notebook>.yaml`, only where one
notebook differs from the others, its own overrides. `bind()` (the cell after the parameters) refuses a key that no
notebook has, with the list of valid ones (papermill alone would only log a warning), and ignores a key that belongs
to another notebook or to the runner, so `papermill NB OUT -f params/<profile>/study.yaml -f
params/<profile>/<notebook>.yaml` runs one notebook of a profile.
"""
from __future__ import annotations

import ast
import difflib
import math
import types
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from ..data.patches import SCORING_ROLES

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
    "target": "None: luminal_like (Duke), COCCluster 2 (LGG); other targets: README",
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
    "test_patches": "scored on: largest (paper: 5 slices x 5 patches), tumour (every slice)",
    "bf16": "bfloat16 autocast: faster, but features differ from fp32 (see benchmarks/)",
    "channels_last": "NHWC memory format (faster convolutions)",
    "domain_source": "external: a disjoint cohort; in_cohort: each fold's training patients",
    "domain_data_dir": "other patients to pretrain on (same layout); None: see domain_source",
    "domain_patients": "size of the disjoint synthetic source cohort of the domain pretraining",
    "domain_epochs": "epochs of the lesion-vs-normal pretraining",
    "domain_patches_per_epoch": "class-balanced patches per pretraining epoch",
    "pretrained_input_scale": "input side / 224 for GoogLeNet and VGG16 (paper: 1.0)",
    "allow_download": "fetch ImageNet weights when missing (needs a network)",
    "networks": "02: all four; 03/04: googlenet, vgg16",
    "sources": "pretraining: imagenet, domain, random (a control)",
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
    "layer_patch_size": "patch size of the layer-wise SVMs; None: the paper's pre-specified 120",
    "kernel": "SVM kernel of the layer-wise analysis; None: the paper's pre-specified poly",
    "maps_channels": "feature maps shown per layer in the viewer",
    "dae_input": "DAE input: lesion (lesion-centred slices, paper) or slice (whole slices)",
    "dae_patch_size": "patch size (paper px) of the lesion slices the DAE reads (resized to 64 x 64)",
    "dae_loss": "DAE loss: mse, cosine (image), keras_cosine (published; trains nothing)",
    "dae_epochs": "DAE training epochs",
    "dae_bf16": "bf16 autocast for the DAE's training steps (its features stay fp32)",
    "clinical_targets": "clinical targets: T, N, ER, PR, HER2",
    "gene_table": "CSV, patients x genes (first column: patient id); None: the synthetic one",
    "fdr_alpha": "Benjamini-Hochberg false discovery rate of an association",
    "mixed_pairs": "random FDR-significant pairs, and as many of all, refitted as mixed models",
    "gene_permutations": "gene table permutations among patients: the null of the counts",
    "gene_epochs": "epochs of the gene-to-phenotype network",
    "gene_pretrain": "start the network from a gene autoencoder trained on the training patients",
    "random_sets": "replicates of the masking null: one random gene set per programme, of its size",
}

# The cross-validation protocol, shared by the approach notebooks (paper: 10 folds x 5 repeats).
PROTOCOL: dict[str, Any] = {
    "n_folds": 3,
    "repeats": 1,
    "n_boot": 1000,
    "test_patches": "largest",
    "bf16": False,
    "channels_last": True,
}

# The label-free in-domain pretraining (lesion vs normal tissue): one recipe shared by every notebook that uses the
# `domain` source, so they all reuse the same cached checkpoints. `domain_source`: "external" pretrains once on a
# disjoint cohort (`domain_data_dir`, else a synthetic cohort of another seed); "in_cohort" pretrains inside each
# outer fold on that fold's training patients only (what real data without `domain_data_dir` always does).
DOMAIN: dict[str, Any] = {
    "domain_source": "external",
    "domain_data_dir": None,
    "domain_patients": 12,
    "domain_epochs": 2,
    "domain_patches_per_epoch": 512,
    "pretrained_input_scale": 0.25,
    "allow_download": False,
}

NOTEBOOKS: dict[str, dict[str, Any]] = {
    "01_preprocessing": {k: PROTOCOL[k] for k in ("n_folds", "repeats", "n_boot")},  # the folds of the ceiling
    "02_training_from_scratch": {
        **PROTOCOL,
        "networks": ["cifar", "vgg_r", "googlenet_r", "googlenet"],
        "train_patch_size": 80,
        "input_scale": 0.25,
        "epochs": 2,
        "patches_per_epoch": 256,
        "batch_size": 64,
        "lr": 1e-4,
        "lr_sweep": [1e-4, 5e-4],
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
        "fc_lr_sweep": [1e-3, 5e-3],
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
    "07_receptors": {k: PROTOCOL[k] for k in ("n_folds", "repeats", "n_boot")} | {
        "dae_input": "lesion",
        "dae_patch_size": 80,
        "dae_loss": "mse",
        "dae_epochs": 15,
        "dae_bf16": False,
        "clinical_targets": ["T", "N", "ER", "PR", "HER2"],
    },
    "08_associations": {
        "dae_input": "lesion",
        "dae_patch_size": 80,
        "dae_loss": "mse",
        "dae_epochs": 15,
        "dae_bf16": False,
        "gene_table": None,
        "fdr_alpha": 0.05,
        "mixed_pairs": 10,
        "gene_permutations": 20,
    },
    "09_gene_masking": {k: PROTOCOL[k] for k in ("n_folds", "n_boot")} | {
        "dae_input": "lesion",
        "dae_patch_size": 80,
        "dae_loss": "mse",
        "dae_epochs": 15,
        "dae_bf16": False,
        "clinical_targets": ["ER", "PR", "HER2"],
        "gene_table": None,
        "gene_epochs": 60,
        "gene_pretrain": False,
        "random_sets": 100,
    },
    "06_report": {},
}

# Settings of the study runner (radiolib.run.study), not of a notebook: they change how a run is watched, never what it
# computes, so they are neither in a parameters cell nor in a results file. Profiles set them in
# `params/<profile>/study.yaml` beside the shared parameters; `-p key=value` overrides them like any parameter.
RUNNER: dict[str, Any] = {
    "cell_timeout": 1800,
}
RUNNER_DOC: dict[str, str] = {
    "cell_timeout": "seconds one notebook cell may run before the runner stops the notebook and retries it once",
}


# --- Value checks, one per key (beside the defaults): each returns None or what the value must be. -------------


def _int(lo: int | None = None, hi: int | None = None) -> Callable[[Any], str | None]:
    def check(v):
        if isinstance(v, bool) or not isinstance(v, int) or (lo is not None and v < lo) or (hi is not None and v > hi):
            bounds = " and ".join(b for b in (lo is not None and f">= {lo}", hi is not None and f"<= {hi}") if b)
            return f"must be an integer {bounds}".rstrip()
        return None
    return check


def _positive_number(v) -> str | None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
    return None if ok else "must be a number > 0"


def _number_at_least_0(v) -> str | None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
    return None if ok else "must be a number >= 0"


def _bool(v) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def _choice(*allowed: str) -> Callable[[Any], str | None]:
    return lambda v: None if v in allowed else f"must be one of {', '.join(allowed)}"


def _list(item: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
    """A non-empty list without repeats whose every item passes `item`."""
    def check(v):
        if not isinstance(v, (list, tuple)) or not v:
            return "must be a non-empty list"
        bad = [x for x in v if item(x)]
        if bad:
            return f"has {bad[0]!r}, which {item(bad[0])}"
        if len({repr(x) for x in v}) != len(v):
            return "must not repeat an item"
        return None
    return check


def _optional(check: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
    return lambda v: None if v is None else (f"{check(v)} (or null)" if check(v) else None)


def _optional_folder(v) -> str | None:
    return None if v is None or (isinstance(v, str) and v.strip()) else "must be a folder path (or null)"


# Names the code accepts (tests/test_params.py checks they match radiolib.learn.models, .weights and .synth).
SCRATCH_NETWORKS = ("cifar", "vgg_r", "googlenet_r", "googlenet")
PRETRAINED_NETWORKS = ("googlenet", "vgg16")
SOURCES = ("imagenet", "domain", "random")
KERNELS = ("poly", "rbf", "linear", "sigmoid")

CHECKS: dict[str, Callable[[Any], str | None]] = {
    "profile": lambda v: None if isinstance(v, str) and v.strip() else "must be a profile name",
    "data_dir": _optional_folder,
    "target": _optional(lambda v: None if isinstance(v, str) and v.strip() else "must be a label name"),
    "synth_format": _choice("duke", "lgg"),
    "synth_patients": _int(4, 5000),
    "synth_seed": _int(0),
    "synth_effect": _number_at_least_0,
    "synth_faults": _bool,
    "patch_sizes": _list(_int(8, 512)),
    "n_augment": _int(0, 100),
    "seed": _int(0),
    "n_jobs": _int(1),
    "run_dir": lambda v: None if isinstance(v, str) and v.strip() else "must be a folder path",
    "cache_dir": _optional_folder,
    "n_folds": _int(2),
    "repeats": _int(1),
    "n_boot": _int(0),
    "test_patches": _choice(*SCORING_ROLES),
    "bf16": _bool,
    "channels_last": _bool,
    "domain_source": _choice("external", "in_cohort"),
    "domain_data_dir": _optional_folder,
    "domain_patients": _int(4),
    "domain_epochs": _int(1),
    "domain_patches_per_epoch": _optional(_int(2)),
    "pretrained_input_scale": _positive_number,
    "allow_download": _bool,
    "networks": _list(_choice(*PRETRAINED_NETWORKS)),
    "sources": _list(_choice(*SOURCES)),
    "train_patch_size": _int(8, 512),
    "input_scale": _positive_number,
    "epochs": _int(1),
    "patches_per_epoch": _optional(_int(2)),
    "batch_size": _int(2),
    "lr": _positive_number,
    "lr_sweep": _list(_positive_number),
    "sweep_network": _choice(*PRETRAINED_NETWORKS),
    "fc_lr": _positive_number,
    "fc_lr_sweep": _list(_positive_number),
    "kernels": _list(_choice(*KERNELS)),
    "svm_train_roles": _list(_choice("train", "augmented")),
    "svm_max_train": _optional(_int(2)),
    "layer_patch_size": _optional(_int(8, 512)),
    "kernel": _optional(_choice(*KERNELS)),
    "maps_channels": _int(1),
    "dae_input": _choice("lesion", "slice"),
    "dae_patch_size": _int(8, 512),
    "dae_loss": _choice("mse", "cosine", "keras_cosine"),
    "dae_epochs": _int(1),
    "dae_bf16": _bool,
    "clinical_targets": _list(_choice("T", "N", "ER", "PR", "HER2")),
    "gene_table": lambda v: None if v is None or (isinstance(v, str) and v.strip())
    else "must be a file path (or null)",
    "fdr_alpha": lambda v: None if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1
    else "must be a number between 0 and 1",
    "mixed_pairs": _int(0),
    "gene_permutations": _int(20),  # fewer: the permutation p cannot fall below 0.05, nor a 95th percentile be read
    "gene_epochs": _int(1),
    "gene_pretrain": _bool,
    "random_sets": _int(1),
    "cell_timeout": _int(1),
}
CHECKS_BY_NOTEBOOK: dict[str, dict[str, Callable[[Any], str | None]]] = {
    "02_training_from_scratch": {"networks": _list(_choice(*SCRATCH_NETWORKS)),
                                 "sweep_network": _choice(*SCRATCH_NETWORKS)},
}


def check_values(stem: str, values: Mapping[str, Any]) -> list[str]:
    """What is wrong with a notebook's parameter values, one "key = value: must be ..." per problem."""
    checks = {**CHECKS, **CHECKS_BY_NOTEBOOK.get(stem, {})}
    problems = [f"{k} = {v!r}: {msg}" for k, v in values.items() if k in checks and (msg := checks[k](v))]
    bad = {p.split(" = ")[0] for p in problems}
    return problems + [p for p in _cross_checks(values) if p.split(" = ")[0] not in bad]


def _cross_checks(v: Mapping[str, Any]) -> list[str]:
    """Checks between keys (static ones: n_folds against the actual cohort is checked when it is known)."""
    out = []
    if "n_folds" in v and not v.get("data_dir") and isinstance(v.get("synth_patients"), int) \
            and isinstance(v["n_folds"], int) and v["n_folds"] > v["synth_patients"]:
        out.append(f"n_folds = {v['n_folds']!r}: more folds than the {v['synth_patients']} synthetic patients")
    sizes = v.get("patch_sizes") if isinstance(v.get("patch_sizes"), (list, tuple)) else []
    for key in ("train_patch_size", "layer_patch_size", "dae_patch_size"):
        if v.get(key) is not None and sizes and v[key] not in sizes:
            out.append(f"{key} = {v[key]!r}: must be one of patch_sizes {list(sizes)}")
    return out


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


def _unknown_key_message(stem: str, bad: list[str], valid: list[str] | None = None, where: str = "") -> str:
    valid = valid or list(defaults(stem))
    hints = []
    for key in bad:
        owners = [s for s in NOTEBOOKS if key in NOTEBOOKS[s]] or (["the runner"] if key in RUNNER else [])
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f" (a key of {', '.join(owners)} only)" if owners else f" (did you mean {close[0]!r}?)" if close else ""
        hints.append(f"{key!r}{hint}")
    return (f"unknown parameter {', '.join(hints)} {where or f'for notebook {stem}'}. "
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
    problems = check_values(stem, merged)
    if problems:
        raise ValueError(f"parameter {problems[0]} (notebook {stem})" +
                         "".join(f"; {p}" for p in problems[1:]))
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
    """Collect the notebook's parameters from its globals, refusing unknown names papermill injected.

    Called in the cell after the `parameters` cell (and papermill's injected cell). Only the valid keys are read
    from the namespace, so a kernel that already ran the notebook (P, paths, cohort, ...) binds again and a
    parameter edited in the `parameters` cell takes effect. Names from outside the notebook, given with
    `papermill -p/-f`, arrive in the injected cell (its first line is `# Parameters`): each name it assigns must
    be a key of some notebook or of the runner, else the error names it and lists the valid keys (papermill alone
    would only warn); a key of another notebook or of the runner (from a profile's shared study.yaml) is ignored.
    A key that a later cell reassigned (01 reuses `data_dir` for the cohort folder) takes the value of the latest
    parameters or injected cell instead, with a warning, so a rerun that starts at this cell binds what was set.
    """
    spec = defaults(stem)
    history = _history(namespace)
    values = {k: namespace[k] for k in spec if k in namespace}
    values.update({k: namespace.get(k) for k in injected_names(namespace) if k not in known_keys()})
    for key, (value, where) in _shadowed(history, spec).items():
        warnings.warn(f"parameter {key!r} was reassigned by a later cell ({where}); binding {value!r} from the "
                      "parameters cell: run that cell to change it", stacklevel=2)
        values[key] = value
    return types.SimpleNamespace(**validate(stem, values))


def known_keys() -> list[str]:
    """Every key some notebook or the runner has, in the order of the defaults (common keys first)."""
    keys = list(COMMON)
    for spec in NOTEBOOKS.values():
        keys += [k for k in spec if k not in keys]
    return keys + [k for k in RUNNER if k not in keys]


STUDY_FILE = "study"  # params/<profile>/study.yaml: the keys shared by the study's notebooks, and the runner's


def profile_file(profile: str, name: str, params_dir: Path) -> Path:
    """`params/<profile>/<name>.yaml`: `name` a notebook stem (its overrides) or STUDY_FILE (the shared keys)."""
    return Path(params_dir) / profile / f"{name}.yaml"


def profile_folder(profile: str, params_dir: Path) -> Path:
    """The folder of a profile; ValueError listing the available ones, or naming a file that is neither
    study.yaml nor a notebook's (a misspelled notebook name would otherwise be silently ignored)."""
    folder = Path(params_dir) / profile
    if not folder.is_dir():
        profiles = sorted(p.name for p in Path(params_dir).iterdir() if p.is_dir()) if Path(params_dir).is_dir() \
            else []
        raise ValueError(f"unknown profile {profile!r}; available: {', '.join(profiles) or 'none'} (in {params_dir})")
    names = [STUDY_FILE, *NOTEBOOKS]
    for path in sorted(folder.glob("*.y*ml")):
        if path.suffix != ".yaml" or path.stem not in names:
            close = difflib.get_close_matches(path.stem, names, n=1)
            raise ValueError(f"{path}: not a file of a profile" + (f" (did you mean {close[0]}.yaml?)" if close else "")
                             + f"; a profile holds {', '.join(f'{n}.yaml' for n in names)}")
    return folder


def read_profile_file(profile: str, name: str, params_dir: Path) -> dict[str, Any]:
    """The raw mapping of `params/<profile>/<name>.yaml` ({} when absent); ValueError naming the file and line."""
    profile_folder(profile, params_dir)
    path = profile_file(profile, name, params_dir)
    if not path.exists():
        return {}
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ValueError(f"{path}:{where} not valid YAML ({getattr(err, 'problem', None) or err})") from None
    if values is None:
        return {}
    if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
        raise ValueError(f"{path}: expected 'key: value' lines, got a {type(values).__name__}")
    return values


def _profile_parts(profile: str, stem: str, params_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the shared study.yaml, the notebook's own file) of a profile, raw; ValueError naming the file."""
    return read_profile_file(profile, STUDY_FILE, params_dir), read_profile_file(profile, stem, params_dir)


def _key_problems(profile: str, stem: str, params_dir: Path, shared: Mapping, own: Mapping) -> list[str]:
    """Unknown keys: in study.yaml a key no notebook and not the runner has, in a notebook's file one it lacks."""
    known, spec = known_keys(), defaults(stem)
    bad_shared = [k for k in shared if k not in known]
    out = [f"{profile_file(profile, STUDY_FILE, params_dir)}: "
           f"{_unknown_key_message(stem, bad_shared, known, where='in any notebook')}"] if bad_shared else []
    return out + [f"{profile_file(profile, stem, params_dir)}: {_unknown_key_message(stem, [k])}"
                  for k in own if k not in spec]


_INJECTED_HEADER = "# Parameters"


def _history(namespace: Mapping[str, Any]) -> list[str]:
    """Sources of the cells this kernel ran before the running one (IPython's `_ih`, alias `In`); [] elsewhere."""
    history = namespace.get("_ih") or namespace.get("In") or []
    return [s for s in list(history)[:-1] if isinstance(s, str)]


def injected_names(namespace: Mapping[str, Any]) -> list[str]:
    """Names assigned by the latest papermill `injected-parameters` cell this kernel ran (none outside papermill).

    IPython keeps every executed cell's source in `_ih` (alias `In`); papermill's injected cell starts with the
    line `# Parameters`. A notebook re-run in the same kernel re-runs that cell, so the most recent one is current.
    """
    for source in reversed(_history(namespace)):
        if source.lstrip().startswith(_INJECTED_HEADER):
            return _assigned_names(source)
    return []


def _is_parameters_cell(source: str, names: list[str], spec: Mapping[str, Any]) -> bool:
    """Papermill's injected cell, or a cell assigning only parameters, at least half of them (the parameters cell)."""
    if source.lstrip().startswith(_INJECTED_HEADER):
        return True
    return bool(names) and set(names) <= set(spec) and len(names) >= len(spec) / 2


def _shadowed(history: list[str], spec: Mapping[str, Any]) -> dict[str, tuple[Any, str]]:
    """Keys last assigned by an ordinary cell: {key: (value in the latest parameters cell or default, that cell)}."""
    cells = [(source, _assigned_names(source)) for source in history]
    out = {}
    for key in spec:
        latest = next(((src, names) for src, names in reversed(cells) if key in names), None)
        if latest is None or _is_parameters_cell(latest[0], latest[1], spec):
            continue
        value = spec[key]
        for src, names in reversed(cells):
            if key in names and _is_parameters_cell(src, names, spec):
                value = _literal(src, key, spec[key])
                break
        out[key] = (value, f"`{_assigning_line(latest[0], key)[:80]}`")
    return out


def _assigning_line(source: str, key: str) -> str:
    """The source line of the last top-level statement of a cell that assigns `key`."""
    lines = source.splitlines()
    found = [node.lineno for node in ast.parse(source).body if key in _assigned_names(ast.unparse(node))]
    return lines[found[-1] - 1].strip() if found else lines[0].strip()


def _literal(source: str, key: str, default: Any) -> Any:
    """The literal value a parameters cell assigns to `key` (its last assignment); the default if not a literal."""
    value = default
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == key for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError):
                value = default
    return value


def _assigned_names(source: str) -> list[str]:
    """Top-level names a cell assigns (`a = 1`, `a: int = 1`, `a = b = 2`, `for a in ...`), in order."""
    names: list[str] = []
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return names
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.For)) else []
        names += [t.id for t in targets if isinstance(t, ast.Name) and t.id not in names]
    return names


def load_profile(profile: str, stem: str, params_dir: Path) -> dict[str, Any]:
    """A notebook's values in a profile, validated: the keys of `study.yaml` it has <- its own `<stem>.yaml`.

    Either file may be absent; what neither sets is the default. ValueError names the file of a problem.
    """
    shared, own = _profile_parts(profile, stem, params_dir)
    problems = _key_problems(profile, stem, params_dir, shared, own)
    if problems:
        raise ValueError(problems[0])
    spec = defaults(stem)
    values = {k: v for k, v in shared.items() if k in spec}
    for name, layer in ((STUDY_FILE, values), (stem, {**values, **own})):
        try:
            validate(stem, layer)
        except (ValueError, TypeError) as err:
            raise ValueError(f"{profile_file(profile, name, params_dir)}: {err}") from None
    return {**values, **own}


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Turn `-p key=value` pairs into typed values (YAML scalars: 3, 0.5, true, [80, 120], null).

    A malformed pair raises ValueError naming it (one line per bad pair).
    """
    out, problems = {}, []
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            problems.append(f"-p expects key=value, got {pair!r}")
            continue
        try:
            out[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            problems.append(f"-p {pair!r}: the value of {key.strip()!r} is not a YAML value "
                            f"({getattr(err, 'problem', None) or err})")
    if problems:
        raise ValueError("\n".join(problems))
    return out


def check_study(profile: str, overrides: Mapping[str, Any], params_dir: Path, notebooks: list[str] | None = None,
                data: str | None = None) -> list[str]:
    """Every problem of a run's parameters before any work, one line each naming the notebook, key or file.

    Each notebook's values (defaults <- the profile's study.yaml <- its own file <- the overrides it has <- data) are
    checked: the files readable, keys known, types and values (CHECKS) right, and the runner's settings in study.yaml.
    A problem shared by several notebooks is one line.
    """
    stems = list(notebooks or NOTEBOOKS)
    found: dict[str, list[str]] = {}
    unknown_stems = [s for s in stems if s not in NOTEBOOKS]
    for s in unknown_stems:
        found.setdefault(f"unknown notebook {s!r}; known: {', '.join(NOTEBOOKS)}", [])
    stems = [s for s in stems if s in NOTEBOOKS]
    unknown = [k for k in overrides if k not in RUNNER and not any(k in defaults(s) for s in stems)]
    for problem in check_values("study", {k: v for k, v in overrides.items() if k in RUNNER}):
        found.setdefault(f"{problem} (the runner)", [])
    if unknown:
        valid = sorted({k for s in stems for k in defaults(s)} | set(RUNNER))
        found.setdefault(_unknown_key_message(stems[0], unknown, valid, where="(-p) in any notebook run"), [])
    if data and not Path(data).is_dir():
        found.setdefault(f"data folder not found (--data): {data}", [])
    for stem in stems:
        for problem in _notebook_problems(profile, stem, params_dir, overrides, data):
            found.setdefault(problem, []).append(stem)
    lines = []
    for problem, where in found.items():
        if problem.startswith(str(params_dir)) or not where:
            lines.append(problem)
        else:
            lines.append(f"{problem} ({'every notebook' if len(where) == len(stems) > 1 else ', '.join(where)})")
    return lines


def _notebook_problems(profile, stem, params_dir, overrides, data) -> list[str]:
    try:
        shared, own = _profile_parts(profile, stem, params_dir)
    except ValueError as err:
        return [str(err)]
    problems = _key_problems(profile, stem, params_dir, shared, own)
    study_path = profile_file(profile, STUDY_FILE, params_dir)
    problems += [f"{study_path}: {p} (the runner)" for p in check_values(STUDY_FILE, {k: v for k, v in shared.items()
                                                                                      if k in RUNNER})]
    spec = defaults(stem)
    layers = [(str(study_path), shared), (str(profile_file(profile, stem, params_dir)), own), ("-p", overrides)]
    merged, origin = dict(spec), dict.fromkeys(spec, "default")
    for where, values in layers:
        for key in set(values) & set(spec):
            merged[key], origin[key] = values[key], where
    if data:
        merged["data_dir"] = str(data)
    for key, value in merged.items():
        if spec[key] is not None and value is not None and not _same_kind(spec[key], value):
            problems.append(f"{key} = {value!r} ({origin[key]}): should be {type(spec[key]).__name__}")
    typed = {k for k in merged if spec[k] is not None and merged[k] is not None and not _same_kind(spec[k], merged[k])}
    problems += [p for p in check_values(stem, merged) if p.split(" = ")[0] not in typed]
    return problems
