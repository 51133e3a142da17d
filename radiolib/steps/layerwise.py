"""Notebook 05 as a step: every GoogLeNet layer's features (one forward pass per batch) and an SVM per layer and
pretraining source at the pre-specified setting (Table 6, Figure 3), with the feature maps.

    step = LayerwiseAnalysis(P).fit()
    step.lengths(); step.table(); step.save_figures("05_layerwise"); step.write()
"""
from __future__ import annotations

import pandas as pd

from ..learn import features
from . import approaches


class LayerwiseAnalysis(approaches.ApproachStep):
    """05: the SVM setting fixed before any test fold is seen (`features.layerwise_setting`), every layer's
    features per runnable source (`approaches.layer_features`), one SVM each (`approaches.layerwise`).

    After `fit()`: `context_`, `setting_` ({patch_size, kernel, chosen_by}), `features_` (an
    `approaches.DeepFeatures`: source -> {layer: matrix}) and `result_` (an `approaches.LayerwiseResult`).
    """

    stem = "05_layerwise_analysis"

    def _fit(self) -> None:
        P = self.P
        patch_size, kernel, why = features.layerwise_setting(P.layer_patch_size, P.kernel, P.patch_sizes)
        self.setting_ = {"patch_size": patch_size, "kernel": kernel, "chosen_by": why}
        self.features_ = approaches.layer_features(self.context_)
        self.result_ = approaches.layerwise(self.context_, self.features_)

    def setting_summary(self) -> str:
        """The SVM setting and why it is this one."""
        self._check_fitted()
        s = self.setting_
        return f"patch {s['patch_size']}, {s['kernel']} kernel ({s['chosen_by']})"

    def source_table(self) -> pd.DataFrame:
        """GoogLeNet's pretraining sources: `available`, or why that source's rows are skipped."""
        self._check_fitted()
        return pd.Series(self.context_.source_status("googlenet")).fillna("available").to_frame("googlenet")

    def lengths(self) -> pd.DataFrame:
        """Each layer's feature length per source beside Table 6's (ValueError if one differs)."""
        self._check_fitted()
        return self.features_.lengths()

    def show_viewer(self) -> None:
        """The feature-map viewer (JupyterLab): pick a layer and the patches."""
        self._check_fitted()
        self.result_.show_viewer()

    def write(self) -> dict:
        """results/05_layerwise_analysis.json: one row per layer and source, and the SVM setting; the document."""
        self._check_fitted()
        return self.context_.write_results(self.result_.rows, setting=self.result_.setting)
