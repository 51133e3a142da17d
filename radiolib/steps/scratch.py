"""Notebook 02 as a step: the paper's four networks trained from random weights under the patient-level
cross-validation, then the learning-rate sweep (Table 3, Figure 2 row 1).

    step = TrainingFromScratch(P).fit()
    step.table(); step.save_figures("02_learning_curves"); step.write()
"""
from __future__ import annotations

import pandas as pd

from ..learn import models, training
from ..views import widgets
from . import approaches


class TrainingFromScratch(approaches.ApproachStep):
    """02: every network of `P.networks` from random weights, then `P.sweep_network` at each rate of `P.lr_sweep`
    (`approaches.scratch`).

    After `fit()`: `context_` (patch set, folds, folders, deviations, ceiling, baseline) and `result_` (an
    `approaches.ApproachResult`: rows, sweep rows, cross-validations, learning curves, figures).
    """

    stem = "02_training_from_scratch"

    def _fit(self) -> None:
        self.result_ = approaches.scratch(self.context_)

    def data_summary(self) -> str:
        """Patients, how many are label 1, and the patch size the networks train on."""
        self._check_fitted()
        ps = self.context_.patch_set_
        return (f"{len(ps.table)} patients ({ps.table.label.sum()} {ps.descriptor.positive}), "
                f"training patches of size {self.P.train_patch_size}")

    def architecture_table(self) -> pd.DataFrame:
        """The networks of this run (Table 2): parameters and multiply-accumulates beside the paper's, and the input
        side used here."""
        arch = models.architecture_table()
        arch["input here"] = [training.scaled_input(n, self.P.input_scale) for n in arch.index]
        return arch.loc[self.P.networks]

    def show_curves(self) -> None:
        """The curve browser (JupyterLab): pick a network or learning rate and a fold."""
        self._check_fitted()
        widgets.curve_browser(self.result_.browsable_curves())
