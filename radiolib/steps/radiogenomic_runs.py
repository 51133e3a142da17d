"""Notebooks 07-09 as objects (issue 13): each takes the notebook's `RunContext`, computes with
`radiolib.steps.radiogenomics` and the analysis modules (receptors, associations, masking), and gives the notebook its
tables, figures and results file. A cohort the analysis does not apply to (no clinical targets, no gene table, too
few patients of a class) makes a run that says why in every output and writes its results file with the reason, so
that the study goes on."""
from __future__ import annotations

import pandas as pd

from ..learn.handcrafted import missing_extractor
from ..run import inputs
from . import radiogenomics as rg


class _Run:
    """`fit()` checks that the notebook applies (`_reason`), then computes (`_compute`); every view returns the
    reason instead when it was skipped; `write()` records the study's rows and entries (`_results`) or the reason."""

    stem = ""

    def __init__(self, ctx, progress: bool = True):
        self.ctx, self.P, self.progress = ctx, ctx.P, progress
        self.skipped: str | None = None

    def fit(self):
        self.skipped = rg.not_duke(self.ctx.patch_set_) or missing_extractor() or self._reason()
        if not self.skipped:
            try:
                self.features_ = rg.image_features(self.P, self.ctx.patch_set_, self.progress)
                self._compute()
            except ValueError as err:  # e.g. too few patients of a class: the study goes on without this notebook
                self.skipped = f"{type(err).__name__}: {err}"
        return self

    def _reason(self) -> str | None:
        return None

    def _compute(self) -> None:
        raise NotImplementedError

    def _results(self) -> tuple[list[dict], dict]:
        raise NotImplementedError

    def _show(self, view):
        """view() unless the notebook was skipped, else the reason (a notebook cell shows either)."""
        return f"Skipped: {self.skipped}" if self.skipped else view()

    def _labels(self, names):
        return rg.clinical_labels(inputs.data_folder(self.P, False), self.ctx.patch_set_.table.patient, names)

    def save_figures(self):
        """The study's figures into the run's figures/ (shown by the inline backend)."""
        return self._show(lambda: self.study_.save_figures(self.ctx.paths_.figures, self.stem))

    def features(self) -> pd.Series | str:
        return self._show(lambda: pd.Series(self.features_.counts()))

    def write(self) -> dict:
        rows, top = ([], {}) if self.skipped else self._results()
        return self.ctx.write_results(rows, skipped=self.skipped, **top)


class ReceptorRun(_Run):
    """Notebook 07: T, N, ER, PR and HER2 from DRFs and CRFs (Liu & Hu 2023)."""

    stem = "07_receptors"

    def _compute(self) -> None:
        self.labels_, self.reasons_ = self._labels(self.P.clinical_targets)
        self.study_ = rg.receptor_study(self.features_, self.labels_, self.P, self.progress)

    def targets(self):
        from ..data import targets
        return self._show(lambda: targets.summary(self.labels_))

    def dae_figure(self, n: int = 6):
        """Inputs, noisy inputs and reconstructions of the first `n` input slices, the first and last training loss in
        the title."""
        return self._show(lambda: self._dae_figure(n))

    def _dae_figure(self, n: int) -> None:
        import torch

        from ..learn import dae
        from ..views import plots
        images = rg.images_of(self.P, self.ctx.patch_set_, n)
        noisy = dae.add_noise(torch.from_numpy(images), self.features_.config.noise,
                              torch.Generator().manual_seed(self.P.seed)).numpy()
        recon = dae.reconstruct(self.features_.model(), images)
        losses, baseline = self.features_.losses, self.features_.mean_image_mse
        title = (f"DAE ({self.features_.config.loss} loss): training loss {losses[0]:.4f} (epoch 1) to "
                 f"{losses[-1]:.4f} (epoch {len(losses)})")
        if baseline is not None and self.features_.config.loss == "mse":
            title += f"; the mean input as every reconstruction: {baseline:.4f}"
        fig = plots.dae_reconstructions(images, noisy, recon, n, title)
        plots.save(fig, self.ctx.paths_.figures, f"{self.stem}_dae")  # shown by the inline backend

    def table(self):
        return self._show(lambda: self.study_.table())

    def comparisons(self):
        return self._show(lambda: self.study_.comparisons)

    def null(self):
        return self._show(lambda: self.study_.null)

    def structure(self) -> str:
        return self._show(lambda: self.study_.structure())

    def _results(self):
        return self.study_.rows, rg.receptor_entries(self.study_, self.features_, self.reasons_)


