"""Notebook parameters: one table (PARAMETERS) of every key, and what is derived from it.

Each parameter is declared once, as a `Parameter`: its smoke-sized default, its check, one line of doc, the notebooks
that take it, the paper's value, and whether it identifies a run. From the table come each notebook's defaults
(`defaults`), its `parameters` cell (`parameters_cell`; each notebook's cell holds exactly this, a test checks it),
the checks (`check_values`, `validate`, `bind`, `check_study`), the paper's values that protocol.py compares a run
with, and results.RUN_KEYS. Adding a parameter is one entry here and its line in the notebooks' parameters cells.

A profile is a folder
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
import re
import types
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from ..data.patches import SCORING_ROLES

# --- Value checks: each returns None or what the value must be. -----------------------------------------------


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


def _fraction(v) -> str | None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1
    return None if ok else "must be a number between 0 and 1"


def _bool(v) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def _text(what: str) -> Callable[[Any], str | None]:
    return lambda v: None if isinstance(v, str) and v.strip() else f"must be {what}"


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


def _device(v) -> str | None:
    ok = isinstance(v, str) and re.fullmatch(r"auto|cpu|cuda(:[0-9]+)?", v)
    return None if ok else "must be auto, cpu, cuda or cuda:N"


def _optional_folder(v) -> str | None:
    return None if v is None or (isinstance(v, str) and v.strip()) else "must be a folder path (or null)"


# Names the code accepts (tests/test_params.py checks they match radiolib.learn.models, .weights and .synth).
SCRATCH_NETWORKS = ("cifar", "vgg_r", "googlenet_r", "googlenet")
PRETRAINED_NETWORKS = ("googlenet", "vgg16")
SOURCES = ("imagenet", "domain", "in_cohort", "random")
DOMAIN_TASKS = ("lesion", "tumour_type")
KERNELS = ("poly", "rbf", "linear", "sigmoid")

# --- The notebooks, in the order the study runs them. ---------------------------------------------------------
PREPROCESSING, SCRATCH, TRANSFER, FEATURES, LAYERWISE = ("01_preprocessing", "02_training_from_scratch",
                                                        "03_transfer_learning", "04_deep_features_svm",
                                                        "05_layerwise_analysis")
RECEPTORS, ASSOCIATIONS, MASKING, REPORT = "07_receptors", "08_associations", "09_gene_masking", "06_report"
NOTEBOOKS: tuple[str, ...] = (PREPROCESSING, SCRATCH, TRANSFER, FEATURES, LAYERWISE, RECEPTORS, ASSOCIATIONS, MASKING,
                              REPORT)

ALL = "every notebook"  # Parameter.notebooks: every notebook takes it
RUNNER_KEY = "the runner"  # Parameter.notebooks: a setting of the study runner (radiolib.run.study), no notebook's


class _NoPaperValue:
    def __repr__(self) -> str:
        return "NO_PAPER"


NO_PAPER = _NoPaperValue()  # Parameter.paper: the paper gives no value


@dataclass(frozen=True)
class Parameter:
    """One parameter, declared once: its default, check, one line of doc, the notebooks that take it, the paper's
    value (NO_PAPER: none given), and whether it makes two results files parts of one run (`run_key`).

    `notebooks` is a tuple of stems, ALL, or RUNNER_KEY (the runner's settings: they change how a run is watched,
    never what it computes, so they are in no parameters cell nor results file; profiles set them in study.yaml).
    `per_notebook` {stem: {field: value}} holds the default, check or paper value one notebook has differently.
    """

    name: str
    default: Any
    check: Callable[[Any], str | None]
    doc: str
    notebooks: tuple[str, ...] | str = ALL
    paper: Any = NO_PAPER
    run_key: bool = False
    per_notebook: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def takes(self, stem: str) -> bool:
        """Whether notebook `stem` has this parameter."""
        return stem in NOTEBOOKS and (self.notebooks == ALL or stem in self.notebooks)

    def of(self, stem: str) -> Parameter:
        """This parameter as notebook `stem` has it (its `per_notebook` fields applied)."""
        return replace(self, **self.per_notebook[stem]) if stem in self.per_notebook else self


ZHU_NOTEBOOKS = (PREPROCESSING, SCRATCH, TRANSFER, FEATURES, LAYERWISE)
APPROACHES = (SCRATCH, TRANSFER, FEATURES, LAYERWISE)  # the cross-validated approach notebooks of Zhu et al.
PRETRAINING = (TRANSFER, FEATURES, LAYERWISE)  # the notebooks that use pretrained networks (and the domain source)
DAE = (RECEPTORS, ASSOCIATIONS, MASKING)
_P = Parameter

# The table: every parameter of the notebooks and the runner, in the order of the parameters cells.
PARAMETERS: tuple[Parameter, ...] = (
    # Every notebook: where the data is, how the synthetic cohort is made, how patches are cut.
    _P("profile", "smoke", _text("a profile name"), "name of the params/ profile this run comes from"),
    _P("data_dir", None, _optional_folder, "a Duke or LGG download; None: the synthetic cohort below"),
    _P("target", None, _optional(_text("a label name")),
       "None: luminal_like (Duke), COCCluster 2 (LGG); other targets: README", run_key=True),
    _P("synth_format", "duke", _choice("duke", "lgg"),
       "synthetic cohort layout: duke (breast DCE-MRI) or lgg (glioma, kaggle_3m)", run_key=True),
    _P("synth_patients", 24, _int(4, 5000), "synthetic cohort: number of patients", run_key=True),
    _P("synth_seed", 0, _int(0), "synthetic cohort: seed (same seed, same bytes)", run_key=True),
    _P("synth_effect", 1.5, _number_at_least_0, "synthetic cohort: subtype-image signal (0: a null cohort)",
       run_key=True),
    _P("synth_faults", True, _bool, "synthetic cohort: inject the faults the paper excluded patients for",
       run_key=True),
    _P("patch_sizes", [80, 120], _list(_int(8, 512)),
       "patch sides in the paper's pixels (0.97 mm), scaled to the data's spacing", run_key=True),
    _P("n_augment", 4, _int(0, 100), "augmented patches per lesion region (translation + rotation)", run_key=True),
    _P("seed", 0, _int(0), "seed of augmentation, folds and training", run_key=True),
    _P("n_jobs", 1, _int(1), "parallel workers (joblib)"),
    _P("run_dir", "../runs/interactive", _text("a folder path"), "where results/ and figures/ go"),
    _P("cache_dir", None, _optional_folder, "None: $RADIOLIB_CACHE, else ~/.cache/radiolib"),
    # The cross-validation protocol (01: the folds of the ceiling).
    _P("n_folds", 3, _int(2), "patient-level stratified folds (paper: 10)", (*ZHU_NOTEBOOKS, RECEPTORS, MASKING),
       paper=10, run_key=True),
    _P("repeats", 1, _int(1), "repeats of the cross-validation, median reported (paper: 5)",
       (*ZHU_NOTEBOOKS, RECEPTORS), paper=5, run_key=True),
    _P("n_boot", 1000, _int(0), "bootstrap resamples of patients for the 95% CI", (*ZHU_NOTEBOOKS, RECEPTORS, MASKING)),
    _P("test_patches", "largest", _choice(*SCORING_ROLES),
       "scored on: largest (paper: 5 slices x 5 patches), tumour (every slice)", APPROACHES, paper="largest"),
    _P("bf16", False, _bool, "bfloat16 autocast: faster, but features differ from fp32 (see benchmarks/)", APPROACHES),
    _P("channels_last", True, _bool, "NHWC memory format (faster convolutions)", APPROACHES),
    _P("device", "auto", _device, "auto: CUDA when present, else CPU; cpu, cuda, cuda:N (CUDA: mixed precision)",
       APPROACHES),
    # The in-domain pretraining, never on the study's labels: one recipe shared by every notebook that uses the
    # `domain` source, so they all reuse the same cached checkpoints. "external" pretrains once on a disjoint cohort
    # (`domain_data_dir`: the study's own layout or the Figshare brain-tumour cohort; else a synthetic cohort of
    # another seed, for the lgg study one in the Figshare layout); "in_cohort" inside each outer fold on that fold's
    # training patients only (what real data without `domain_data_dir` always does). The source `in_cohort` puts
    # the in-cohort networks beside an external `domain`.
    _P("domain_source", "external", _choice("external", "in_cohort"),
       "external: a disjoint cohort; in_cohort: each fold's training patients", PRETRAINING),
    _P("domain_data_dir", None, _optional_folder,
       "other patients to pretrain on (same layout); None: see domain_source", PRETRAINING),
    _P("domain_task", "lesion", _choice(*DOMAIN_TASKS),
       "the external domain network learns: lesion (vs normal tissue), tumour_type",
       PRETRAINING, paper="lesion"),
    _P("domain_patients", 12, _int(4), "size of the disjoint synthetic source cohort of the domain pretraining",
       PRETRAINING),
    _P("domain_epochs", 2, _int(1), "epochs of the lesion-vs-normal pretraining", PRETRAINING),
    _P("domain_patches_per_epoch", 512, _optional(_int(2)), "class-balanced patches per pretraining epoch",
       PRETRAINING),
    _P("domain_lr", 1e-4, _positive_number, "learning rate of the domain pretraining (Adam)",
       PRETRAINING),
    _P("pretrained_input_scale", 0.25, _positive_number, "input side / 224 for GoogLeNet and VGG16 (paper: 1.0)",
       PRETRAINING, paper=1.0),
    _P("allow_download", False, _bool, "fetch ImageNet weights when missing (needs a network)", PRETRAINING),
    # The networks and their training.
    _P("networks", ["googlenet"], _list(_choice(*PRETRAINED_NETWORKS)), "02: all four; 03/04: googlenet, vgg16",
       (SCRATCH, TRANSFER, FEATURES), paper=["googlenet", "vgg16"],
       per_notebook={SCRATCH: {"default": list(SCRATCH_NETWORKS), "check": _list(_choice(*SCRATCH_NETWORKS)),
                               "paper": list(SCRATCH_NETWORKS)}}),
    _P("sources", ["imagenet", "domain", "random"], _list(_choice(*SOURCES)),
       "imagenet, domain, in_cohort, random (a control)", PRETRAINING, paper=["imagenet"],
       per_notebook={FEATURES: {"default": ["imagenet", "domain"]}}),
    _P("train_patch_size", 80, _int(8, 512), "patch size (paper px) the networks are trained on", (SCRATCH, TRANSFER)),
    _P("input_scale", 0.25, _positive_number, "input side / the paper's input side (Table 2); paper: 1.0", (SCRATCH,),
       paper=1.0),
    _P("epochs", 2, _int(1), "training epochs (paper: 40)", (SCRATCH, TRANSFER), paper=40),
    _P("patches_per_epoch", 256, _optional(_int(2)), "class-balanced training patches per epoch; None: all (paper)",
       (SCRATCH, TRANSFER), paper=None),
    _P("batch_size", 64, _int(2), "patches per step", (SCRATCH, TRANSFER), per_notebook={TRANSFER: {"default": 32}}),
    _P("lr", 1e-4, _positive_number, "learning rate (paper: 1e-4, halved every 5 epochs)", (SCRATCH, TRANSFER),
       paper=1e-4),
    _P("lr_sweep", [1e-4, 5e-4], _list(_positive_number), "learning rates of the Figure 2 sweep", (SCRATCH,)),
    _P("fc_lr", 1e-3, _positive_number, "learning rate of the re-initialised last layer (paper: 1e-3, 10x the rest)",
       (TRANSFER,), paper=1e-3),
    _P("fc_lr_sweep", [1e-3, 5e-3], _list(_positive_number), "last-layer learning rates of the Figure 2 sweep",
       (TRANSFER,)),
    _P("sweep_network", "googlenet", _choice(*PRETRAINED_NETWORKS), "network of the learning-rate sweep (paper: vgg_r)",
       (SCRATCH, TRANSFER),
       per_notebook={SCRATCH: {"default": "cifar", "check": _choice(*SCRATCH_NETWORKS), "paper": "vgg_r"}}),
    # The SVMs on deep features, and the layer-wise analysis (Table 6's setting: 120 px, poly).
    _P("kernels", ["poly", "rbf", "linear"], _list(_choice(*KERNELS)), "SVM kernels", (FEATURES,)),
    _P("layer_patch_size", None, _optional(_int(8, 512)),
       "patch size of the layer-wise SVMs; None: the paper's pre-specified 120", (LAYERWISE,), paper=120),
    _P("kernel", None, _optional(_choice(*KERNELS)),
       "SVM kernel of the layer-wise analysis; None: the paper's pre-specified poly", (LAYERWISE,), paper="poly"),
    _P("svm_train_roles", ["train"], _list(_choice("train", "augmented")),
       "patches the SVM trains on: train (originals), augmented", (FEATURES, LAYERWISE)),
    _P("svm_max_train", 600, _optional(_int(2)), "class-balanced cap on SVM training patches per fold; None: all",
       (FEATURES, LAYERWISE), paper=None),
    _P("maps_channels", 16, _int(1), "feature maps shown per layer in the viewer", (LAYERWISE,)),
    # The denoising autoencoder (DAE) and the radiogenomic analyses of 07-09.
    _P("dae_input", "lesion", _choice("lesion", "slice"),
       "DAE input: lesion (lesion-centred slices, paper) or slice (whole slices)", DAE, paper="lesion"),
    _P("dae_patch_size", 80, _int(8, 512),
       "patch size (paper px) of the lesion slices the DAE reads (resized to 64 x 64)", DAE),
    _P("dae_loss", "mse", _choice("mse", "cosine", "keras_cosine"),
       "DAE loss: mse, cosine (image), keras_cosine (published; trains nothing)", DAE),
    _P("dae_epochs", 15, _int(1), "DAE training epochs", DAE),
    _P("dae_bf16", False, _bool, "bf16 autocast for the DAE's training steps (its features stay fp32)", DAE,
       paper=False),
    _P("clinical_targets", ["T", "N", "ER", "PR", "HER2"], _list(_choice("T", "N", "ER", "PR", "HER2")),
       "clinical targets: T, N, ER, PR, HER2", (RECEPTORS, MASKING),
       per_notebook={MASKING: {"default": ["ER", "PR", "HER2"]}}),
    _P("gene_table", None, _optional(_text("a file path")),
       "CSV, patients x genes (first column: patient id); None: the synthetic one", (ASSOCIATIONS, MASKING)),
    _P("fdr_alpha", 0.05, _fraction, "Benjamini-Hochberg false discovery rate of an association", (ASSOCIATIONS,)),
    _P("mixed_pairs", 10, _int(0), "random FDR-significant pairs, and as many of all, refitted as mixed models",
       (ASSOCIATIONS,)),
    # fewer than 20 permutations: the permutation p cannot fall below 0.05, nor a 95th percentile be read
    _P("gene_permutations", 20, _int(20), "gene table permutations among patients: the null of the counts",
       (ASSOCIATIONS,)),
    _P("gene_epochs", 60, _int(1), "epochs of the gene-to-phenotype network", (MASKING,)),
    _P("gene_pretrain", False, _bool, "start the network from a gene autoencoder trained on the training patients",
       (MASKING,)),
    _P("random_sets", 100, _int(1), "replicates of the masking null: one random gene set per programme, of its size",
       (MASKING,)),
    # The study runner's settings (`-p key=value` overrides them like any parameter).
    _P("cell_timeout", 1800, _int(1),
       "seconds one notebook cell may run before the runner stops the notebook and retries it once", RUNNER_KEY),
)


def parameter(name: str, stem: str | None = None) -> Parameter:
    """The table's entry `name` (as notebook `stem` has it, when given); KeyError naming the key."""
    for p in PARAMETERS:
        if p.name == name:
            return p.of(stem) if stem else p
    raise KeyError(f"no parameter {name!r} in radiolib.run.params.PARAMETERS")


