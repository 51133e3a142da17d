"""The reference papers' numbers that stand beside our results rows: Zhu et al. 2019 for the Duke breast cohort
(Tables 3 to 6, Figure 2), Buda et al. 2020 for TCGA-LGG (the AUCs of its abstract). Which paper, and whether its
numbers apply at all, comes from the run's dataset descriptor (descriptor.py).
"""
from __future__ import annotations

import pandas as pd

from ..data.descriptor import BUDA, ZHU, Descriptor, duke_descriptor

# Table 3: training from scratch. (train AUC, test AUC, 95% CI)
TABLE3 = {
    "googlenet": (0.93, 0.56, (0.51, 0.60)),
    "googlenet_r": (0.94, 0.57, (0.51, 0.62)),
    "vgg_r": (0.98, 0.54, (0.46, 0.60)),
    "cifar": (0.75, 0.58, (0.52, 0.63)),
}
# Figure 2 row 1 (reduced VGGNet) and row 2 (transfer, FC learning rate): test AUC per learning rate.
LR_SWEEP_SCRATCH = {1e-4: 0.54, 5e-4: 0.53, 2e-5: 0.54}
LR_SWEEP_TRANSFER = {1e-3: 0.60, 5e-3: 0.60, 2e-4: 0.58}
# Table 4: transfer learning from ImageNet.
TABLE4 = {"googlenet": (0.93, 0.60, (0.55, 0.66)), "vgg16": (0.89, 0.59, (0.52, 0.65))}
# Table 5: off-the-shelf features (last FC layer) + SVM, keyed (network, patch size, kernel).
TABLE5 = {
    ("googlenet", 80, "poly"): (0.82, 0.58, None),
    ("googlenet", 120, "rbf"): (0.85, 0.59, None),
    ("googlenet", 120, "poly"): (0.84, 0.65, (0.57, 0.71)),
    ("googlenet", 120, "linear"): (0.74, 0.56, None),
    ("vgg16", 80, "poly"): (0.86, 0.55, None),
    ("vgg16", 120, "poly"): (0.83, 0.56, None),
}
# Table 6: layer-wise GoogLeNet features (pooled over x-y) + SVM.
TABLE6_LAYERS = ("conv1", "conv3", "inception3a", "inception3b", "inception4a", "inception4b", "inception4c",
                 "inception4d", "inception4e", "inception5a", "inception5b", "fc")
TABLE6_LENGTH = (64, 192, 256, 480, 512, 512, 512, 528, 832, 832, 1024, 1000)
TABLE6_TRAIN = (0.80, 0.90, 0.94, 0.93, 0.90, 0.86, 0.88, 0.88, 0.91, 0.88, 0.89, 0.84)
TABLE6_TEST = (0.60, 0.63, 0.61, 0.59, 0.58, 0.52, 0.54, 0.56, 0.58, 0.58, 0.60, 0.65)


# Buda et al. 2020 (seeds/002, abstract): cluster-of-clusters 2 vs others. No train AUC is given.
BUDA_SCRATCH = (None, 0.680, (0.538, 0.811))
BUDA_TRANSFER = {"domain": (None, 0.730, (0.605, 0.844)),  # pretrained on glioblastoma MRI (in-domain)
                 "imagenet": (None, 0.640, (0.521, 0.763))}
DIGITS = {ZHU: 2, BUDA: 3}  # as each paper reports them


def _zhu_value(row: dict) -> tuple | None:
    approach, net = row.get("approach"), row.get("network")
    if approach == "scratch":
        return TABLE3.get(net)
    if approach == "transfer":  # the paper's numbers are all from ImageNet weights, shown beside every source
        return TABLE4.get(net)
    if approach == "features":
        return TABLE5.get((net, row.get("patch_size"), row.get("kernel")))
    if approach == "layerwise" and row.get("layer") in TABLE6_LAYERS:
        i = TABLE6_LAYERS.index(row["layer"])
        return TABLE6_TRAIN[i], TABLE6_TEST[i], None
    return None


def _buda_value(row: dict) -> tuple | None:
    if row.get("approach") == "scratch":
        return BUDA_SCRATCH
    if row.get("approach") == "transfer":
        return BUDA_TRANSFER.get(row.get("source"))
    return None


def paper_value(row: dict, descriptor: Descriptor | None = None) -> tuple | None:
    """The reference paper's (train AUC, test AUC, CI) for one of our results rows, or None where it has no such row
    or the run's target is not the paper's task. `descriptor` None: the Duke default (Zhu et al.)."""
    d = descriptor or duke_descriptor()
    if d.table_of(row.get("approach")) is None:
        return None
    return {ZHU: _zhu_value, BUDA: _buda_value}.get(d.reference, lambda r: None)(row)


def column_name(rows: list[dict], descriptor: Descriptor | None = None) -> str:
    """Header of the reference column, e.g. "Zhu et al. 2019 (luminal A: another target) test AUC (ImageNet)":
    the paper's target is named where the run's is another (`Descriptor.reference_label`)."""
    d = descriptor or duke_descriptor()
    imagenet = d.reference == ZHU and any(r.get("source") not in (None, "none") for r in rows)
    return f"{d.reference_label} test AUC" + (" (ImageNet)" if imagenet else "")


def _fmt(p: tuple | None, digits: int) -> str:
    if not p:
        return "-"
    return f"{p[1]:.{digits}f}" + (f" [{p[2][0]:.{digits}f}, {p[2][1]:.{digits}f}]" if p[2] else "")


def beside(table: pd.DataFrame, rows: list[dict], descriptor: Descriptor | None = None) -> pd.DataFrame:
    """A results table with the reference paper's test AUC (and CI) in a column beside ours; no column when the
    paper has no table for the run's target."""
    d = descriptor or duke_descriptor()
    out = table.copy()
    if not any(d.table_of(r.get("approach")) for r in rows):
        return out
    out[column_name(rows, d)] = [_fmt(paper_value(r, d), DIGITS.get(d.reference, 2)) for r in rows]
    return out


def beside_sweep(table: pd.DataFrame, approach: str, rates: list[float], descriptor: Descriptor | None = None):
    """A learning-rate sweep table with the reference's Figure 2 test AUC per rate, where the paper has one."""
    d = descriptor or duke_descriptor()
    sweeps = {"scratch": LR_SWEEP_SCRATCH, "transfer": LR_SWEEP_TRANSFER} if d.reference == ZHU else {}
    if d.table_of(approach) is None or approach not in sweeps:
        return table
    return table.assign(**{f"{d.reference_label} test AUC": [sweeps[approach].get(lr, float("nan")) for lr in rates]})


def layerwise_test(descriptor: Descriptor | None = None) -> dict | None:
    """The reference's test AUC per GoogLeNet layer (Table 6), or None where it has none for this target."""
    d = descriptor or duke_descriptor()
    if d.reference != ZHU or d.table_of("layerwise") is None:
        return None
    return dict(zip(TABLE6_LAYERS, TABLE6_TEST))
