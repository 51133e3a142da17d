"""Notebook 06's step: the run's results files gathered into the paper's tables, the pre-specified comparisons, the
radiogenomic sections, the deviations and the provenance (`radiolib.views.report` does the work), and `report.html`.

    step = Report(P).fit()   # reads results/*.json of the run, compares the pre-specified rows
    step.tables(); step.comparisons(); step.write()
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..run.context import run_paths
from ..views import report
from .base import NotFittedError, Step


class Report(Step):
    """Notebook 06. It reads results files and builds no patch set, so `fit()` loads no `RunContext`: after it,
    `paths_` (the run's folders), `docs_` (stem -> results file, all of the same run: `report.load_run`),
    `descriptor_` (the run's target), `ceiling_`, `tables_` (the approach tables of the rows that ran) and
    `comparisons_` (the pre-specified pairs, paired bootstrap, Holm). `write()` writes `report.html`, not a
    results file."""

    stem = "06_report"
    selection_note = report.SELECTION_NOTE

    def fit(self) -> "Report":
        """Read the run's results files (refusing those of another run) and build the tables and comparisons."""
        self.paths_ = run_paths(self.P)
        self.docs_ = report.load_run(self.paths_.root, self.P)
        self.descriptor_ = report.descriptor(self.docs_)
        self.ceiling_ = report.ceiling(self.docs_)
        self.tables_ = report.tables(self.docs_, ran_only=True)
        self.comparisons_ = report.comparisons(self.docs_)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "docs_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit() first")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.stem}, {'fitted' if hasattr(self, 'docs_') else 'not fitted'})"

    def found(self) -> str:
        """The results files read, or that there are none."""
        self._check_fitted()
        return "results files found: " + (", ".join(self.docs_) or "none (run notebooks 01 to 05 first)")

    def glance_figure(self):
        """The first figure: each pre-specified row's test AUC and CI beside the paper, the ceiling and the
        handcrafted baseline (shown inline, not saved: figures/ holds the notebooks' figures)."""
        self._check_fitted()
        return report.glance_figure(self.docs_)

    def glance_sentences(self) -> list[str]:
        """What the run found, in a few sentences written from its results files."""
        self._check_fitted()
        return report.glance_sentences(self.docs_, self.comparisons_)

    def cohort_flow(self) -> pd.DataFrame:
        """Included and excluded patients with the reasons (notebook 01)."""
        self._check_fitted()
        return report.cohort_flow(self.docs_)

    def describe(self) -> str:
        """The target and the reference paper's task, the ceiling and the handcrafted baseline: three lines."""
        self._check_fitted()
        d = self.descriptor_
        return "\n".join([f"target {d.target}: {d.definition} ({d.positive} vs {d.negative}); reference: "
                          f"{d.reference}, {d.reference_task}", self.ceiling_.sentence(),
                          report.baseline_sentence(self.docs_)])

    def tables(self) -> dict[str, pd.DataFrame]:
        """Title -> the approach table of the rows that ran (our AUCs beside the paper's)."""
        self._check_fitted()
        return self.tables_

    def structure(self) -> str:
        """The tables' shape without their AUCs (what nbval compares)."""
        self._check_fitted()
        return report.structure(self.docs_)

    def skip_causes(self) -> list[str]:
        """One line per cause of the rows that did not run."""
        self._check_fitted()
        return report.skip_causes(self.docs_)

    def comparisons(self) -> pd.DataFrame:
        """The pre-specified pairs of rows that ran: paired bootstrap of the fold-mean AUC difference, Holm."""
        self._check_fitted()
        return self.comparisons_

    def comparison_structure(self) -> str:
        """The comparisons' shape without their AUCs (what nbval compares)."""
        self._check_fitted()
        return report.comparison_structure(self.comparisons_)

    def radiogenomics(self) -> dict[str, list]:
        """Notebooks 07-09's sections: title -> sentences and tables (or why a notebook did not run)."""
        self._check_fitted()
        return report.radiogenomics(self.docs_)

    def deviations(self) -> str:
        """The deviations every notebook states, once, then each notebook's own."""
        self._check_fitted()
        shared, own = report.shared_deviations(self.docs_)
        lines = ["Every notebook:", *(f"- {d}" for d in shared)]
        for stem, items in own.items():
            lines += ["", f"{stem}:", *(f"- {d}" for d in items)]
        return "\n".join(lines)

    def provenance(self) -> dict:
        """Versions, seeds, parameters and wall time per notebook."""
        self._check_fitted()
        return report.provenance(self.paths_.root, self.docs_)

    def figures(self) -> list[Path]:
        """The run's figures (figures/*.png), each embedded in report.html."""
        self._check_fitted()
        return report.figures(self.paths_.root)

    def write(self) -> Path:
        """Write the self-contained report.html into the run folder; its path."""
        self._check_fitted()
        return report.write(self.paths_.root)
