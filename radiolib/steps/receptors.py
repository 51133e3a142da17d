"""Notebook 07's step: T, N, ER, PR and HER2 from deep and conventional radiomic features (Liu & Hu 2023).

    step = ReceptorPrediction(P).fit()   # context, features (cached), labels, both protocols
    step.table(); step.save_figures(); step.write()
"""
from __future__ import annotations

import pandas as pd
import torch

from ..data import targets
from ..learn import dae
from ..views import plots
from . import radiogenomics as rg


class ReceptorPrediction(rg.RadiogenomicStep):
    """Notebook 07. After `fit()`: `context_`, `skipped_`, `features_` (DRFs and CRFs), `labels_` and `reasons_`
    (the clinical targets and why a patient has none), `study_` (`rg.ReceptorStudy`: our protocol's rows, the paper's,
    the DRF-CRF comparisons, the penalty paths and the null)."""

    stem = "07_receptors"

    def _compute(self) -> None:
        self.labels_, self.reasons_ = self._labels(self.P.clinical_targets)
        self.study_ = rg.receptor_study(self.features_, self.labels_, self.P, self.progress)

    def targets(self):
        """Patients and positives of each target."""
        return self._show(lambda: targets.summary(self.labels_))

    def dae_figure(self, n: int = 6):
        """Inputs, noisy inputs and reconstructions of the first `n` input slices, the first and last training loss in
        the title; saved as figures/07_receptors_dae.png."""
        return self._show(lambda: self._dae_figure(n))

    def _dae_figure(self, n: int) -> None:
        images = rg.images_of(self.P, self.context_.patch_set_, n)
        noisy = dae.add_noise(torch.from_numpy(images), self.features_.config.noise,
                              torch.Generator().manual_seed(self.P.seed)).numpy()
        recon = dae.reconstruct(self.features_.model(), images)
        losses, baseline = self.features_.losses, self.features_.mean_image_mse
        title = (f"DAE ({self.features_.config.loss} loss): training loss {losses[0]:.4f} (epoch 1) to "
                 f"{losses[-1]:.4f} (epoch {len(losses)})")
        if baseline is not None and self.features_.config.loss == "mse":
            title += f"; the mean input as every reconstruction: {baseline:.4f}"
        fig = plots.dae_reconstructions(images, noisy, recon, n, title)
        plots.save(fig, self.context_.paths_.figures, f"{self.stem}_dae")  # shown by the inline backend

    def table(self) -> pd.DataFrame | str:
        """Our protocol's test AUC with its CI beside the paper's protocol, per target and feature kind."""
        return self._show(lambda: self.study_.table())

    def comparisons(self) -> pd.DataFrame | str:
        """DRF against CRF per target: paired bootstrap of the fold-mean AUC, Holm over the targets."""
        return self._show(lambda: self.study_.comparisons)

    def null(self) -> pd.DataFrame | str:
        """Labels permuted among patients: both protocols' AUCs."""
        return self._show(lambda: self.study_.null)

    def structure(self) -> str:
        """The rows' shape without their AUCs (what nbval compares)."""
        return self._show(lambda: self.study_.structure())

    def _results(self):
        return self.study_.rows, rg.receptor_entries(self.study_, self.features_, self.reasons_)
