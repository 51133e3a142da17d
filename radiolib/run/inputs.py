"""What a run reads, from its bound parameters `P`: the data folder (a user's download or the cached synthetic
cohort), the cached patch set, the patient-level folds, and the pretraining sources (which can run here, the
in-domain checkpoints, the pretrained networks and their identity for result caches).

`radiolib.run.context.RunContext` gathers these for one notebook run; the study runner (`radiolib.run.study`) only needs
`data_folder`.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import torch

from ..core import cache
from ..data.dataset import build_patch_set
from ..data.descriptor import contrast_channel
from ..data.figshare import is_figshare_layout
from ..data.synth import FAULTS, synthesize
from ..data.synth import VERSION as SYNTH_VERSION
from ..data.synth.figshare import VERSION as FIGSHARE_VERSION
from ..data.synth.figshare import synthesize_figshare
from ..data.synth.lgg import VERSION as LGG_VERSION
from ..data.synth.lgg import synthesize_lgg
from ..learn import weights
from ..learn.features import weights_tag
from ..learn.models import resolve_device
from ..learn.pretraining import domain_checkpoint, recipe
from ..learn.training import TrainConfig, fold_seed
from ..learn.weights import domain_meta
from ..stats.evaluation import patient_folds


def synthetic_cohort(P: SimpleNamespace, progress: bool = True) -> Path:
    """The synthetic cohort of these parameters, generated once under the cache and reused."""
    if P.synth_format == "lgg":
        key = cache.key_of(patients=P.synth_patients, seed=P.synth_seed, effect=P.synth_effect,
                           faults=bool(P.synth_faults), version=LGG_VERSION)
        out = cache.cache_root(P.cache_dir) / "cohorts" / f"synthetic-lgg-{key}"
        return synthesize_lgg(out, patients=P.synth_patients, seed=P.synth_seed, effect=P.synth_effect,
                              faults=P.synth_faults, progress=progress)
    if P.synth_format == "figshare":  # only as the glioma study's external source (`external_format`)
        key = cache.key_of(patients=P.synth_patients, seed=P.synth_seed, version=FIGSHARE_VERSION)
        out = cache.cache_root(P.cache_dir) / "cohorts" / f"synthetic-figshare-{key}"
        return synthesize_figshare(out, patients=P.synth_patients, seed=P.synth_seed, signal=True,
                                   progress=progress)
    if P.synth_format != "duke":
        raise ValueError(f"synth_format {P.synth_format!r}: expected 'duke' or 'lgg'")
    faults = list(FAULTS) if P.synth_faults is True else list(P.synth_faults or [])
    key = cache.key_of(patients=P.synth_patients, seed=P.synth_seed, effect=P.synth_effect, faults=faults,
                       version=SYNTH_VERSION)
    out = cache.cache_root(P.cache_dir) / "cohorts" / f"synthetic-{key}"
    return synthesize(out, patients=P.synth_patients, seed=P.synth_seed, effect=P.synth_effect, faults=faults,
                      n_jobs=max(1, P.n_jobs), progress=progress)


def data_folder(P: SimpleNamespace, progress: bool = True) -> Path:
    """`data_dir` when given (a real Duke-layout download), else the synthetic cohort."""
    if P.data_dir:
        path = Path(P.data_dir).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"data_dir {P.data_dir!r} is not a folder")
        return path
    return synthetic_cohort(P, progress)


def patch_set(P: SimpleNamespace, progress: bool = True):
    """The cached patch set for these parameters (built on first use): what every notebook starts from."""
    return build_patch_set(data_folder(P, progress), P.patch_sizes, P.n_augment, P.seed, P.cache_dir,
                           n_jobs=max(1, P.n_jobs), progress=progress, target=P.target)



def folds(ps, P: SimpleNamespace) -> list[dict]:
    """The paper's patient-level stratified folds (a function of the seed): every notebook uses the same ones."""
    return patient_folds(ps.table.patient.tolist(), ps.table.label.tolist(), P.n_folds, getattr(P, "repeats", 1),
                         P.seed)


