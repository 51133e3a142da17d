"""One notebook's step, called the same way from a notebook, a batch script, a test or a cluster job:

    step = TrainingFromScratch(P).fit()     # P: the bound parameters (`radiolib.run.params.bind`)
    step.table()                            # its tables, figures and views: methods of the step
    step.save_figures()                     # into the run's figures/
    step.write()                            # results/<stem>.json, the document written

scikit-learn style: the constructor only stores its configuration (the parameters, whether to show progress, an
optional already built patch set); `fit()` does the work and returns the step; what it computed sits in attributes
ending in `_` (`context_` the run's patch set, folds, folders and deviations; then each step's own). A method called
before `fit()` says so.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import ClassVar

from ..run.context import RunContext


class NotFittedError(RuntimeError):
    """A step's result was asked for before `fit()`."""


class Step:
    """Base of the notebooks' steps. Subclasses set `stem` (the notebook, e.g. "02_training_from_scratch") and
    implement `_fit()` (the work, on `self.context_`) and `write()`."""

    stem: ClassVar[str] = ""

    def __init__(self, P: SimpleNamespace, progress: bool = True, patch_set=None):
        self.P = P
        self.progress = progress
        self.patch_set = patch_set

    def fit(self) -> "Step":
        """Load the run's context (patch set, folds, folders, deviations, notebook 01's reference rows), then do the
        step's work; return the step."""
        self.context_ = RunContext(self.P, self.stem, self.progress, self.patch_set).load()
        self._fit()
        return self

    def _fit(self) -> None:
        raise NotImplementedError

    def write(self) -> dict:
        """Write results/<stem>.json; return the document."""
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, "context_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit() first")

    def __repr__(self) -> str:
        fitted = "fitted" if hasattr(self, "context_") else "not fitted"
        return f"{type(self).__name__}({self.stem}, {fitted})"
