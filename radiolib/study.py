"""The study as one run: resolve the data (a user's folder or the cached synthetic cohort), then execute the
notebooks in order with papermill into a run folder (executed notebooks, results/*.json, figures/*.png).
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from types import SimpleNamespace

from . import cache, params

NOTEBOOK_ORDER = tuple(params.NOTEBOOKS)
log = logging.getLogger("radiolib.study")


def repo_notebooks() -> Path:
    """The notebooks folder of a source checkout (radiolib is installed editable by `make setup`)."""
    return Path(__file__).resolve().parents[1] / "notebooks"


def synthetic_cohort(P: SimpleNamespace, progress: bool = True) -> Path:
    """The synthetic cohort of these parameters, generated once under the cache and reused."""
    if P.synth_format == "lgg":
        from .synth_lgg import VERSION, synthesize_lgg
        key = cache.key_of(patients=P.synth_patients, seed=P.synth_seed, effect=P.synth_effect,
                           faults=bool(P.synth_faults), version=VERSION)
        out = cache.cache_root(P.cache_dir) / "cohorts" / f"synthetic-lgg-{key}"
        return synthesize_lgg(out, patients=P.synth_patients, seed=P.synth_seed, effect=P.synth_effect,
                              faults=P.synth_faults, progress=progress)
    if P.synth_format != "duke":
        raise ValueError(f"synth_format {P.synth_format!r}: expected 'duke' or 'lgg'")
    from .synth import FAULTS, synthesize
    from .synth import VERSION as SYNTH_VERSION
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
    from .dataset import build_patch_set
    return build_patch_set(data_folder(P, progress), P.patch_sizes, P.n_augment, P.seed, P.cache_dir,
                           n_jobs=max(1, P.n_jobs), progress=progress, target=P.target)


def run_paths(P: SimpleNamespace) -> SimpleNamespace:
    """results/ and figures/ of the run folder, created."""
    root = Path(P.run_dir)
    out = SimpleNamespace(root=root, results=root / "results", figures=root / "figures")
    out.results.mkdir(parents=True, exist_ok=True)
    out.figures.mkdir(parents=True, exist_ok=True)
    return out


def notebook_parameters(stem: str, profile: str, params_dir: Path, data: str | None, out: Path,
                        overrides: dict) -> dict:
    """Defaults <- params/<profile>/<stem>.yaml <- -p overrides; plus data_dir and run_dir of this run."""
    values = params.load_profile(profile, stem, params_dir)
    values.update({k: v for k, v in overrides.items() if k in params.defaults(stem)})
    values["profile"] = profile
    values["run_dir"] = str(out.resolve())
    if data:
        values["data_dir"] = str(Path(data).expanduser().resolve())
    return params.validate(stem, values)


def run_study(profile: str = "demo", data: str | None = None, out: str | None = None, overrides: dict | None = None,
              notebooks: list[str] | None = None, notebooks_dir: Path | None = None,
              params_dir: Path | None = None) -> Path:
    """Execute the notebooks in order into the run folder; return the run folder."""
    import papermill as pm

    overrides = overrides or {}
    nb_dir = Path(notebooks_dir or repo_notebooks())
    params_dir = Path(params_dir or nb_dir.parent / "params")
    if not nb_dir.is_dir():
        raise FileNotFoundError("notebooks folder not found: run from a source checkout (make setup)")
    stems = notebooks or list(NOTEBOOK_ORDER)
    unknown = [k for k in overrides if not any(k in params.defaults(s) for s in stems)]
    if unknown:
        valid = sorted({k for s in stems for k in params.defaults(s)})
        raise ValueError(f"unknown parameter {', '.join(map(repr, unknown))}. Valid keys: {', '.join(valid)}")
    run_dir = Path(out or Path("runs") / profile)
    run_dir.mkdir(parents=True, exist_ok=True)
    plan = {s: notebook_parameters(s, profile, params_dir, data, run_dir, overrides) for s in stems}

    first = SimpleNamespace(**plan[stems[0]])
    if not first.data_dir:
        print(f"Synthetic cohort: {first.synth_patients} patients (seed {first.synth_seed}, effect {first.synth_effect})")
        data_folder(first)
    timings: dict[str, float] = {}
    for stem in stems:
        print(f"Running {stem} ({profile})")
        start = time.perf_counter()
        pm.execute_notebook(str(nb_dir / f"{stem}.ipynb"), str(run_dir / f"{stem}.ipynb"), parameters=plan[stem],
                            cwd=str(nb_dir), progress_bar=True, kernel_name="python3")
        timings[stem] = round(time.perf_counter() - start, 1)
        cache.atomic_write_text(run_dir / "run.json", json.dumps(  # after each notebook: the report reads it
            {"profile": profile, "notebooks": stems, "seconds": timings, "overrides": overrides,
             "data": "user folder" if data else "synthetic"}, indent=1))
    print(f"Done in {sum(timings.values()):.0f} s: executed notebooks, results/ and figures/ are in {run_dir}")
    if (run_dir / "report.html").is_file():
        print(f"Report: {run_dir / 'report.html'}")
    return run_dir


# ---------------------------------------------------------------------------------------------------------------
# What the approach notebooks share: folds, pretraining sources


def folds(ps, P: SimpleNamespace) -> list[dict]:
    """The paper's patient-level stratified folds (a function of the seed): every notebook uses the same ones."""
    from .evaluation import patient_folds
    return patient_folds(ps.table.patient.tolist(), ps.table.label.tolist(), P.n_folds, P.repeats, P.seed)


