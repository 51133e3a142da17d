"""Notebook 08's step: every deep and conventional radiomic feature against gene programmes and genes (Liu & Hu
2023; OLS on patient means, their mixed model as a check on random samples of pairs, the counts against
permutations of the gene table).

    step = GeneAssociations(P).fit()   # context, gene table, features of 07 (cached), every pair
    step.counts(); step.save_figures(); step.write()
"""
from __future__ import annotations

import pandas as pd

from . import radiogenomics as rg


class GeneAssociations(rg.GeneStep):
    """Notebook 08. After `fit()`: `context_`, `skipped_`, `features_`, `genes_`, `lacking_`, `gene_source_`,
    `study_` (`rg.AssociationStudy`: the OLS tables per feature kind, the mixed-model check, the permutation null)."""

    stem = "08_associations"

    def _compute(self) -> None:
        self.study_ = rg.association_study(self.features_, self.genes_, self.P)

    def counts(self) -> pd.DataFrame | str:
        """Features associated with each programme (and with any gene) at the FDR, per feature kind."""
        return self._show(lambda: self.study_.counts())

    def top(self, kind: str) -> pd.DataFrame | str:
        """The strongest associations of `kind` ("DRF" or "CRF") with a programme."""
        return self._show(lambda: self.study_.top(kind))

    def mixed_check(self) -> pd.DataFrame | str:
        """The sampled pairs refitted as mixed models over the slices, beside their OLS."""
        return self._show(lambda: self.study_.mixed_check)

    def mixed_agreement(self) -> pd.DataFrame | str:
        """Per feature kind and sample: how often the mixed model agrees with the OLS."""
        return self._show(lambda: self.study_.mixed_agreement())

    def null(self) -> pd.DataFrame | str:
        """The observed counts beside the permutation null's, one column per feature kind."""
        return self._show(lambda: self.study_.null_counts.astype(object).T)  # (counts stay integers)

    def _results(self):
        return [], rg.association_entries(self.study_, self.genes_, self.lacking_, self.gene_source_)
