"""Notebooks 07-09 as library calls (issue 13): the lesion images' deep and conventional radiomic features, the
clinical targets and the gene table they are read against.

- `image_features(P, patch_set)`: Liu & Hu 2023's denoising autoencoder (`radiolib.learn.dae`) trained on the
  lesion-centred
  slices, its second pooling layer as deep radiomic features (DRFs), and conventional radiomic features (CRFs) of the
  same slices from pyradiomics; cached, so that 07, 08 and 09 compute them once.
- `clinical_labels(P)`: T, N, ER, PR and HER2 from the Duke clinical table (`radiolib.data.targets`).
- `gene_table(P, patients)`: the synthetic cohort's gene_expression.csv or the user's own (`gene_table`), patients x
  genes, and `programme_scores`, the mean z-score of each programme's genes.

Both feature extractors are label-free: the DAE learns to reconstruct the images of every included patient without
their labels, as the CRFs are measured without them, so one feature table serves every fold (a stated deviation:
Liu & Hu trained it on all their images too).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import SimpleITK as sitk
import torch
from joblib import Parallel, delayed
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from ..core import cache
from ..core.frontend import tqdm
from ..data import targets
from ..data.cohort import _find_file, read_clinical
from ..data.dataset import open_cohort
from ..data.dicom_seg import MASK_SOURCES, mask_source
from ..data.patches import extract
from ..data.synth import GENE_SETS
from ..learn import dae
from ..learn.handcrafted import extractor, extractor_version, missing_extractor, usable_columns
from ..learn.training import CRF_BIN_WIDTH
from ..run import inputs
from ..run.inputs import data_folder
from ..run.results import make_row
from ..stats import associations, evaluation, masking, receptors
from ..stats.receptors import _l1
from ..views import plots
from .base import Step

VERSION = 3  # 3: DAE inputs on one fixed intensity map for the cohort, CRFs on the intensities with a fixed bin width
CRF_CLASSES = ("firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
CRF_SETTINGS = {"binWidth": CRF_BIN_WIDTH, "force2D": True, "label": 1}
CRF_ROI = ("the 64 x 64 lesion-centred slice the DAE reads, inside a 1-pixel border (Duke has boxes, not "
           "outlines, so both feature sets describe the same pixels)")
CRF_ROI_MASKED = ("the patient's AIMI SEG tumour mask cut as the 64 x 64 lesion-centred slice the DAE reads (inside a "
                  "1-pixel border), else that slice inside the border (`mask_source`)")
GENE_FILE = "gene_expression.csv"  # the synthetic cohort's, beside its clinical table


def slice_crfs(images: np.ndarray, progress: bool = False, n_jobs: int = 1, rois: np.ndarray | None = None
               ) -> tuple[pd.DataFrame, dict[int, str]]:
    """pyradiomics features (CRF_CLASSES, CRF_SETTINGS: a fixed bin width) of each (64, 64) image in the cohort's
    units (`dae.lesion_intensities`: not rescaled per image, so first-order features measure enhancement), the image
    inside a 1-pixel border as the region: (images x features, image -> reason for the images pyradiomics could not
    measure, whose row is NaN). `n_jobs` processes share the images in chunks (pyradiomics is single-threaded; the
    result does not depend on it). `rois`, (images, 64, 64) bool, is each image's tumour mask where it has one
    (an empty one: the border region)."""
    reason = missing_extractor()
    if reason:
        raise RuntimeError(reason)
    images = np.asarray(images, np.float32)
    step = max(1, min(64, -(-len(images) // max(1, 4 * n_jobs))))
    starts = range(0, len(images), step)
    chunks = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(_crf_chunk)(images[i:i + step], None if rois is None else rois[i:i + step]) for i in starts)
    rows, failed = [], {}
    with tqdm(total=len(images), desc="conventional radiomic features", disable=not progress) as bar:
        for start, (chunk_rows, chunk_failed) in zip(starts, chunks):
            rows += chunk_rows
            failed.update({start + i: why for i, why in chunk_failed.items()})
            bar.update(len(chunk_rows))
    return pd.DataFrame(rows), failed


def _crf_chunk(images: np.ndarray, rois: np.ndarray | None = None) -> tuple[list[dict], dict[int, str]]:
    """slice_crfs of a few images in one process: (rows, image within the chunk -> reason)."""
    ext, rows, failed = extractor(CRF_CLASSES, CRF_SETTINGS), [], {}
    inside = np.zeros((1, *images.shape[1:]), np.uint8)
    inside[:, 1:-1, 1:-1] = 1  # pyradiomics finds no region in a mask that fills the whole image
    border = sitk.GetImageFromArray(inside)
    for i, image in enumerate(images):
        masked = rois is not None and bool((rois[i] & inside[0].astype(bool)).any())
        roi = sitk.GetImageFromArray((rois[i][None] & inside.astype(bool)).astype(np.uint8)) if masked else border
        try:
            if not np.isfinite(image).all():  # (with a bin width pyradiomics would measure the finite pixels alone)
                raise ValueError(f"{int((~np.isfinite(image)).sum())} pixel(s) not finite")
            out = ext.execute(sitk.GetImageFromArray(image[None]), roi)
            rows.append({k.removeprefix("original_"): float(v) for k, v in out.items() if k.startswith("original_")})
        except Exception as err:  # noqa: BLE001 - one image's failure is a reason, not a crash
            failed[i] = f"{type(err).__name__}: {err}"
            rows.append({})
    return rows, failed


@dataclass
class ImageFeatures:
    """The lesion images of a patch set and their features, one row per image (`meta`: patient, lesion, slice)."""

    meta: pd.DataFrame
    drf: np.ndarray  # (images, 4096), quantile-normalised per image
    crf: pd.DataFrame  # (images, CRFs) usable: finite somewhere and not constant
    losses: list[float]  # DAE training loss per epoch
    state: dict  # the DAE's weights
    config: dae.DaeConfig
    crf_failed: dict[int, str]
    mean_image_mse: float | None = None  # the mse of predicting every input by the mean input: what a DAE must beat
    mask_source: dict | None = None  # the CRFs' region per patient (`crf_rois`); None: every image's border

    def model(self) -> dae.DenoisingAutoencoder:
        net = dae.DenoisingAutoencoder()
        net.load_state_dict(self.state)
        return net.eval()

    def table(self, kind: str) -> pd.DataFrame:
        """Image rows of "DRF" or "CRF" (CRFs of failed images imputed with the column median, label-free)."""
        if kind == "DRF":
            return pd.DataFrame(self.drf, columns=[f"drf{i:04d}" for i in range(self.drf.shape[1])])
        if kind == "CRF":
            return self.crf.fillna(self.crf.median())
        raise ValueError(f"feature kind {kind!r}: choose DRF or CRF")

    def per_patient(self, kind: str) -> pd.DataFrame:
        """Patients x features: the mean over each patient's images."""
        return self.table(kind).groupby(self.meta.patient.astype(str).values).mean().rename_axis("patient")

    def counts(self) -> dict:
        return {"images": int(len(self.meta)), "patients": int(self.meta.patient.nunique()),
                "DRF": int(self.drf.shape[1]), "CRF": int(self.crf.shape[1]), "CRF_failed": len(self.crf_failed)}