def paper_value(name: str, stem: str | None = None) -> Any:
    """The paper's value of parameter `name` (in notebook `stem`), NO_PAPER where the paper gives none."""
    return parameter(name, stem).paper


def runner_defaults() -> dict[str, Any]:
    """The runner's settings and their defaults."""
    return {p.name: p.default for p in PARAMETERS if p.notebooks == RUNNER_KEY}


def run_keys() -> tuple[str, ...]:
    """The parameters that make two results files parts of one run, in the table's order."""
    return tuple(p.name for p in PARAMETERS if p.run_key)


# Views of the table, for the modules that read them (computed once, at import).
COMMON: dict[str, Any] = {p.name: p.default for p in PARAMETERS if p.notebooks == ALL}
RUNNER: dict[str, Any] = runner_defaults()


def check_values(stem: str, values: Mapping[str, Any]) -> list[str]:
    """What is wrong with a notebook's parameter values, one "key = value: must be ..." per problem.

    `stem` selects a notebook's own checks (`Parameter.per_notebook`); another name (STUDY_FILE) the table's.
    """
    checks = {p.name: (p.of(stem) if stem in NOTEBOOKS else p).check for p in PARAMETERS}
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
    return "\n".join(f"{p.name} = {p.default!r}  # {p.doc}" for p in _parameters_of(stem))


