"""Notebook 03 as a step: pretrained networks fine-tuned under the patient-level cross-validation, one row per
network and pretraining source, then the last layer's learning-rate sweep (Table 4, Figure 2 row 2).

    step = TransferLearning(P).fit()
    step.table(); step.pairwise(); step.save_figures("03_learning_curves"); step.write()
"""
from __future__ import annotations

import pandas as pd

from ..run import inputs
from ..views import report, widgets
from . import approaches


class TransferLearning(approaches.ApproachStep):
    """03: every network of `P.networks` fine-tuned from each runnable source of `P.sources`, then the sweep of
    `P.fc_lr_sweep` (`approaches.transfer`).

    After `fit()`: `context_`, `domain_` (the in-domain checkpoint folders: network -> folder, in-cohort
    network -> {(repeat, fold): folder}), `in_cohort_` (those of the `in_cohort` source, when it runs) and
    `result_` (an `approaches.TransferResult`).
    """

    stem = "03_transfer_learning"

    def _fit(self) -> None:
        self.domain_ = self.context_.domain_dirs(self.P.networks)  # pretrained once, before the fine-tuning
        self.in_cohort_ = (self.context_.domain_dirs(self.P.networks, inputs.IN_COHORT)
                           if inputs.IN_COHORT in self.P.sources else {})
        self.result_ = approaches.transfer(self.context_)

    def domain_table(self) -> pd.DataFrame:
        """What each in-domain checkpoint was trained on, and its held-out accuracy (with the `in_cohort` source's
        networks beside them, one row per fold, when that source runs)."""
        self._check_fitted()
        table = inputs.domain_meta_table(self.domain_)
        if not self.in_cohort_:
            return table
        def by_fold(t: pd.DataFrame) -> pd.DataFrame:  # one network for every fold: "all" folds
            return t if t.index.nlevels == 3 else t.set_axis(pd.MultiIndex.from_tuples(
                [(net, "all", "all") for net in t.index]))
        return pd.concat({"domain": by_fold(table), inputs.IN_COHORT: by_fold(inputs.domain_meta_table(
            self.in_cohort_))}, names=["source", "network", "repeat", "fold"])

    def pairwise(self) -> pd.DataFrame:
        """Every pair of run rows compared on the same folds and patients (paired bootstrap, Holm-adjusted p);
        computed once."""
        self._check_fitted()
        if not hasattr(self, "_pairs"):
            self._pairs = self.result_.pairwise()
        return self._pairs

    def pairwise_structure(self) -> str:
        """What the comparison table must be on every machine (`report.comparison_structure`)."""
        return report.comparison_structure(self.pairwise())

    def sweep_summary(self) -> str:
        """The network and the source the sweep ran on."""
        self._check_fitted()
        return f"sweep on {self.P.sweep_network} from {self.result_.sweep_source}"

    def show_curves(self) -> None:
        """The curve browser (JupyterLab): pick a network and source, or a swept rate, and a fold."""
        self._check_fitted()
        widgets.curve_browser(self.result_.browsable_curves())