def dae_config(P: SimpleNamespace) -> dae.DaeConfig:
    return dae.DaeConfig(loss=P.dae_loss, epochs=P.dae_epochs, seed=P.seed, bf16=P.dae_bf16)


def image_features(P: SimpleNamespace, patch_set, progress: bool = True) -> ImageFeatures:
    """DRFs and CRFs of the patch set's lesion slices (`dae.lesion_intensities`, patch size `dae_patch_size`): the DAE
    reads them through the cohort's fixed intensity map (`dae.to_input`), pyradiomics measures their intensities
    themselves. Computed once per data, DAE settings and versions, and cached."""
    units, meta = dae.lesion_intensities(patch_set, P.dae_patch_size)
    lesions = dae.to_input(units)
    cfg = dae_config(P)
    config = {k: v for k, v in vars(cfg).items() if k != "bf16" or v}  # (fp32: the key features were cached under)
    parts = dict(data=patch_set.fingerprint, patches=patch_set.path.name, size=P.dae_patch_size, config=config,
                 crf=[CRF_CLASSES, CRF_SETTINGS], extractor=extractor_version(), version=VERSION)
    if P.dae_input != "lesion":  # (the lesion key stays as it was, so that features cached before it are read back)
        parts["dae_input"] = P.dae_input
    source = mask_source(patch_set.table)
    if source is not None:  # (without masks the key stays as it was)
        parts["crf_roi"] = "mask"

    def compute():
        images = lesions if P.dae_input == "lesion" else _whole_slices(P, patch_set, meta, progress)
        trained = dae.train(images, cfg, progress=progress)
        drf = dae.deep_radiomic_features(trained.model, images).astype(np.float32)
        rois = None if source is None else crf_rois(P, patch_set, source)
        crf, failed = slice_crfs(units, progress, getattr(P, "n_jobs", 1), rois)  # CRFs: always the lesion
        return ImageFeatures(meta, drf, usable_columns(crf), trained.losses,
                             {k: v.clone() for k, v in trained.model.state_dict().items()}, cfg, failed,
                             float(((images - images.mean(axis=0)) ** 2).mean()),
                             None if source is None else {**source, "images_in_mask": int(rois.any((1, 2)).sum()),
                                                          "images_in_box": int((~rois.any((1, 2))).sum())})
    return cache.memo(P.cache_dir, "radiogenomic_features", parts, compute)


def crf_rois(P: SimpleNamespace, patch_set, source: dict) -> np.ndarray:
    """(images, 64, 64) bool, the rows of `dae.lesion_intensities`: the patient's SEG tumour mask (`Volume.mask`)
    cut as its lesion patch and area-resized as the image is (kept where at least half covered), for the patients
    of `source` with a mask; empty (the border region) for the others and on slices the mask does not reach."""
    idx = patch_set.index
    rows = idx[idx.role == "train"].reset_index(drop=True)
    px = int(patch_set.meta["patch_pixels"][str(P.dae_patch_size)])
    out = np.zeros((len(rows), dae.SIDE, dae.SIDE), bool)
    with_mask = set(source["patients"][MASK_SOURCES[0]])
    cohort = open_cohort(data_folder(P, False), target=P.target, progress=False)
    for patient, group in rows.groupby(rows.patient.astype(str)):
        if patient in with_mask:
            mask = cohort.volume(patient, cohort.target_spacing).mask.astype(np.float32)[None]
            cut = extract(mask, group.assign(angle=0.0), px).astype(np.float32)
            out[group.index.to_numpy()] = dae._resized(torch.from_numpy(cut)) >= 0.5
    return out


def images_of(P: SimpleNamespace, patch_set, n: int | None = None) -> np.ndarray:
    """The DAE's first `n` (None: all) input images (for figures)."""
    lesions, meta = dae.lesion_slices(patch_set, P.dae_patch_size)
    if P.dae_input == "lesion":
        return lesions[:n]
    return _whole_slices(P, patch_set, meta.head(len(meta) if n is None else n), False)


def _whole_slices(P: SimpleNamespace, patch_set, meta: pd.DataFrame, progress: bool) -> np.ndarray:
    """`dae.whole_slices` of the patch set's own data (the cohort it was built from, with its target)."""
    source = open_cohort(data_folder(P, False), target=P.target, progress=False)
    return dae.whole_slices(source, meta, progress=progress)


# ---------------------------------------------------------------------------------------------------------------
# Clinical targets and genes


