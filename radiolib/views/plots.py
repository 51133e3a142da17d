"""Figures of the study. Each function takes tables/arrays and returns a matplotlib Figure; `save` writes it."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import roc_auc_score, roc_curve

from ..data.descriptor import DUKE_CHANNELS

CLASS_NAMES = {1: "label 1", 0: "label 0"}  # neutral: pass the run's `descriptor.class_names` instead
CHANNEL_NAMES = DUKE_CHANNELS


def save(fig, figures_dir: Path, name: str) -> None:
    """Save a figure as `figures_dir/name.png` (no software/date metadata: same figure, same bytes)."""
    fig.savefig(Path(figures_dir) / f"{name}.png", dpi=110, bbox_inches="tight", metadata={"Software": None})


def to_rgb(patch: np.ndarray, vmax: float | None = None) -> np.ndarray:
    """(3, H, W) subtraction channels -> (H, W, 3) image in [0, 1] (negative enhancement clipped)."""
    p = np.asarray(patch, np.float32)
    vmax = vmax or max(float(np.percentile(p, 99.5)), 1e-6)
    return np.clip(np.moveaxis(p, 0, -1) / vmax, 0, 1)


def resampling(before: np.ndarray, after: np.ndarray, spacing_before: float, patient: str, z: int,
               spacing_after: float):
    """One pre-contrast slice before and after in-plane resampling, drawn in millimetres."""
    title = f"{patient}: pre-contrast slice {z + 1}"
    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    panels = ((axes[0], before, spacing_before, "acquired"), (axes[1], after, spacing_after, "resampled"))
    for ax, img, sp, name in panels:
        ny, nx = img.shape
        ax.imshow(img, cmap="gray", extent=(0, nx * sp, ny * sp, 0))
        ax.set_title(f"{name}: {nx}x{ny} px at {sp:.2f} mm")
        ax.set_xlabel("mm")
    fig.suptitle(title)
    return fig


def channels(vol_channels: np.ndarray, z: int, box=None, title: str = "", names=CHANNEL_NAMES):
    """The three input channels of one slice (DCE: subtractions), with the lesion box (cy, cx, h, w) drawn."""
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
    if box is not None:  # scale to the lesion, not to the heart's much stronger enhancement
        cy, cx, h, w = box
        y0, x0 = int(max(cy - h, 0)), int(max(cx - w, 0))
        vmax = float(vol_channels[:, z, y0:int(cy + h) + 1, x0:int(cx + w) + 1].max()) or 1.0
    else:
        vmax = float(np.percentile(vol_channels[:, z], 99.5)) or 1.0
    for c, ax in enumerate(axes):
        im = ax.imshow(vol_channels[c, z], cmap="magma", vmin=0, vmax=vmax)
        ax.set_title(names[c])
        ax.axis("off")
        if box is not None:
            cy, cx, h, w = box
            ax.add_patch(Rectangle((cx - w / 2, cy - h / 2), w, h, fill=False, ec="cyan", lw=1))
    fig.colorbar(im, ax=axes, shrink=0.8, label="signal / scale (pre-contrast p99)")
    fig.suptitle(title)
    return fig


def montage(patches: np.ndarray, labels, n_per_class: int = 8, title: str = "", class_names=None):
    """A grid of patches, one row per class named by `class_names` (the descriptor's; RGB = the three channels)."""
    class_names = class_names or CLASS_NAMES
    labels = np.asarray(labels)
    fig, axes = plt.subplots(2, n_per_class, figsize=(1.4 * n_per_class, 3.4))
    for row, cls in enumerate((1, 0)):
        idx = np.flatnonzero(labels == cls)[:n_per_class]
        for j in range(n_per_class):
            ax = axes[row, j]
            ax.axis("off")
            if j < len(idx):
                ax.imshow(to_rgb(patches[idx[j]]))
        axes[row, 0].set_title(class_names[cls], loc="left", fontsize=9)
    fig.suptitle(title)
    return fig


def augmentations(originals: list[np.ndarray], augmented: list[list[np.ndarray]], title: str = ""):
    """Each original training patch followed by its augmented copies (translation + rotation)."""
    n, k = len(originals), max(len(a) for a in augmented)
    fig, axes = plt.subplots(n, k + 1, figsize=(1.5 * (k + 1), 1.6 * n), squeeze=False)
    for i in range(n):
        for j, p in enumerate([originals[i]] + list(augmented[i])):
            axes[i, j].imshow(to_rgb(p))
            axes[i, j].axis("off")
        axes[i, 0].set_title("original" if i == 0 else "", fontsize=8)
    for j in range(1, k + 1):
        axes[0, j].set_title(f"augmented {j}", fontsize=8)
    fig.suptitle(title)
    return fig


def test_layout(vol_channels: np.ndarray, layout: pd.DataFrame, px: int, title: str = ""):
    """The 5 test slices with their 25 patch squares (4 corners and the middle of the lesion)."""
    slices = sorted(layout.slice.unique())
    fig, axes = plt.subplots(1, len(slices), figsize=(2.6 * len(slices), 2.9))
    vmax = float(np.percentile(vol_channels[0, slices], 99.5)) or 1.0
    for ax, z in zip(np.atleast_1d(axes), slices):
        ax.imshow(vol_channels[0, z], cmap="gray", vmin=0, vmax=vmax)
        for r in layout[layout.slice == z].itertuples():
            color = "yellow" if r.spot == "middle" else "cyan"
            ax.add_patch(Rectangle((r.cx - px / 2, r.cy - px / 2), px, px, fill=False, ec=color, lw=0.8))
        ax.set_title(f"slice {z + 1}", fontsize=9)
        ax.axis("off")
    fig.suptitle(title)
    return fig


def class_balance(table: pd.DataFrame, index: pd.DataFrame, class_names=None):
    """Patients and patches per class, named by `class_names` (the run's descriptor)."""
    class_names = class_names or CLASS_NAMES
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    pats = table.label.map(class_names).value_counts()
    axes[0].bar(pats.index, pats.values, color=["#4c72b0", "#dd8452"][:len(pats)])
    axes[0].set_title("patients")
    counts = index.assign(cls=index.label.map(class_names)).groupby(["role", "cls"]).size().unstack(fill_value=0)
    counts.plot.bar(ax=axes[1], rot=0)
    axes[1].set_title("patches per role")
    axes[1].set_xlabel("")
    fig.tight_layout()
    return fig


def learning_curves(curves: list[dict], title: str = "", ax=None):
    """Figure 2 style: train and test AUC per epoch, one thin line per fold and the mean in bold."""
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.4))
    for key, color in (("train_auc", "#4c72b0"), ("test_auc", "#dd8452")):
        runs = [c for c in curves if c and c.get(key)]
        if not runs:
            continue
        epochs = runs[0]["epoch"]
        values = np.array([r[key] for r in runs], dtype=float)
        for v in values:
            ax.plot(epochs, v, color=color, alpha=0.2, lw=0.8)
        ax.plot(epochs, np.nanmean(values, axis=0), color=color, lw=2.2, label=key.replace("_auc", " AUC"))
    ax.axhline(0.5, color="gray", lw=0.8, ls=":")
    ax.set_ylim(0.3, 1.0)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers, even for 2 of them
    ax.set_ylabel("AUC (patient level)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    return fig if fig is not None else ax.figure


def curve_grid(named_curves: dict[str, list[dict]], title: str = ""):
    """Several learning-curve panels side by side (one per network or learning rate)."""
    n = len(named_curves)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.4), squeeze=False)
    for ax, (name, curves) in zip(axes[0], named_curves.items()):
        learning_curves(curves, name, ax=ax)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def roc_curves(named_scores: dict[str, tuple], title: str = ""):
    """ROC curves of patient-level out-of-fold scores: {name: (labels, scores)}."""
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    for name, (y, s) in named_scores.items():
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, lw=1.5, label=f"{name} (AUC {roc_auc_score(y, s):.2f})")
    ax.plot([0, 1], [0, 1], color="gray", ls=":", lw=0.8)
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    return fig


