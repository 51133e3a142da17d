"""Steps: what each notebook computes, called the same way from a notebook, a batch script, a test or a cluster job
(`base.Step`: configured from the bound parameters, `fit()` does the work, results in attributes ending in `_`).

`STEPS` maps each notebook to its step; `step_for(stem)` gives the class, with the valid stems on a misspelling.
"""
from __future__ import annotations

from .associations import GeneAssociations
from .base import NotFittedError, Step
from .deep_features import DeepFeaturesSVM
from .gene_masking import GeneMasking
from .layerwise import LayerwiseAnalysis
from .preprocessing import Preprocessing
from .receptors import ReceptorPrediction
from .report import Report
from .scratch import TrainingFromScratch
from .transfer import TransferLearning

STEPS: dict[str, type[Step]] = {
    "01_preprocessing": Preprocessing,
    "02_training_from_scratch": TrainingFromScratch,
    "03_transfer_learning": TransferLearning,
    "04_deep_features_svm": DeepFeaturesSVM,
    "05_layerwise_analysis": LayerwiseAnalysis,
    "06_report": Report,
    "07_receptors": ReceptorPrediction,
    "08_associations": GeneAssociations,
    "09_gene_masking": GeneMasking,
}

__all__ = ["STEPS", "NotFittedError", "Step", "step_for", *(cls.__name__ for cls in STEPS.values())]


def step_for(stem: str) -> type[Step]:
    """The step class of notebook `stem` ("02_training_from_scratch")."""
    if stem not in STEPS:
        raise KeyError(f"no step for notebook {stem!r}; the notebooks: {', '.join(STEPS)}")
    return STEPS[stem]