def portable(text: str) -> str:
    """A message without this machine's home folder (results files and reports show no machine path)."""
    return str(text).replace(str(Path.home()), "~")


def pretrained_input(P: SimpleNamespace) -> int:
    """Input side of GoogLeNet / VGG16 (224 in the paper) after the profile's CPU reduction."""
    return max(32, int(round(224 * P.pretrained_input_scale)))


def external_format(P: SimpleNamespace) -> str:
    """The layout of the synthetic external source cohort: for the glioma study (lgg) another brain-tumour cohort,
    Cheng et al.'s Figshare release (`synth.figshare`), as Buda et al. pretrained on other patients' brain MRI;
    for the Duke study another synthetic Duke cohort."""
    return "figshare" if P.synth_format == "lgg" else P.synth_format


def domain_source_set(P: SimpleNamespace, progress: bool = True):
    """The external pretraining data: `domain_data_dir` (other patients: the study's layout or the Figshare
    brain-tumour release), else a synthetic cohort of another seed (`external_format`).

    A `domain_data_dir` sharing any patient with the study cohort (`data_dir`) is refused (ValueError naming them).
    """
    src = SimpleNamespace(**{**vars(P), "data_dir": P.domain_data_dir, "target": None,
                             "synth_patients": P.domain_patients, "synth_format": external_format(P),
                             "synth_seed": P.synth_seed + 1000, "synth_faults": False})
    source = patch_set(src, progress)
    if P.domain_data_dir and P.data_dir:
        domain_check_disjoint(patch_set(P, progress), source)
    return source


def domain_check_disjoint(study_set, source_set) -> None:
    """Raise ValueError naming the patients found in both the study cohort and the in-domain source cohort."""
    def found(ps):
        return set(ps.table.patient.astype(str)) | (set(ps.qc.patient.astype(str)) if "patient" in ps.qc else set())
    shared = sorted(found(study_set) & found(source_set))
    if shared:
        raise ValueError(f"domain_data_dir shares {len(shared)} patient(s) with the study cohort (data_dir): "
                         f"{', '.join(shared[:10])}{' ...' if len(shared) > 10 else ''}; in-domain pretraining "
                         "must use other patients than the study's")


def source_status(net: str, P: SimpleNamespace) -> dict[str, str | None]:
    """For each requested pretraining source: None if it can run, else the reason its rows are skipped."""
    status = {}
    for source in P.sources:
        if source == "imagenet":
            reason = weights.available_sources(net)["imagenet"]
            status[source] = None if (reason is None or P.allow_download) else portable(reason)
        elif source == "domain":
            status[source] = None  # external, or in-cohort inside each fold (`domain_mode`)
        elif source == IN_COHORT:
            same = domain_mode(P) == "in_cohort" and "domain" in P.sources
            status[source] = ("the domain rows are pretrained in-cohort already (domain_source: in_cohort, no "
                              "domain_data_dir): in_cohort would repeat them") if same else None
        elif source == "random":
            status[source] = None
        else:
            raise ValueError(f"unknown pretraining source {source!r}; expected imagenet, domain or random")
    return status


IN_COHORT = "in_cohort"  # the source of the networks pretrained inside each outer fold, beside an external domain


def weights_source(source: str) -> str:
    """The weights a row source loads (`weights.SOURCES`): the in-cohort networks are in-domain checkpoints."""
    return "domain" if source == IN_COHORT else source


def per_fold(source: str, P: SimpleNamespace) -> bool:
    """Whether `source`'s network is pretrained inside each outer fold (one checkpoint per fold): the `in_cohort`
    source always, the `domain` source when `domain_mode` is in-cohort."""
    return source == IN_COHORT or (source == "domain" and domain_mode(P) == "in_cohort")