def not_duke(patch_set) -> str | None:
    """None for a Duke-layout cohort, else why the radiogenomic notebooks do not apply."""
    dataset = patch_set.descriptor.dataset
    if dataset != "duke":
        return (f"the radiogenomic analyses need the Duke layout's clinical table (T, N, ER, PR, HER2); this cohort is "
                f"{dataset}")
    return None


def clinical_file(data_dir: Path) -> Path:
    return _find_file(Path(data_dir), "Clinical_and_Other_Features.xlsx")


def clinical_labels(data_dir: Path, patients, names) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(labels, reasons) of `names` for the included `patients`, from the data folder's clinical table."""
    labels, reasons = targets.clinical_targets(read_clinical(clinical_file(data_dir), targets.COLUMNS), names)
    keep = [str(p) for p in patients]
    missing = [p for p in keep if p not in labels.index]
    if missing:
        raise ValueError(f"the clinical table has no row for {len(missing)} included patient(s): {missing[:5]}")
    return labels.loc[keep], reasons.loc[keep]


def gene_path(P: SimpleNamespace, data_dir: Path) -> tuple[Path | None, str | None]:
    """(the gene table's path, None) or (None, why there is none): `gene_table` when given, else the synthetic
    cohort's gene_expression.csv; a real download has none unless the user gives one."""
    if P.gene_table:
        path = Path(P.gene_table).expanduser()
        return (path, None) if path.is_file() else (None, f"gene_table {P.gene_table!r} is not a file")
    path = Path(data_dir) / GENE_FILE
    if P.data_dir or not path.is_file():
        return None, ("no gene table: set the parameter gene_table to a CSV of patients x genes (first column the "
                      "patient id, as in the clinical table)")
    return path, None


def read_genes(path: Path, patients) -> tuple[pd.DataFrame, list[str]]:
    """(patients x genes, the included patients the table lacks). The first column is the patient id; the other
    columns must be numbers (log expression); ValueError naming the file and the column otherwise."""
    table = pd.read_csv(path)
    if table.shape[1] < 2:
        raise ValueError(f"{Path(path).name}: expected a patient column and gene columns, got {list(table.columns)}")
    table = table.set_index(table.columns[0])
    table.index = table.index.astype(str)
    bad = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    if bad:
        raise ValueError(f"{Path(path).name}: gene column(s) {bad[:5]} are not numbers")
    if table.index.has_duplicates:
        repeated = sorted(set(table.index[table.index.duplicated()]))[:5]
        raise ValueError(f"{Path(path).name}: repeated patient(s) {repeated}")
    keep = [str(p) for p in patients]
    lacking = [p for p in keep if p not in table.index]
    return table.loc[[p for p in keep if p in table.index]].rename_axis("patient"), lacking


def gene_sets(genes) -> dict[str, list[str]]:
    """The generator's programmes (radiolib.data.synth.GENE_SETS), each restricted to the genes the table has; a
    programme with fewer than 3 of its genes is left out."""
    have = set(genes)
    return {name: [g for g in members if g in have] for name, members in GENE_SETS.items()
            if sum(g in have for g in members) >= 3}


def programme_scores(genes: pd.DataFrame, sets: dict[str, list[str]]) -> pd.DataFrame:
    """Patients x programmes: the mean z-score (over the patients) of each programme's genes."""
    z = (genes - genes.mean()) / genes.std(ddof=0).replace(0, np.nan)
    return pd.DataFrame({name: z[members].mean(axis=1) for name, members in sets.items()}, index=genes.index)


# ---------------------------------------------------------------------------------------------------------------
# What the steps of 07-09 share (radiolib.steps.receptors, associations, gene_masking)


class RadiogenomicStep(Step):
    """A step of notebooks 07-09. `fit()` loads the run's context, checks that the notebook applies (a Duke-layout
    cohort, pyradiomics, the step's own `_reason()`), then computes the image features (`features_`, cached) and the
    step's study (`_compute()`). `skipped_` is why it did not apply (no clinical targets, no gene table, too few
    patients of a class), else None: every view then returns that reason, and `write()` records it with no rows,
    so that the study goes on."""

    def _fit(self) -> None:
        patch_set = self.context_.patch_set_
        self.skipped_ = not_duke(patch_set) or missing_extractor() or self._reason()
        if not self.skipped_:
            try:
                self.features_ = image_features(self.P, patch_set, self.progress)
                self._compute()
            except ValueError as err:  # e.g. too few patients of a class: the study goes on without this notebook
                self.skipped_ = f"{type(err).__name__}: {err}"

    def _reason(self) -> str | None:
        return None

    def _compute(self) -> None:
        raise NotImplementedError

    def _results(self) -> tuple[list[dict], dict]:
        """(results rows, top-level entries) of the results file."""
        raise NotImplementedError

    def _show(self, view):
        """view() unless the notebook was skipped, else the reason (a notebook cell shows either)."""
        self._check_fitted()
        return f"Skipped: {self.skipped_}" if self.skipped_ else view()

    def _labels(self, names) -> tuple[pd.DataFrame, pd.DataFrame]:
        return clinical_labels(inputs.data_folder(self.P, False), self.context_.patch_set_.table.patient, names)

    def describe(self) -> str:
        """The patients, folds and deviations from the paper's protocol (`RunContext.describe`)."""
        self._check_fitted()
        return self.context_.describe()

    def features(self) -> pd.Series | str:
        """How many images, patients, DRFs and CRFs (and images pyradiomics could not measure)."""
        return self._show(lambda: pd.Series(self.features_.counts()))

    def save_figures(self):
        """The study's figures into the run's figures/ (shown by the inline backend)."""
        return self._show(lambda: self.study_.save_figures(self.context_.paths_.figures, self.stem))

    def write(self) -> dict:
        """results/<stem>.json: the study's rows and entries, or the reason it skipped; the document."""
        self._check_fitted()
        rows, top = ([], {}) if self.skipped_ else self._results()
        return self.context_.write_results(rows, skipped=self.skipped_, **top)