def portable(text: str) -> str:
    """A message without this machine's home folder (results files and reports show no machine path)."""
    return str(text).replace(str(Path.home()), "~")


def pretrained_input(P: SimpleNamespace) -> int:
    """Input side of GoogLeNet / VGG16 (224 in the paper) after the profile's CPU reduction."""
    return max(32, int(round(224 * P.pretrained_input_scale)))


def domain_source_set(P: SimpleNamespace, progress: bool = True):
    """The pretraining data: `domain_data_dir` (other patients), else a synthetic cohort of another seed.

    A `domain_data_dir` sharing any patient with the study cohort (`data_dir`) is refused (ValueError naming them).
    """
    src = SimpleNamespace(**{**vars(P), "data_dir": P.domain_data_dir, "target": None,
                             "synth_patients": P.domain_patients,
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
    from . import weights
    status = {}
    for source in P.sources:
        if source == "imagenet":
            reason = weights.available_sources(net)["imagenet"]
            status[source] = None if (reason is None or P.allow_download) else portable(reason)
        elif source == "domain":
            status[source] = ("in-domain pretraining needs other patients than the study's: set domain_data_dir"
                              if P.data_dir and not P.domain_data_dir else None)
        elif source == "random":
            status[source] = None
        else:
            raise ValueError(f"unknown pretraining source {source!r}; expected imagenet, domain or random")
    return status


_DOMAIN_DIRS: dict[str, Path] = {}  # resolved checkpoint folders of this process, so folds do not re-resolve them


def domain_dir(net: str, P: SimpleNamespace, progress: bool = True) -> Path:
    """The cached in-domain checkpoint folder of `net` (pretrained on first use).

    Resolving it fingerprints the source data; every fold of every run asks for it, so the answer is kept for the
    process (and checked to be still complete).
    """
    recipe = cache.key_of(net=net, params={k: v for k, v in vars(P).items() if k != "run_dir"})
    known = _DOMAIN_DIRS.get(recipe)
    if known is not None and cache.is_complete(known):
        return known
    _DOMAIN_DIRS[recipe] = _resolve_domain_dir(net, P, progress)
    return _DOMAIN_DIRS[recipe]


def _resolve_domain_dir(net: str, P: SimpleNamespace, progress: bool) -> Path:
    from .pretraining import domain_checkpoint
    from .training import TrainConfig
    cfg = TrainConfig(input_size=pretrained_input(P), epochs=P.domain_epochs,
                      patches_per_epoch=P.domain_patches_per_epoch, normalize="imagenet", bf16=P.bf16,
                      channels_last=P.channels_last, seed=P.seed)
    name = ("a user folder of other patients" if P.domain_data_dir else
            f"synthetic source cohort ({P.domain_patients} patients, seed {P.synth_seed + 1000})")
    return domain_checkpoint(net, domain_source_set(P, progress), min(P.patch_sizes), cfg, P.cache_dir, progress,
                             name)


def pretrained_model(net: str, source: str, P: SimpleNamespace, num_classes: int | None = None, progress=True):
    """`net` with `source` weights (ImageNet from torchvision's cache, the in-domain checkpoint, or random)."""
    from . import weights
    ddir = domain_dir(net, P, progress) if source == "domain" else None
    return weights.load_pretrained(net, source, allow_download=P.allow_download, domain_dir=ddir,
                                   num_classes=num_classes, seed=P.seed)


def weights_id(net: str, source: str, P: SimpleNamespace) -> str:
    """What a pretrained model is made of (for result caches): network, source and the weights' identity."""
    from .features import _weights_tag
    ddir = domain_dir(net, P, progress=False) if source == "domain" else None
    return f"{net}/{source}/{_weights_tag(net, source, ddir)}"
