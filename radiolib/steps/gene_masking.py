"""Notebook 09's step: from genes to imaging phenotypes, and gene masking (Smedley et al. 2021).

    step = GeneMasking(P).fit()   # context, gene table, phenotypes, models per fold, masking
    step.table(); step.summary(); step.save_figures(); step.write()
"""
from __future__ import annotations

import pandas as pd

from ..run import inputs
from . import radiogenomics as rg


class GeneMasking(rg.GeneStep):
    """Notebook 09. After `fit()`: `context_`, `skipped_`, `features_`, `genes_`, `lacking_`, `gene_source_`,
    `phenotypes_` (patients x binary phenotypes), `study_` (`rg.MaskingStudy`: the models' AUCs, the masking table,
    its summary and each programme's test)."""

    stem = "09_gene_masking"

    def _compute(self) -> None:
        labels, _ = self._labels(self.P.clinical_targets)
        data = None if self.P.data_dir else inputs.data_folder(self.P, False)
        self.phenotypes_ = rg.phenotypes(self.features_, labels, data)
        self.study_ = rg.masking_study(self.genes_, self.phenotypes_, self.P, self.progress)

    def phenotypes(self) -> pd.DataFrame | str:
        """Labelled and positive patients of each phenotype."""
        return self._show(lambda: pd.DataFrame({"labelled": self.phenotypes_.notna().sum(),
                                                "positive": (self.phenotypes_ == 1).sum()}))

    def table(self) -> pd.DataFrame | str:
        """Fold-mean test AUC, phenotypes x models (the gene network and its baselines)."""
        return self._show(lambda: self.study_.table())

    def summary(self) -> pd.DataFrame | str:
        """Per phenotype: the best programme against random gene sets of its size."""
        return self._show(lambda: self.study_.summary)

    def structure(self) -> str:
        """Patients, folds, phenotypes and models, without AUCs (what nbval compares)."""
        def view():
            s = self.study_
            return (f"{s.patients} patients with genes and every phenotype, {len(s.folds)} folds; phenotypes: "
                    f"{', '.join(self.phenotypes_.columns)}; models: {', '.join(s.aucs.model.unique())}")
        return self._show(view)

    def _results(self):
        s = self.study_
        return [], dict(gene_table=self.gene_source_, patients_with_genes=int(len(self.genes_)),
                        patients_without_genes=self.lacking_, patients=s.patients, folds=s.folds,
                        phenotypes=list(self.phenotypes_.columns), phenotype_crfs=list(rg.PHENOTYPE_CRFS),
                        models=s.aucs.to_dict("records"), masking=s.masking.to_dict("records"),
                        masking_summary=s.summary.to_dict("records"),
                        masking_programmes=s.programmes.to_dict("records"))
