"""One notebook run as an object: what every approach starts from, built from the bound parameters `P`.

`RunContext(P, stem)` holds the configuration; `load()` resolves the run's data: the patch set, the patient-level
folds (checked for leakage), the results/ and figures/ folders, the deviations from the paper's protocol and the
machine facts, in attributes ending in `_` (scikit-learn style). The approaches (`radiolib.steps.approaches`) take it.
"""
from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import torch

from ..learn import handcrafted
from ..stats import ceiling, evaluation
from . import inputs, params, protocol, results

RUN_DIR_ENV = "RADIOLIB_RUN_DIR"


def run_paths(P: SimpleNamespace) -> SimpleNamespace:
    """results/ and figures/ of the run folder, created.

    $RADIOLIB_RUN_DIR, when set, replaces the interactive default run_dir (`../runs/interactive`, beside the
    notebooks) of a notebook run outside `radiolib study`: the test session sets it, so nbval writes no run folder
    in the work tree. A run_dir set by the runner or by hand is kept.
    """
    root = Path(P.run_dir)
    if os.environ.get(RUN_DIR_ENV) and P.run_dir == params.COMMON["run_dir"]:
        root = Path(os.environ[RUN_DIR_ENV])
    out = SimpleNamespace(root=root, results=root / "results", figures=root / "figures")
    out.results.mkdir(parents=True, exist_ok=True)
    out.figures.mkdir(parents=True, exist_ok=True)
    return out


class RunContext:
    """The run of notebook `stem` with parameters `P` (`params.bind`): its data, folds, folders and facts.

    Parameters: `P`, the bound and validated parameters; `stem`, the notebook (it names the results file and
    selects the deviations); `progress`, whether building the patch set shows progress bars; `patch_set`, an
    already built patch set to use instead of the cached one of `P` (tests).

    After `load()`: `patch_set_`, `folds_`, `paths_` (root, results, figures), `deviations_` (sentences),
    `ceiling_` (the ground-truth ceiling notebook 01 recorded in this run folder, or why there is none: see
    radiolib.stats.ceiling), `baseline_` (the handcrafted-features row notebook 01 recorded, or None:
    radiolib.learn.handcrafted),
    `device_` and `threads_` (what this machine trains on; they vary by machine, so notebooks do
    not print them).
    """

    def __init__(self, P: SimpleNamespace, stem: str, progress: bool = True, patch_set=None):
        self.P = P
        self.stem = stem
        self.progress = progress
        self.patch_set = patch_set

    def load(self) -> "RunContext":
        """Resolve the patch set (built on first use), the folds, the run folders, the deviations and the ceiling;
        return self."""
        self.paths_ = run_paths(self.P)
        self.patch_set_ = self.patch_set if self.patch_set is not None else inputs.patch_set(self.P, self.progress)
        # a notebook without a cross-validation (08) has no folds
        self.folds_ = inputs.folds(self.patch_set_, self.P) if hasattr(self.P, "n_folds") else []
        if self.folds_:
            evaluation.check_no_leakage(self.folds_)
        self.deviations_ = protocol.deviations(self.P, self.stem, self.patch_set_)
        # notebook 01's results, read once: the ceiling and the handcrafted baseline the tables stand beside
        preprocessing, why = results.read_run_results(self.paths_.results, ceiling.SOURCE_STEM, self.P,
                                                      self.patch_set_)
        self.ceiling_ = ceiling.of_preprocessing(preprocessing, why)
        self.baseline_ = handcrafted.of_doc(preprocessing) if preprocessing is not None else None
        self.device_, self.threads_ = inputs.device(self.P), torch.get_num_threads()
        return self

    @property
    def results_path(self) -> Path:
        """results/<stem>.json of this run."""
        return self.paths_.results / f"{self.stem}.json"

    def describe(self) -> str:
        """`N patients, K folds. Deviations from the paper's protocol:` and the deviations, one per line."""
        folds = f", {len(self.folds_)} folds" if self.folds_ else ""
        head = f"{len(self.patch_set_.table)} patients{folds}. "
        return head + "\n- ".join(["Deviations from the paper's protocol:", *self.deviations_])

    def source_status(self, net: str) -> dict[str, str | None]:
        """Each pretraining source of `P.sources` for `net`: None when it can run here, else why its rows skip."""
        return inputs.source_status(net, self.P)

    def source_table(self, networks) -> pd.DataFrame:
        """Networks x sources: `available`, or the reason the rows of that source are skipped."""
        return pd.DataFrame({net: self.source_status(net) for net in networks}).T.fillna("available")

    def domain_dirs(self, networks, source: str = "domain") -> dict:
        """The in-domain checkpoint folder of each network whose `source` (domain or in_cohort) can run (pretrained
        once); in-cohort (`inputs.per_fold`), its {(repeat, fold): folder} of every outer fold (each on its training
        patients)."""
        runnable = [net for net in networks if self.source_status(net).get(source, "") is None]
        if inputs.per_fold(source, self.P):
            return {net: inputs.fold_domain_dirs(net, self.P, self.patch_set_, self.folds_, self.progress)
                    for net in runnable}
        return {net: inputs.domain_dir(net, self.P, self.progress) for net in runnable}

    @property
    def pretrained_input(self) -> int:
        """Input side of the pretrained networks (224 in the paper, scaled by `pretrained_input_scale`)."""
        return inputs.pretrained_input(self.P)

    def write_results(self, rows: list[dict], **top) -> dict:
        """Write results/<stem>.json (rows, parameters, deviations, provenance), check it for leakage; the doc."""
        doc = results.write_summary(self.results_path, self.P, deviations=self.deviations_, rows=rows,
                                    patch_set=self.patch_set_, **top)
        evaluation.check_no_leakage(doc)
        return doc