class GeneStep(RadiogenomicStep):
    """A step that reads the gene table (08, 09): `genes_` (patients x genes), `lacking_` (the included patients it
    lacks), `gene_source_` (whose table)."""

    def _reason(self) -> str | None:
        path, why = gene_path(self.P, inputs.data_folder(self.P, False))
        if why:
            return why
        self.gene_source_ = "the user's gene_table" if self.P.gene_table else f"the synthetic cohort's {path.name}"
        try:
            self.genes_, self.lacking_ = read_genes(path, self.context_.patch_set_.table.patient)
        except (ValueError, OSError) as err:  # a malformed table: named, and the study goes on
            return f"gene_table: {err}"
        return f"only {len(self.genes_)} included patients are in the gene table" if len(self.genes_) < 8 else None

    def genes(self) -> pd.Series | str:
        """The gene table: its source, patients with and without genes, genes, and each programme's size."""
        def view():
            sets = gene_sets(self.genes_.columns)
            return pd.Series({"gene table": self.gene_source_, "patients with genes": len(self.genes_),
                              "included patients without genes": len(self.lacking_), "genes": self.genes_.shape[1],
                              **{f"programme {k}": f"{len(v)} genes" for k, v in sets.items()}})
        return self._show(view)


# ---------------------------------------------------------------------------------------------------------------
# Notebook 07: the clinical targets from DRFs and CRFs, our protocol and the paper's

KINDS = ("DRF", "CRF")
EXTRACTOR = {"DRF": "dae", "CRF": "pyradiomics"}  # the row's `network`: where its features come from
NULL_PERMUTATIONS = 5


def _per_fold(cv) -> list[tuple[pd.Series, pd.Series]]:
    """(labels, scores) of each test fold of the median repeat: what the paired test resamples."""
    tests = [list(map(str, f["test_patients"])) for f in cv.folds if f["repeat"] == cv.median_repeat]
    return [(cv.oof_labels.loc[t], cv.oof_scores.loc[t]) for t in tests]


def _image_rows(feats: ImageFeatures, kind: str, labels: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image features, image labels, image patients) of the images whose patient has a label."""
    patients = feats.meta.patient.astype(str).to_numpy()
    keep = np.isin(patients, labels.index)
    return feats.table(kind).to_numpy(float)[keep], labels.loc[patients[keep]].to_numpy(int), patients[keep]


@dataclass
class ReceptorStudy:
    rows: list[dict]  # our protocol, one per target and feature kind (results rows)
    paper: list[dict]  # the paper's protocol, the same settings (not rows: no patient-level folds)
    comparisons: pd.DataFrame  # DRF - CRF per target: paired bootstrap of the fold-mean AUC, Holm over targets
    paths: pd.DataFrame  # Figure 5: target, features, protocol, C, nonzero, auc
    null: pd.DataFrame  # labels permuted among patients: both protocols' AUCs

    def table(self) -> pd.DataFrame:
        paper = {(p["target"], p["features"]): p for p in self.paper}
        out = []
        for r in self.rows:
            if r["skipped"]:
                out.append({"target": r["target"], "features": r["features"], "skipped": r["skipped"]})
                continue
            p = paper[(r["target"], r["features"])]
            out.append({"target": r["target"], "features": r["features"], "patients": r["patients"],
                        "positive": r["positive"], "test AUC (ours)": r["test_auc"],
                        "95% CI": f"[{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}]", "train AUC": r["train_auc"],
                        "AUC (paper's protocol)": round(p["test_auc"], 4),
                        "its test images with the patient in training": f"{p['test_images_with_patient_in_training']}"
                                                                          f"/{p['test_images']}"})
        return pd.DataFrame(out)

    def structure(self) -> str:
        """What does not vary with the CPU: settings, patients, positives (nbval compares it)."""
        return "\n".join(f"{r['target']} {r['features']}: skipped ({r['skipped']})" if r["skipped"] else
                         f"{r['target']} {r['features']}: {r['patients']} patients, {r['positive']} positive, "
                         f"{len(r['folds'])} folds" for r in self.rows)

    def save_figures(self, folder, stem: str) -> None:
        if len(self.paths):
            plots.save(plots.auc_by_nonzero(self.paths), Path(folder), f"{stem}_figure5")


def _skipped_row(y: pd.Series, target: str, kind: str, P) -> dict | None:
    """The skipped row of a target with fewer patients of a class than folds, else None."""
    counts = np.bincount(y.to_numpy(), minlength=2)
    if counts.min() >= P.n_folds:
        return None
    return make_row("receptors", EXTRACTOR[kind], target=target, features=kind, protocol="nested",
                    skipped=f"{target}: {counts[1]} positive and {counts[0]} negative patients, fewer than the "
                            f"{P.n_folds} folds need in each class")


def _receptor_cv(x: pd.DataFrame, y: pd.Series, target: str, kind: str, P) -> tuple:
    """Our protocol for one target and feature kind: (row, AUC-sparsity path rows, CVResult)."""
    cv, chosen = receptors.nested_cv(x, y, P.n_folds, P.repeats, P.seed, P.n_boot)
    row = make_row("receptors", EXTRACTOR[kind], cv=cv, target=target, features=kind, protocol="nested",
                   patients=int(len(cv.oof_labels)), positive=int(cv.oof_labels.sum()),
                   chosen=receptors.chosen_list(chosen))
    paths = [{"target": target, "features": kind, "protocol": "nested", **r}
             for r in receptors.path(x, y, P.n_folds, P.seed).to_dict("records")]
    return row, paths, cv


def _paper_protocol(images: tuple, target: str, kind: str, P) -> tuple[dict, list[dict]]:
    """Liu & Hu's protocol for one target and feature kind: (its entry, its AUC-sparsity path rows)."""
    p = receptors.paper(*images, P.seed)
    return {"target": target, "features": kind, **p}, [{"target": target, "features": kind, "protocol": "paper", **r}
                                                       for r in p["per_C"]]


