"""Notebook 01 as a step: from DCE-MRI series (or LGG slices) to the cached tumour patches every later notebook starts
from, with the cohort's flow, the scanners, the ceiling and the handcrafted baseline.

    step = Preprocessing(P).fit()      # cohort, patch set, QC, ceiling, baseline, deviations
    step.flow_table(); step.save_figures(); step.write()
"""
from __future__ import annotations

from functools import cached_property
from types import SimpleNamespace

import pandas as pd

from ..data import cohort as cohort_lib
from ..data import dataset, imaging, patches
from ..learn import handcrafted
from ..run import baselines, inputs, protocol, results
from ..run.context import RunContext, run_paths
from ..views import plots, widgets
from .base import Step

NO_RESAMPLING = "every scan already has the target spacing: nothing is resampled"


class Preprocessing(Step):
    """01: the cohort (header checks), the patch set (resampled scans, subtraction channels, patches, QC), the
    ceiling and the handcrafted baseline on the run's folds, and the deviations from the paper's protocol.

    After `fit()`: `context_` (paths, patch set, deviations; no folds: the ceiling and the baseline make their own
    and say why when they cannot), `data_dir_`, `cohort_` (the header scan), `patch_set_`, `target_spacing_` (mm),
    `ceiling_` (`radiolib.stats.ceiling.Ceiling`), `baseline_` (the handcrafted row, skipped with its reason when
    it cannot run), `deviations_`.
    """

    stem = "01_preprocessing"

    def fit(self) -> "Preprocessing":
        """Scan the cohort, build (or read back) the patch set once, compute the ceiling and the baseline."""
        P = self.P
        self.data_dir_ = inputs.data_folder(P, self.progress)
        self.cohort_ = dataset.open_cohort(self.data_dir_, P.target, progress=False)
        self.context_ = self._context()
        self._fit()
        return self

    def _context(self) -> RunContext:
        """01's own context: the run folders, the patch set (built once, here) and the deviations. Not
        `RunContext.load()`: 01 has no results of its own to read back, and its folds may not exist yet (a class
        smaller than n_folds), which the ceiling and the baseline report as their reason."""
        ctx = RunContext(self.P, self.stem, self.progress, self.patch_set)
        ctx.paths_ = run_paths(self.P)
        ctx.patch_set_ = self.patch_set if self.patch_set is not None else inputs.patch_set(self.P, self.progress)
        ctx.deviations_ = protocol.deviations(self.P, self.stem, ctx.patch_set_)
        return ctx

    def _fit(self) -> None:
        P, ps = self.P, self.context_.patch_set_
        self.patch_set_ = ps
        self.target_spacing_ = ps.meta["target_spacing_mm"]
        self.deviations_ = self.context_.deviations_
        self.ceiling_ = baselines.ceiling_of_patch_set(self.data_dir_, ps, P)  # real data: no ceiling, and why
        self.baseline_ = baselines.baseline_of_patch_set(self.data_dir_, ps, P, self.progress)

    # -- tables and lines ------------------------------------------------------------------------------------

    def cohort_summary(self) -> str:
        """Patient folders, how many pass the header checks, and the target's definition."""
        self._check_fitted()
        cohort, d = self.cohort_, self.cohort_.descriptor
        return (f"{len(cohort.table) + len(cohort.qc)} patient folders; {len(cohort.table)} pass the header checks\n"
                f"target {d.target}: {d.definition} ({d.positive} = label 1)")

    def flow_table(self) -> pd.DataFrame:
        """The cohort flow: patients in, each exclusion step, patients included."""
        self._check_fitted()
        return cohort_lib.flow_table(self.patch_set_.table, self.patch_set_.qc)

    def exclusions(self) -> pd.DataFrame:
        """Every excluded patient with the reason (header checks and preprocessing)."""
        self._check_fitted()
        return self.patch_set_.qc

    def scanner_table(self) -> pd.DataFrame:
        """The included patients' protocols (Table 1): scanner, field strength, spacing."""
        self._check_fitted()
        return cohort_lib.scanner_table(self.patch_set_.table)

    def patch_sides(self) -> dict:
        """Each patch side in the paper's pixels and in pixels of this data."""
        self._check_fitted()
        return {f"{s} paper px": f"{px} px" for s, px in self.patch_set_.meta["patch_pixels"].items()}

    def counts(self) -> pd.Series:
        """Patches per role (training, augmented, test) and patients."""
        self._check_fitted()
        return pd.Series(self.patch_set_.counts())

    def target_statement(self) -> str:
        """The target's definition and prevalence among the included patients."""
        self._check_fitted()
        return protocol.target_statement(self.patch_set_)

    def baseline_sentence(self) -> str:
        """The handcrafted baseline in one line, or why it did not run."""
        self._check_fitted()
        return handcrafted.sentence(self.baseline_)

    # -- figures ----------------------------------------------------------------------------------------------

    @cached_property
    def _example(self) -> SimpleNamespace:
        """The first included patient's preprocessed volume, its central lesion region and the patch side of the
        largest patch size: what the channel, test-layout and explorer figures show."""
        ps = self.patch_set_
        patient = ps.table.patient.iloc[0]
        vol = self.cohort_.volume(patient, self.target_spacing_)
        size = max(ps.meta["patch_sizes"])
        return SimpleNamespace(patient=patient, vol=vol, lesion=vol.central_region(), size=size,
                               px=ps.meta["patch_pixels"][str(size)])

    def _resampling(self):
        example = imaging.resampling_example(self.cohort_, self.target_spacing_, self.patch_set_.table.patient)
        return plots.resampling(*example, self.target_spacing_) if example else NO_RESAMPLING

    def _channels(self):
        e = self._example
        return plots.channels(e.vol.channels, int(e.lesion.slice), (e.lesion.cy, e.lesion.cx, e.lesion.h, e.lesion.w),
                              f"{e.patient}, slice {int(e.lesion.slice) + 1}", self.cohort_.channel_names)

    def _montage(self):
        ps, size = self.patch_set_, self._example.size
        originals = ps.index[(ps.index.role == "train")].groupby("patient").head(1)
        return plots.montage(ps.patches(size)[originals.index.to_numpy()], originals.label, 8,
                             f"training patches, size {size}", ps.descriptor.class_names)

    def _augmentation(self):
        arr, idx = self.patch_set_.patches(self._example.size), self.patch_set_.index
        starts = idx.index[idx.role == "train"][:3]
        augmented = [[arr[j] for j in range(i + 1, i + 1 + self.P.n_augment)] for i in starts]
        return plots.augmentations([arr[i] for i in starts], augmented)

    def _test_layout(self):
        e = self._example
        layout = patches.test_layout(e.vol.regions, e.vol.channels.shape[1])
        return plots.test_layout(e.vol.channels, layout, e.px, f"{e.patient}: 25 test patches")

    def _class_balance(self):
        ps = self.patch_set_
        return plots.class_balance(ps.table, ps.index, ps.descriptor.class_names)

    def _explorer_static(self):
        e = self._example
        label = int(self.patch_set_.table.label.iloc[0])
        return widgets.slice_with_patch(e.vol.channels, e.vol.regions, int(e.lesion.slice), 0, e.px, label,
                                        e.patient, self.cohort_.channel_names)

    @property
    def figures(self) -> dict:
        """Figure name (its file name in figures/) -> a function drawing it (or returning why there is none)."""
        return {"01_resampling": self._resampling, "01_channels": self._channels, "01_montage": self._montage,
                "01_augmentation": self._augmentation, "01_test_layout": self._test_layout,
                "01_class_balance": self._class_balance, "01_explorer_static": self._explorer_static}

    def save_figures(self, *names: str) -> None:
        """Draw the named figures (all when none is named) into the run's figures/<name>.png; a figure with nothing
        to show (no scan is resampled) prints why instead."""
        self._check_fitted()
        for name in names or list(self.figures):
            fig = self.figures[name]()
            if isinstance(fig, str):
                print(fig)
            else:
                plots.save(fig, self.context_.paths_.figures, name)

    def show_explorer(self) -> None:
        """The patch explorer (JupyterLab): pick a patient, slice, channel and patch size."""
        self._check_fitted()
        widgets.patch_explorer(self.patch_set_, self.data_dir_, self.P.target)

    # -- results file -----------------------------------------------------------------------------------------

    def write(self) -> dict:
        """results/01_preprocessing.json: included and excluded patients, patch counts, spacing, patch sides, the
        ceiling and the baseline; the document."""
        self._check_fitted()
        ps = self.patch_set_
        return results.write_summary(
            self.context_.results_path, self.P, deviations=self.deviations_, patch_set=ps,
            included=ps.table[["patient", "label"]].to_dict("records"), excluded=ps.qc.to_dict("records"),
            patch_counts=ps.counts(), target_spacing_mm=self.target_spacing_, patch_pixels=ps.meta["patch_pixels"],
            **self.ceiling_.entries(), **handcrafted.entries(self.baseline_))