def domain_mode(P: SimpleNamespace) -> str:
    """How the `domain` source is pretrained: "external" (once, on a cohort sharing no patient with the study's:
    `domain_data_dir`, else a synthetic cohort of another seed) or "in_cohort" (inside each outer fold, on that
    fold's training patients only). A `domain_data_dir` always means external; real data (`data_dir`) without one
    is always in-cohort; otherwise `domain_source` decides."""
    if P.domain_data_dir:
        return "external"
    return "in_cohort" if P.data_dir else getattr(P, "domain_source", "external")


def device(P: SimpleNamespace) -> str:
    """The device a notebook trains and extracts features on: its `device` parameter (models.resolve_device)."""
    return str(resolve_device(getattr(P, "device", "auto")))


def domain_config(P: SimpleNamespace):
    """The training recipe of the domain pretraining, either task (ImageNet-style input of the pretrained side)."""
    return TrainConfig(input_size=pretrained_input(P), epochs=P.domain_epochs, lr=P.domain_lr,
                       patches_per_epoch=P.domain_patches_per_epoch, normalize="imagenet", bf16=P.bf16,
                       channels_last=P.channels_last, seed=P.seed, device=device(P))


IN_COHORT_SOURCE = "the study cohort: one outer fold's training patients"


def fold_domain_dir(net: str, P: SimpleNamespace, patch_set, fold: dict, progress: bool = False) -> Path:
    """The in-cohort checkpoint folder of `net` for one outer fold (pretrained on first use, cached per fold).

    Trained on the auxiliary task (lesion vs normal-tissue patches of the boxes / masks; never the labels) of the
    fold's training patients only, so no test patient of the fold reaches it; its torch RNG is seeded from the
    fold (and the caller's left untouched), so the checkpoint does not depend on what ran before.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(fold_seed(P.seed, fold))
        return domain_checkpoint(net, patch_set, min(P.patch_sizes), domain_config(P), P.cache_dir, progress,
                                 IN_COHORT_SOURCE, patients=fold["train_patients"])


def fold_domain_dirs(net: str, P: SimpleNamespace, patch_set, folds, progress: bool = False) -> dict:
    """{(repeat, fold): in-cohort checkpoint folder of `net`} for every fold (`fold_domain_dir`)."""
    return {(f["repeat"], f["fold"]): fold_domain_dir(net, P, patch_set, f, progress) for f in folds}


_DOMAIN_DIRS: dict[str, Path] = {}  # resolved checkpoint folders of this process, so folds do not re-resolve them


def domain_dir(net: str, P: SimpleNamespace, progress: bool = True) -> Path:
    """The cached in-domain checkpoint folder of `net` (pretrained on first use).

    Resolving it fingerprints the source data; every fold of every run asks for it, so the answer is kept for the
    process (and checked to be still complete).
    """
    if domain_mode(P) == "in_cohort":
        raise ValueError(f"the in-domain {net} is pretrained per fold here (in-cohort): ask fold_domain_dir for a "
                         "fold's checkpoint")
    recipe = cache.key_of(net=net, params={k: v for k, v in vars(P).items() if k != "run_dir"})
    known = _DOMAIN_DIRS.get(recipe)
    if known is not None and cache.is_complete(known):
        return known
    _DOMAIN_DIRS[recipe] = _resolve_domain_dir(net, P, progress)
    return _DOMAIN_DIRS[recipe]


def _resolve_domain_dir(net: str, P: SimpleNamespace, progress: bool) -> Path:
    return domain_checkpoint(net, domain_source_set(P, progress), min(P.patch_sizes), domain_config(P), P.cache_dir,
                             progress, _source_name(P), task=P.domain_task)


def _source_name(P: SimpleNamespace) -> str:
    """The external source cohort in words, as the checkpoint's provenance records it."""
    if P.domain_data_dir:
        return ("Cheng et al.'s Figshare brain-tumour cohort (domain_data_dir)" if is_figshare_layout(P.domain_data_dir)
                else "a user folder of other patients")
    layout = ", Figshare layout" if external_format(P) == "figshare" else ""
    return f"synthetic source cohort ({P.domain_patients} patients, seed {P.synth_seed + 1000}{layout})"