def _permuted(y: pd.Series, seed: int) -> pd.Series:
    """`y` permuted among its patients (each patient keeps one label for all its slices)."""
    return pd.Series(np.random.default_rng(seed).permutation(y.to_numpy()), index=y.index)


def _null_jobs(feats: ImageFeatures, y: pd.Series, P, kind: str, n: int, protocol: str):
    """The label-permuted null's jobs of one protocol ("ours" or "paper"): ((protocol, permutation), call) each."""
    x = feats.per_patient(kind) if protocol == "ours" else None
    for i in range(n):
        perm = _permuted(y, P.seed + i)
        if protocol == "ours":
            yield (protocol, i), delayed(_nested_auc)(x, perm, P)
        else:
            yield (protocol, i), delayed(_paper_auc)(_image_rows(feats, kind, perm), P.seed)


def _nested_auc(x: pd.DataFrame, y: pd.Series, P) -> float:
    return receptors.nested(x, y, P.n_folds, 1, P.seed, n_boot=0)["test_auc"]


def _paper_auc(images: tuple, seed: int) -> float:
    return receptors.paper(*images, seed)["test_auc"]


def _null_table(target: str, kind: str, done: dict, n: int) -> pd.DataFrame:
    return pd.DataFrame([{"target": target, "features": kind, "permutation": i,
                          "ours (patient folds)": done["ours", i], "paper's protocol": done["paper", i]}
                         for i in range(n)])


def _run(keyed_jobs, n_jobs: int, desc: str, total: int, progress: bool) -> dict:
    """Runs ((key, delayed call), ...) in `n_jobs` processes, in the order given (put the longest first: the pool
    then ends with the short ones); returns key -> result."""
    keys: list = []

    def calls():
        for key, call in keyed_jobs:  # lazily: each image table is built when its job is sent
            keys.append(key)
            yield call
    out = Parallel(n_jobs=max(1, n_jobs), return_as="generator")(calls())
    results = list(tqdm(out, total=total, desc=desc, disable=not progress))
    return dict(zip(keys, results))


def receptor_study(feats: ImageFeatures, labels: pd.DataFrame, P: SimpleNamespace,
                   progress: bool = True) -> ReceptorStudy:
    """Each target of `labels` (patients x targets, NaN = no label) from the patient-mean DRFs and CRFs: L1 logistic
    regression under patient-level nested CV (ours, the rows), under Liu & Hu's image split (labelled as theirs),
    the paired DRF-CRF comparison, the AUC-sparsity paths of both protocols and a label-permuted null (the first
    target whose DRF row runs, `NULL_PERMUTATIONS` times). All of it runs as one pool of `n_jobs` processes, the
    image-level fits on the 4096 DRFs first (they take most of the time)."""
    settings = [(t, k) for t in labels.columns for k in KINDS]
    ys = {t: labels[t].dropna().astype(int) for t in labels.columns}
    skipped = {(t, k): _skipped_row(ys[t], t, k, P) for t, k in settings}
    ran = [s for s in settings if skipped[s] is None]
    null_target = next((t for t, k in ran if k == "DRF"), None)
    tables = {k: feats.per_patient(k) for k in KINDS}
    n_null = NULL_PERMUTATIONS if null_target is not None else 0
    y_null = ys[null_target] if null_target is not None else None

    def jobs():
        for kind in KINDS:  # DRF, then CRF
            yield from ((("paper", t, k), delayed(_paper_protocol)(_image_rows(feats, k, ys[t]), t, k, P))
                        for t, k in ran if k == kind)
            if kind == "DRF" and n_null:
                yield from ((("null",) + key, call) for key, call in _null_jobs(feats, y_null, P, kind, n_null,
                                                                                   "paper"))
            yield from ((("cv", t, k), delayed(_receptor_cv)(tables[k], ys[t], t, k, P)) for t, k in ran if k == kind)
            if kind == "DRF" and n_null:
                yield from ((("null",) + key, call) for key, call in _null_jobs(feats, y_null, P, kind, n_null,
                                                                                   "ours"))
    done = _run(jobs(), P.n_jobs, "LASSO per target and null", 2 * len(ran) + 2 * n_null, progress)
    rows, paper, paths, cvs = [], [], [], {}
    for s in settings:
        if skipped[s] is not None:
            rows.append(skipped[s])
            continue
        row, nested_paths, cvs[s] = done[("cv", *s)]
        entry, paper_paths = done[("paper", *s)]
        rows.append(row)
        paper.append(entry)
        paths += nested_paths + paper_paths
    comps = []
    for target in [t for t in labels.columns if (t, "DRF") in cvs and (t, "CRF") in cvs]:
        test = evaluation.paired_fold_mean_bootstrap(_per_fold(cvs[target, "DRF"]), _per_fold(cvs[target, "CRF"]),
                                                     P.n_boot, P.seed)
        comps.append({"target": target, "DRF": round(test["auc_a"], 4), "CRF": round(test["auc_b"], 4),
                      "DRF - CRF": round(test["diff"], 4), "95% CI": [round(v, 4) for v in test["ci95"]],
                      "p": test["p"]})
    comparisons = pd.DataFrame(comps, columns=["target", "DRF", "CRF", "DRF - CRF", "95% CI", "p"])
    comparisons["p (Holm)"] = evaluation.holm(comparisons.p.to_numpy()) if len(comps) else []
    null = (_null_table(null_target, "DRF", {k[1:]: v for k, v in done.items() if k[0] == "null"}, n_null)
            if n_null else pd.DataFrame())
    return ReceptorStudy(rows, paper, comparisons, pd.DataFrame(paths), null)