def cell_problems(source: str, stem: str) -> list[str]:
    """How a notebook's `parameters` cell departs from the table, one line naming each key ([] when it agrees)."""
    spec, names = defaults(stem), _assigned_names(source)
    out = [f"{stem}: parameter {k!r} is in the table but not in the parameters cell (add: "
           f"`{k} = {spec[k]!r}`)" for k in spec if k not in names]
    out += [f"{stem}: {k!r} is in the parameters cell but is not a parameter of this notebook in "
            f"radiolib.run.params.PARAMETERS" for k in names if k not in spec]
    missing = object()
    for key in [k for k in names if k in spec]:
        value = _literal(source, key, missing)
        if value is missing or type(value) is not type(spec[key]) or value != spec[key]:
            shown = "not a literal" if value is missing else repr(value)
            out.append(f"{stem}: parameter {key!r} is {shown} in the parameters cell, {spec[key]!r} in the table")
    return out


def _parameters_of(stem: str) -> list[Parameter]:
    """The table's entries notebook `stem` takes, as it has them, in the table's order; KeyError for another stem."""
    if stem not in NOTEBOOKS:
        raise KeyError(f"unknown notebook {stem!r}; known: {', '.join(NOTEBOOKS)}")
    return [p.of(stem) for p in PARAMETERS if p.takes(stem)]