class _GeneRun(_Run):
    """A notebook that reads the gene table (`genes_`, `lacking_`: included patients it lacks)."""

    def _reason(self) -> str | None:
        path, why = rg.gene_path(self.P, inputs.data_folder(self.P, False))
        if why:
            return why
        self.gene_source_ = "the user's gene_table" if self.P.gene_table else f"the synthetic cohort's {path.name}"
        try:
            self.genes_, self.lacking_ = rg.read_genes(path, self.ctx.patch_set_.table.patient)
        except (ValueError, OSError) as err:  # a malformed table: named, and the study goes on
            return f"gene_table: {err}"
        return f"only {len(self.genes_)} included patients are in the gene table" if len(self.genes_) < 8 else None

    def genes(self):
        def view():
            sets = rg.gene_sets(self.genes_.columns)
            return pd.Series({"gene table": self.gene_source_, "patients with genes": len(self.genes_),
                              "included patients without genes": len(self.lacking_), "genes": self.genes_.shape[1],
                              **{f"programme {k}": f"{len(v)} genes" for k, v in sets.items()}})
        return self._show(view)


class AssociationRun(_GeneRun):
    """Notebook 08: every DRF and CRF against gene programmes and genes (Liu & Hu 2023; OLS on patient means, their
    mixed model as a check on random samples of pairs, the counts against permutations of the gene table)."""

    stem = "08_associations"

    def _compute(self) -> None:
        self.study_ = rg.association_study(self.features_, self.genes_, self.P)

    def counts(self):
        return self._show(lambda: self.study_.counts())

    def top(self, kind: str):
        return self._show(lambda: self.study_.top(kind))

    def mixed_check(self):
        return self._show(lambda: self.study_.mixed_check)

    def mixed_agreement(self):
        return self._show(lambda: self.study_.mixed_agreement())

    def null(self):
        """The observed counts beside the permutation null's, one column per feature kind."""
        return self._show(lambda: self.study_.null_counts.astype(object).T)  # (counts stay integers)

    def _results(self):
        return [], rg.association_entries(self.study_, self.genes_, self.lacking_, self.gene_source_)


class MaskingRun(_GeneRun):
    """Notebook 09: genes to imaging phenotypes and gene masking (Smedley et al. 2021)."""

    stem = "09_gene_masking"

    def _compute(self) -> None:
        labels, _ = self._labels(self.P.clinical_targets)
        data = None if self.P.data_dir else inputs.data_folder(self.P, False)
        self.phenotypes_ = rg.phenotypes(self.features_, labels, data)
        self.study_ = rg.masking_study(self.genes_, self.phenotypes_, self.P, self.progress)

    def phenotypes(self):
        return self._show(lambda: pd.DataFrame({"labelled": self.phenotypes_.notna().sum(),
                                                "positive": (self.phenotypes_ == 1).sum()}))

    def table(self):
        return self._show(lambda: self.study_.table())

    def summary(self):
        return self._show(lambda: self.study_.summary)

    def structure(self) -> str:
        s = self.study_ if not self.skipped else None
        return self._show(lambda: f"{s.patients} patients with genes and every phenotype, {len(s.folds)} folds; "
                                  f"phenotypes: {', '.join(self.phenotypes_.columns)}; models: "
                                  f"{', '.join(s.aucs.model.unique())}")

    def _results(self):
        s = self.study_
        return [], dict(gene_table=self.gene_source_, patients_with_genes=int(len(self.genes_)),
                        patients_without_genes=self.lacking_, patients=s.patients, folds=s.folds,
                        phenotypes=list(self.phenotypes_.columns), phenotype_crfs=list(rg.PHENOTYPE_CRFS),
                        models=s.aucs.to_dict("records"), masking=s.masking.to_dict("records"),
                        masking_summary=s.summary.to_dict("records"),
                        masking_programmes=s.programmes.to_dict("records"))