def null_inflation(feats: ImageFeatures, labels: pd.DataFrame, P: SimpleNamespace, kind: str = "DRF",
                   n: int = NULL_PERMUTATIONS) -> pd.DataFrame:
    """The first target's labels permuted among its patients (`n` seeds; each patient keeps one label for all its
    slices): what each protocol reports when the images carry no information. Ours stays near 0.5; the paper's
    image split, with a patient's slices on both sides and the penalty picked on the test part, does not.
    (`receptor_study` runs the same jobs in its own pool.)"""
    target = labels.columns[0]
    y = labels[target].dropna().astype(int)
    jobs = chain(_null_jobs(feats, y, P, kind, n, "paper"), _null_jobs(feats, y, P, kind, n, "ours"))
    return _null_table(target, kind, _run(jobs, P.n_jobs, "null", 2 * n, False), n)


def receptor_entries(study: ReceptorStudy, feats: ImageFeatures, reasons: pd.DataFrame) -> dict:
    """The top-level entries of 07's results file beside its rows."""
    return {"paper_protocol": [{k: v for k, v in p.items() if k != "per_C"} | {"per_C": p["per_C"]}
                               for p in study.paper],
            "paper_protocol_note": receptors.PROTOCOLS["paper"],
            "comparisons": study.comparisons.to_dict("records"),
            "figure5": study.paths.to_dict("records"),
            "null_permutations": study.null.to_dict("records"),
            "features": {**feats.counts(), "crf_classes": list(CRF_CLASSES),
                         "crf_roi": CRF_ROI if feats.mask_source is None else CRF_ROI_MASKED,
                         **({} if feats.mask_source is None else {"mask_source": feats.mask_source}),
                         "dae": vars(feats.config), "dae_losses": [round(v, 6) for v in feats.losses],
                         "dae_mean_image_mse": feats.mean_image_mse},
            "unlabelled": {t: int((reasons[t] != "").sum()) for t in reasons.columns}}



# ---------------------------------------------------------------------------------------------------------------
# Notebook 08: imaging features against gene programmes