def pretrained_model(net: str, source: str, P: SimpleNamespace, num_classes: int | None = None, progress=True,
                     fold: dict | None = None, patch_set=None):
    """`net` with `source` weights (ImageNet from torchvision's cache, the in-domain checkpoint, or random).

    In-cohort (`domain_mode`), the in-domain checkpoint is that of `fold`, pretrained on `patch_set`'s patients.
    """
    ddir = None
    if per_fold(source, P) and (fold is None or patch_set is None):
        raise ValueError(f"the in-domain {net} is pretrained per fold here (in-cohort): give the fold and the patch "
                         "set whose training patients it is pretrained on")
    if per_fold(source, P):
        ddir = fold_domain_dir(net, P, patch_set, fold, progress)
    elif source == "domain":
        ddir = domain_dir(net, P, progress)
    contrast = None
    if ddir is not None and weights.domain_input_channels(ddir, net) == 1:  # its first layer goes to this channel
        contrast = study_contrast_channel(P, patch_set, progress)
    return weights.load_pretrained(net, weights_source(source), allow_download=P.allow_download, domain_dir=ddir,
                                   num_classes=num_classes, seed=P.seed, contrast_channel=contrast)


def study_contrast_channel(P: SimpleNamespace, study_set=None, progress: bool = False) -> int:
    """The post-contrast channel of the study's patches (`descriptor.contrast_channel`), where a network pretrained
    on a one-channel cohort puts its first layer."""
    return contrast_channel((study_set if study_set is not None else patch_set(P, progress)).descriptor)


def fold_pretrained_model(net: str, P: SimpleNamespace, patch_set, fold: dict, num_classes: int | None = None):
    """(`net` with the in-cohort weights of `fold`, the fold's `pretraining_record`): a fold's model and what its
    results record says it was pretrained on."""
    ddir = fold_domain_dir(net, P, patch_set, fold)  # resolved once: the model and its record read the same folder
    model = weights.load_pretrained(net, "domain", allow_download=P.allow_download, domain_dir=ddir,
                                    num_classes=num_classes, seed=P.seed)
    return model, weights.pretraining_record(ddir, net)


def weights_id(net: str, source: str, P: SimpleNamespace) -> str:
    """What a pretrained model is made of (for result caches): network, source and the weights' identity.

    In-cohort, the identity is the pretraining recipe (each fold's checkpoint follows from it and the fold, which
    the result caches key on already), so a cached result is read back without pretraining again.
    """
    if per_fold(source, P):  # the in_cohort source and an in-cohort domain: the same networks, one cache entry
        return f"{net}/domain/in-cohort-{cache.key_of(**recipe(net, min(P.patch_sizes), domain_config(P)))}"
    ddir = domain_dir(net, P, progress=False) if source == "domain" else None
    return f"{net}/{source}/{weights_tag(net, source, ddir)}"


def domain_meta_table(domain_dirs: dict):
    """Network x what its in-domain checkpoint was trained on (the source cohort's patient list left out); for the
    in-cohort networks (`domain_dirs` values {(repeat, fold): folder}) one row per (network, repeat, fold), with the
    number of training patients it was pretrained on instead of their lists."""

    def fold_row(d, net):
        meta = domain_meta(d, net)["meta"]
        return {**{k: v for k, v in meta.items() if k not in ("patients", "held_out_patients")},
                "pretraining patients": len(meta["patients"])}
    table = {}
    for net, d in domain_dirs.items():
        if isinstance(d, dict):
            table.update({(net, r, f): fold_row(fd, net) for (r, f), fd in d.items()})
        else:
            table[net] = {k: v for k, v in domain_meta(d, net)["meta"].items() if k != "patients"}
    return pd.DataFrame(table).T