def defaults(stem: str) -> dict[str, Any]:
    """The full default parameters of one notebook (common keys first)."""
    return {p.name: p.default for p in _parameters_of(stem)}


def _unknown_key_message(stem: str, bad: list[str], valid: list[str] | None = None, where: str = "") -> str:
    valid = valid or list(defaults(stem))
    hints = []
    for key in bad:
        entry = next((p for p in PARAMETERS if p.name == key), None)
        owners = [] if entry is None or entry.notebooks == ALL else \
            [RUNNER_KEY] if entry.notebooks == RUNNER_KEY else [s for s in NOTEBOOKS if entry.takes(s)]
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
    keys: list[str] = []
    for stem in NOTEBOOKS:
        keys += [k for k in defaults(stem) if k not in keys]
    return keys + [k for k in runner_defaults() if k not in keys]


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
    runner = runner_defaults()
    unknown = [k for k in overrides if k not in runner and not any(k in defaults(s) for s in stems)]
    for problem in check_values("study", {k: v for k, v in overrides.items() if k in runner}):
        found.setdefault(f"{problem} (the runner)", [])
    if unknown:
        valid = sorted({k for s in stems for k in defaults(s)} | set(runner))
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
    runner = {k: v for k, v in shared.items() if k in runner_defaults()}
    problems += [f"{study_path}: {p} (the runner)" for p in check_values(STUDY_FILE, runner)]
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