def permuted(genes: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The same expression profiles dealt to the patients in a random order: the gene-image link broken (what the
    generator's `gene_link=False` writes), everything else kept. The null of `association_study` draws such orders
    `gene_permutations` times (`associations.permutation_null`; its first is this one at the same seed)."""
    order = np.random.default_rng(seed).permutation(len(genes))
    return pd.DataFrame(genes.to_numpy()[order], index=genes.index, columns=genes.columns)


@dataclass
class AssociationStudy:
    tables: dict[str, pd.DataFrame]  # kind -> every (feature, factor) pair: slope, t, p, q, n (associations.COLUMNS)
    programmes: list[str]
    alpha: float
    mixed_check: pd.DataFrame  # OLS on patient means against MixedLM over the slices, random samples of pairs
    null_counts: pd.DataFrame  # per kind: observed counts beside the permutation null's (associations.null_summary)
    null_draws: pd.DataFrame | None = None  # per kind and permutation: FDR-significant and nominal counts

    def counts(self) -> pd.DataFrame:
        """Per programme (and all genes together): features associated at FDR alpha, DRF and CRF."""
        out = {}
        for kind, t in self.tables.items():
            sig = t[t.q < self.alpha]
            per = sig[sig.factor.isin(self.programmes)].groupby("factor").feature.nunique()
            genes = sig[~sig.factor.isin(self.programmes)]
            out[kind] = pd.concat([per.reindex(self.programmes, fill_value=0),
                                   pd.Series({"any gene": genes.feature.nunique()})])
        features = pd.Series({k: t.feature.nunique() for k, t in self.tables.items()}, name="features tested")
        return pd.DataFrame(out).T.assign(**{"features tested": features}).rename_axis("features")

    def mixed_agreement(self) -> pd.DataFrame:
        """Per kind and sample of the mixed check: pairs, the share whose slopes have the same sign, the correlation
        of the slopes (the two are on different scales: patient means against slices), and the share on the same
        side of alpha."""
        if self.mixed_check.empty:
            return pd.DataFrame()
        rows = []
        for (kind, sample), c in self.mixed_check.groupby(["features", "sample"], sort=False):
            ols, mixed = c["slope (OLS, patient means)"], c["slope (mixed, slices)"]
            rows.append({"features": kind, "sample": sample, "pairs": len(c),
                         "same sign": float((np.sign(ols) == np.sign(mixed)).mean()),
                         "slope correlation": float(ols.corr(mixed)) if len(c) > 2 else np.nan,
                         "same side of alpha": float(((c["p (OLS)"] < self.alpha)
                                                      == (c["p (mixed)"] < self.alpha)).mean())})
        return pd.DataFrame(rows)

    def top(self, kind: str, n: int = 10) -> pd.DataFrame:
        t = self.tables[kind]
        return t[t.factor.isin(self.programmes)].nsmallest(n, "p").reset_index(drop=True)

    def heatmap_matrix(self, kind: str, n: int = 25) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(slopes, q) of the `n` features with the smallest q against any programme, features x programmes."""
        t = self.tables[kind]
        t = t[t.factor.isin(self.programmes)]
        best = t.groupby("feature").q.min().nsmallest(n).index
        sub = t[t.feature.isin(best)]
        slopes = sub.pivot(index="feature", columns="factor", values="slope").loc[best, self.programmes]
        q = sub.pivot(index="feature", columns="factor", values="q").loc[best, self.programmes]
        return slopes, q

    def save_figures(self, folder, stem: str) -> None:
        for kind in self.tables:
            slopes, q = self.heatmap_matrix(kind)
            plots.save(plots.association_heatmap(slopes, q, self.alpha, f"{kind}: slope against each programme "
                                                                         f"(* q < {self.alpha:g})"),
                       Path(folder), f"{stem}_heatmap_{kind}")
        plots.save(plots.volcano({k: t[t.factor.isin(self.programmes)] for k, t in self.tables.items()},
                                 self.alpha), Path(folder), f"{stem}_volcano")
        plots.save(plots.association_counts(self.counts().drop(columns="features tested")), Path(folder),
                   f"{stem}_counts")
        if self.null_draws is not None:
            plots.save(plots.association_null(self.null_draws, self.null_counts, self.alpha), Path(folder),
                       f"{stem}_null")


def _mixed_sample(table: pd.DataFrame, alpha: float, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """`n` pairs drawn at random from the FDR-significant pairs and `n` from all pairs (fewer when fewer exist),
    `sample` naming which: the check of the OLS is then not confined to the pairs it found strongest. (A constant
    factor's pairs, p NaN, are not drawn.)"""
    table = table[table.p.notna()]
    significant = table[table.q < alpha]
    return pd.concat([significant.sample(min(n, len(significant)), random_state=rng).assign(sample="FDR-significant"),
                      table.sample(min(n, len(table)), random_state=rng).assign(sample="all pairs")],
                     ignore_index=True)


def _mixed_rows(feats: ImageFeatures, kind: str, pairs: pd.DataFrame, factors: pd.DataFrame) -> list[dict]:
    """Each pair refitted as a mixed model over the slices (a random intercept per patient) beside its OLS."""
    image = feats.table(kind)
    keep = feats.meta.patient.astype(str).isin(factors.index).to_numpy()
    rows = []
    for r in pairs.itertuples(index=False):
        m = associations.mixed(image.loc[keep, [r.feature]], feats.meta.patient[keep], factors[[r.factor]])
        rows.append({"features": kind, "sample": r.sample, "feature": r.feature, "factor": r.factor,
                     "slope (OLS, patient means)": r.slope, "p (OLS)": r.p, "q (OLS)": r.q,
                     "slope (mixed, slices)": float(m.slope.iloc[0]), "p (mixed)": float(m.p.iloc[0])})
    return rows


def association_study(feats: ImageFeatures, genes: pd.DataFrame, P: SimpleNamespace) -> AssociationStudy:
    """Every DRF and CRF (patient means) against every gene and programme score (OLS, one row per patient; BH over
    all pairs of each kind); `mixed_pairs` pairs drawn at random from the FDR-significant ones and as many from all
    pairs refitted as mixed models over the slices; and the counts with the gene table permuted among the patients
    `gene_permutations` times (the null)."""
    sets = gene_sets(genes.columns)
    factors = pd.concat([programme_scores(genes, sets), genes], axis=1)  # (a programme score permutes with its genes)
    rng = np.random.default_rng(P.seed)
    tables, checks, null, draws = {}, [], {}, []
    for kind in KINDS:
        x = feats.per_patient(kind).loc[genes.index]
        x = x.loc[:, x.std() > 0]
        tables[kind] = associations.ols(x, factors)
        nd = associations.permutation_null(x, factors, P.gene_permutations, P.fdr_alpha, P.seed)
        null[kind] = associations.null_summary(tables[kind], nd, P.fdr_alpha)
        draws.append(nd.reset_index().assign(features=kind))
        if P.mixed_pairs:
            checks += _mixed_rows(feats, kind, _mixed_sample(tables[kind], P.fdr_alpha, P.mixed_pairs, rng), factors)
    return AssociationStudy(tables, list(sets), P.fdr_alpha, pd.DataFrame(checks),
                            pd.DataFrame.from_dict(null, orient="index").rename_axis("features"),
                            pd.concat(draws, ignore_index=True))


def association_entries(study: AssociationStudy, genes: pd.DataFrame, lacking: list[str], source: str) -> dict:
    """08's results-file entries: counts, the strongest pairs, the mixed-model check (random samples of the
    FDR-significant pairs and of all pairs) and its agreement, and the permutation null beside the observed counts."""
    return {"gene_table": source, "genes": int(genes.shape[1]), "patients_with_genes": int(len(genes)),
            "patients_without_genes": lacking, "programmes": {k: v for k, v in gene_sets(genes.columns).items()},
            "fdr_alpha": study.alpha, "counts": study.counts().reset_index().to_dict("records"),
            "top": {k: study.top(k).to_dict("records") for k in study.tables},
            "mixed_check": study.mixed_check.to_dict("records"),
            "mixed_agreement": study.mixed_agreement().to_dict("records"),
            "null_permuted_genes": study.null_counts.reset_index().to_dict("records")}


# ---------------------------------------------------------------------------------------------------------------
# Notebook 09: from genes to imaging phenotypes, and gene masking (Smedley et al. 2021)

# Conventional features binarised at the cohort median as imaging phenotypes, fixed in advance (enhancement level:
# the slice's mean subtraction in units of the pre-contrast 99th percentile; its spread, in grey levels of a fixed
# bin width; and two texture summaries of the slice).
PHENOTYPE_CRFS = ("firstorder_Mean", "firstorder_Entropy", "glcm_Contrast", "glszm_ZonePercentage")
TRUTH_PHENOTYPES = ("wash_in", "rim")  # synthetic cohorts only: the lesion kinetics the generator drew
MODELS = ("gene network", "L1 logistic", "L2 logistic", "random forest", "SVM")


def phenotypes(feats: ImageFeatures, labels: pd.DataFrame, data_dir: Path | None) -> pd.DataFrame:
    """Patients x binary phenotypes: the receptor labels, PHENOTYPE_CRFS above their cohort median, and on a
    synthetic cohort the true wash-in and rim enhancement above theirs (named "... (truth)")."""
    crf = feats.per_patient("CRF")
    out = labels.copy()
    for name in PHENOTYPE_CRFS:
        if name in crf:
            out[name] = (crf[name] > crf[name].median()).astype(float).loc[out.index]
    lesions = Path(data_dir) / "synthetic_lesions.csv" if data_dir else None
    if lesions is not None and lesions.is_file():
        truth = pd.read_csv(lesions).astype({"patient": str}).groupby("patient")[list(TRUTH_PHENOTYPES)].mean()
        for name in TRUTH_PHENOTYPES:
            t = truth[name].reindex(out.index)
            out[f"{name} (truth)"] = (t > t.median()).astype(float).where(t.notna())
    return out


def _baseline(name: str, seed: int):
    """The scikit-learn models beside the network, at settings fixed in advance (scikit-learn's default penalty C=1,
    100 trees): none is tuned, as the network is not."""
    # liblinear shuffles its coordinates: seeded, or the same run gives another L1 fit (numpy's global state)
    model = {"L1 logistic": LogisticRegression(**_l1(), C=1.0, solver="liblinear", max_iter=2000, random_state=seed),
             "L2 logistic": LogisticRegression(C=1.0, max_iter=2000),
             "random forest": RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1),
             "SVM": SVC(kernel="rbf", C=1.0)}[name]
    return make_pipeline(StandardScaler(), model)


def _scores(model, x) -> np.ndarray:
    return model.decision_function(x) if hasattr(model, "decision_function") else model.predict_proba(x)[:, 1]


@dataclass
class MaskingStudy:
    aucs: pd.DataFrame  # model, phenotype, test AUC (fold mean), ci95
    masking: pd.DataFrame  # phenotype, gene set, kind (programme/random/...), matched to, AUC (test-fold mean)
    summary: pd.DataFrame  # phenotype: best programme, its AUC, the null of random sets, p (max over programmes)
    programmes: pd.DataFrame  # phenotype, programme: AUC, p against random sets of its size, Holm-adjusted
    patients: int
    folds: list[dict]

    def table(self) -> pd.DataFrame:
        return self.aucs.pivot(index="phenotype", columns="model", values="test AUC").loc[
            list(dict.fromkeys(self.aucs.phenotype)), list(MODELS)]

    def save_figures(self, folder, stem: str) -> None:
        plots.save(plots.masking(self.masking), Path(folder), f"{stem}_masking")


def _masked_rows(fitted, x_test: pd.DataFrame, y_test: pd.DataFrame, mean: pd.Series, sets: dict, matched: str,
                 fold: int, kind) -> list[dict]:
    """The masking table's rows of one fold: every phenotype's test AUC with each of `sets` kept."""
    table = masking.mask_aucs(fitted.predict, x_test, y_test, mean, sets)
    return [{"fold": fold, "phenotype": ph, "gene set": k, "AUC": v, "kind": kind(k), "matched to": matched}
            for ph in table.columns for k, v in table[ph].items()]


def masking_study(genes: pd.DataFrame, pheno: pd.DataFrame, P: SimpleNamespace, progress: bool = True) -> MaskingStudy:
    """The gene network and the scikit-learn baselines from genes to every phenotype, on the same patient-level folds
    (stratified by the first phenotype); then, on each fold's held-out patients, the network scored with one gene set
    kept and the others set to their training mean: each programme, and `random_sets` random sets of its size (the
    same sets in every fold), tested by `masking.masking_summary`."""
    keep = pheno.dropna().index.intersection(genes.index)
    x, y = genes.loc[keep], pheno.loc[keep].astype(int)
    folds = evaluation.patient_folds(list(keep), y.iloc[:, 0].to_numpy(), P.n_folds, 1, P.seed)
    sets = gene_sets(genes.columns)
    null_sets = masking.matched_random_sets(x.columns, sets, P.random_sets, seed=P.seed)
    named = {"all genes": list(x.columns), **sets, "no genes": []}
    cfg = masking.GeneNetConfig(epochs=P.gene_epochs, pretrain=P.gene_pretrain, seed=P.seed)
    per_fold: dict = {}
    mask_rows = []
    for fold in tqdm(folds, desc="gene network per fold", disable=not progress):
        train, test = list(map(str, fold["train_patients"])), list(map(str, fold["test_patients"]))
        fitted = masking.fit_gene_net(x.loc[train], y.loc[train], cfg)
        logits = fitted.predict(x.loc[test])
        mean = x.loc[train].mean()
        for j, ph in enumerate(y.columns):
            per_fold.setdefault(("gene network", ph), []).append((y.loc[test, ph], pd.Series(logits[:, j], index=test)))
            for name in MODELS[1:]:
                if y.loc[train, ph].nunique() < 2:
                    continue
                model = _baseline(name, P.seed).fit(x.loc[train].to_numpy(), y.loc[train, ph].to_numpy())
                per_fold.setdefault((name, ph), []).append(
                    (y.loc[test, ph], pd.Series(_scores(model, x.loc[test].to_numpy()), index=test)))
        mask_rows += _masked_rows(fitted, x.loc[test], y.loc[test], mean, named, "", fold["fold"],
                                  lambda k: "programme" if k in sets else k)
        for prog, rand in null_sets.items():
            kind = f"random, {len(sets[prog])} genes"
            mask_rows += _masked_rows(fitted, x.loc[test], y.loc[test], mean, rand, prog, fold["fold"],
                                      lambda k, kind=kind: kind)
    aucs = []
    for (model, ph), pf in per_fold.items():
        pf = [(a, b) for a, b in pf if a.nunique() == 2]
        if not pf:
            continue
        ci = evaluation.fold_mean_bootstrap_ci(pf, P.n_boot, P.seed) if P.n_boot else (np.nan, np.nan)
        aucs.append({"model": model, "phenotype": ph, "test AUC": round(evaluation.fold_mean_auc(pf), 4),
                     "ci95": [round(float(v), 4) for v in ci]})
    m = (pd.DataFrame(mask_rows).dropna(subset=["AUC"])  # a test fold with one class of a phenotype: left out
         .groupby(["phenotype", "gene set", "kind", "matched to"], sort=False).AUC.mean().reset_index())
    summary, programmes = masking.masking_summary(m)
    return MaskingStudy(pd.DataFrame(aucs), m, summary, programmes, len(keep),
                        [{k: f[k] for k in ("repeat", "fold", "train_patients", "test_patients")} for f in folds])
