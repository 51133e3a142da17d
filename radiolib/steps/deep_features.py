"""Notebook 04 as a step: the feature layer of frozen pretrained networks, extracted once per network, source and
patch size, and an SVM per kernel under the patient-level cross-validation (Table 5).

    step = DeepFeaturesSVM(P).fit()
    step.feature_table(); step.table(); step.save_figures("04_roc"); step.write()
"""
from __future__ import annotations

import pandas as pd

from . import approaches


class DeepFeaturesSVM(approaches.ApproachStep):
    """04: features of every runnable (network, source) pair at every patch size (`approaches.deep_features`),
    then an SVM per matrix and kernel of `P.kernels` (`approaches.features_svm`).

    After `fit()`: `context_`, `features_` (an `approaches.DeepFeatures`) and `result_` (an
    `approaches.ApproachResult`).
    """

    stem = "04_deep_features_svm"

    def _fit(self) -> None:
        self.features_ = approaches.deep_features(self.context_)
        self.result_ = approaches.features_svm(self.context_, self.features_)

    def feature_table(self) -> pd.DataFrame:
        """One line per feature matrix: network, source, patch size, layer, patches, feature length."""
        self._check_fitted()
        return self.features_.table()