def layerwise(table: pd.DataFrame, paper_test: dict | None = None, title: str = "", reference: str = "paper"):
    """Figure 3 style: train and test AUC per GoogLeNet layer for each pretraining source, the `reference` paper's
    test AUC (`paper_test`, layer -> AUC) where given."""
    fig, ax = plt.subplots(figsize=(9, 3.8))
    layers = list(dict.fromkeys(table.layer))
    x = np.arange(len(layers))
    for (source, rows), color in zip(table.groupby("source", sort=False), ("#4c72b0", "#55a868", "#8172b3")):
        rows = rows.set_index("layer").reindex(layers)
        ax.plot(x, rows.test_auc, "o-", color=color, label=f"{source}: test")
        ax.plot(x, rows.train_auc, "o:", color=color, alpha=0.5, label=f"{source}: train")
    if paper_test:
        ax.plot(x, [paper_test.get(layer, np.nan) for layer in layers], "s--", color="#c44e52",
                label=f"{reference}: test")
    ax.axhline(0.5, color="gray", lw=0.8, ls=":")
    ax.set_xticks(x, layers, rotation=35, ha="right", fontsize=8)
    ax.set_ylim(0.3, 1.02)
    ax.set_ylabel("AUC (patient level)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    fig.tight_layout()
    return fig


def feature_maps(maps: dict, layer: str, n_channels: int = 16):
    """The first channels of one layer's activations for one patch per class: {class name: (C, H, W)}."""
    fig, axes = plt.subplots(len(maps), n_channels, figsize=(0.9 * n_channels, 1.1 * len(maps)), squeeze=False)
    for row, (name, m) in enumerate(maps.items()):
        for c in range(n_channels):
            ax = axes[row, c]
            ax.axis("off")
            if c < m.shape[0]:
                ax.imshow(m[c], cmap="viridis")
        axes[row, 0].set_title(name, loc="left", fontsize=8)
    fig.suptitle(f"{layer}: first {n_channels} feature maps", fontsize=10)
    return fig


# --- Radiogenomics (notebooks 07-09) ---------------------------------------------------------------------------


def dae_reconstructions(images: np.ndarray, noisy: np.ndarray, recon: np.ndarray, n: int = 6, title: str = ""):
    """Rows: the DAE's clean input, its noisy copy and the reconstruction, for `n` images."""
    n = min(n, len(images))
    fig, axes = plt.subplots(3, n, figsize=(1.5 * n, 4.8), squeeze=False)
    for row, (name, stack) in enumerate((("input", images), ("noisy", noisy), ("reconstruction", recon))):
        for j in range(n):
            axes[row, j].imshow(stack[j], cmap="gray", vmin=0, vmax=1)
            axes[row, j].set_xticks([])
            axes[row, j].set_yticks([])
        axes[row, 0].set_ylabel(name, fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def auc_by_nonzero(paths: pd.DataFrame, title: str = "AUC against non-zero features (Liu & Hu's Figure 5)"):
    """One panel per target: AUC against the number of non-zero LASSO coefficients along the penalty grid, DRF and
    CRF, our patient-level protocol (solid) and the paper's image split (dashed)."""
    targets = list(dict.fromkeys(paths.target))
    fig, axes = plt.subplots(1, len(targets), figsize=(2.9 * len(targets), 3.2), squeeze=False, sharey=True)
    colors = {"DRF": "#4c72b0", "CRF": "#dd8452"}
    for ax, target in zip(axes[0], targets):
        for (kind, protocol), rows in paths[paths.target == target].groupby(["features", "protocol"], sort=False):
            rows = rows.sort_values("nonzero")
            ax.plot(rows.nonzero.clip(lower=0.8), rows.auc, "o-" if protocol == "nested" else "s--", ms=3,
                    color=colors.get(kind), label=f"{kind}, {'ours' if protocol == 'nested' else 'paper split'}")
        ax.axhline(0.5, color="gray", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_title(target, fontsize=9)
        ax.set_xlabel("non-zero features")
    axes[0, 0].set_ylabel("test AUC")
    axes[0, -1].legend(fontsize=6, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def association_heatmap(slopes: pd.DataFrame, q: pd.DataFrame, alpha: float = 0.05, title: str = ""):
    """Features x programmes: the standardised slope (colour) and a star where q < alpha."""
    fig, ax = plt.subplots(figsize=(1.1 * slopes.shape[1] + 2.6, 0.24 * len(slopes) + 1.4))
    im = ax.imshow(slopes.to_numpy(float), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    for (i, j), value in np.ndenumerate(q.to_numpy(float)):
        if value < alpha:
            ax.text(j, i, "*", ha="center", va="center", fontsize=9)
    ax.set_xticks(range(slopes.shape[1]), slopes.columns, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(slopes)), slopes.index, fontsize=6)
    fig.colorbar(im, ax=ax, label="slope (standardised)", shrink=0.7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def volcano(tables: dict[str, pd.DataFrame], alpha: float = 0.05, title: str = "Volcano: every feature x programme"):
    """Slope against -log10 p, one panel per feature kind, the pairs with q < alpha in colour."""
    fig, axes = plt.subplots(1, len(tables), figsize=(4.2 * len(tables), 3.4), squeeze=False)
    for ax, (kind, t) in zip(axes[0], tables.items()):
        sig = t.q < alpha
        ax.scatter(t.slope[~sig], -np.log10(t.p[~sig]), s=3, color="#999999", alpha=0.5, label="q >= alpha")
        ax.scatter(t.slope[sig], -np.log10(t.p[sig]), s=5, color="#c44e52", label=f"q < {alpha:g}")
        ax.set_xlabel("slope (standardised)")
        ax.set_title(f"{kind}: {int(sig.sum())} of {len(t)} pairs", fontsize=9)
    axes[0, 0].set_ylabel("-log10 p")
    axes[0, -1].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def association_counts(counts: pd.DataFrame, title: str = "Features associated with each programme (FDR)"):
    """Bars: per programme, the number of associated features of each kind (rows of `counts`)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    x = np.arange(counts.shape[1])
    width = 0.8 / len(counts)
    for k, (kind, row) in enumerate(counts.iterrows()):
        ax.bar(x + k * width - 0.4 + width / 2, row.to_numpy(float), width, label=kind)
    ax.set_xticks(x, counts.columns, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("features")
    ax.set_yscale("symlog")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def association_null(draws: pd.DataFrame, summary: pd.DataFrame, alpha: float = 0.05,
                     title: str = "The gene table permuted among patients: pairs associated in each permutation"):
    """Per feature kind (columns) and count (rows: FDR-significant, nominal p < alpha): the permutations' counts
    (histogram), their 95th percentile (dashed) and the observed count (red), from `summary`'s "observed ..." and
    "... 95th pct" columns."""
    counts = ("significant", "nominal p < alpha")
    kinds = list(summary.index)
    fig, axes = plt.subplots(len(counts), len(kinds), figsize=(3.8 * len(kinds), 5.2), squeeze=False)
    for j, kind in enumerate(kinds):
        null = draws[draws.features == kind]
        for i, count in enumerate(counts):
            ax = axes[i, j]
            lo, hi = null[count].min(), null[count].max()  # integer counts: a bar per count when they are few
            ax.hist(null[count], bins=np.linspace(lo - 0.5, hi + 0.5, int(min(20, hi - lo + 1)) + 1), color="#999999",
                    label=f"{len(null)} permutations")
            ax.axvline(summary.loc[kind, f"{count} 95th pct"], color="k", ls="--", lw=1, label="95th percentile")
            ax.axvline(summary.loc[kind, f"observed {count}"], color="#c44e52", lw=2, label="observed")
            label = f"q < {alpha:g}" if count == "significant" else f"nominal p < {alpha:g}"
            ax.set_title(f"{kind}: pairs with {label}", fontsize=9)
            ax.set_xlabel("pairs")
    axes[0, 0].set_ylabel("permutations")
    axes[0, -1].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def masking(table: pd.DataFrame, title: str = "Gene masking: AUC with one gene set kept (held-out patients)"):
    """Per phenotype: each programme's AUC (dots), the random sets' AUCs (grey), all genes and chance (lines), and the
    95th percentile of the maximum over one random set per programme (dashed: the max statistic's 5% threshold)."""
    phenos = list(dict.fromkeys(table.phenotype))
    ncols = min(5, len(phenos))
    nrows = -(-len(phenos) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.7 * ncols, 3.3 * nrows), squeeze=False, sharey=True)
    for ax in axes.flat[len(phenos):]:
        ax.set_visible(False)
    for ax, ph in zip(axes.flat, phenos):
        rows = table[table.phenotype == ph]
        progs = rows[rows.kind == "programme"]
        rand = rows[rows.kind.str.startswith("random")]
        ax.scatter(np.random.default_rng(0).uniform(-0.3, 0.3, len(rand)) + len(progs), rand.AUC, s=4,
                   color="#aaaaaa", label="random sets")
        ax.scatter(range(len(progs)), progs.AUC, color="#4c72b0", zorder=3)
        ax.axhline(rows[rows["gene set"] == "all genes"].AUC.iloc[0], color="#55a868", lw=1, label="all genes")
        ax.axhline(0.5, color="gray", lw=0.8, ls=":")
        if "matched to" in rand:
            null_max = rand.pivot(index="gene set", columns="matched to", values="AUC").max(axis=1)
            ax.axhline(null_max.quantile(0.95), color="#c44e52", lw=1, ls="--", label="random max, 95th pct")
        ax.set_xticks(list(range(len(progs))) + [len(progs)], list(progs["gene set"]) + ["random"], rotation=45,
                      ha="right", fontsize=7)
        ax.set_title(ph, fontsize=8)
    for row in axes:
        row[0].set_ylabel("test AUC (fold mean)")
    axes.flat[len(phenos) - 1].legend(fontsize=6, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def at_a_glance(table: pd.DataFrame, ceiling: float | None = None, baseline: float | None = None,
                reference: str = "paper", title: str = "Pre-specified rows: test AUC and 95% CI"):
    """The report's first figure: each pre-specified row's test AUC with its CI (`table`: row, test AUC, ci low,
    ci high, paper), the `reference` paper's figure beside it where it has one, the ceiling and the handcrafted
    baseline as vertical lines, chance dotted."""
    fig, ax = plt.subplots(figsize=(9.5, 0.55 * max(len(table), 2) + 1.4))
    y = np.arange(len(table))[::-1]
    err = np.vstack([table["test AUC"] - table["ci low"], table["ci high"] - table["test AUC"]]).clip(min=0)
    ax.errorbar(table["test AUC"], y, xerr=np.nan_to_num(err), fmt="o", color="#4c72b0", capsize=3,
                label="this run (95% CI)")
    if table["paper"].notna().any():
        ax.plot(table["paper"], y, "s", color="#c44e52", mfc="none", label=reference)
    for value, name, style in ((ceiling, "ceiling (ground truth)", "--"), (baseline, "handcrafted baseline", "-.")):
        if value is not None and np.isfinite(value):
            ax.axvline(value, color="#555555", ls=style, lw=1, label=f"{name} {value:.2f}")
    ax.axvline(0.5, color="gray", ls=":", lw=0.8)
    ax.set_yticks(y, table["row"], fontsize=8)
    ax.set_xlim(0.2, 1.02)
    ax.set_xlabel("test AUC (patient level, fold mean)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the axes, never over a row
    fig.tight_layout()
    return fig
