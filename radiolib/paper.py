"""The numbers of Zhu et al. 2019 that this study is compared with (STUDY.md), keyed like our results rows."""
from __future__ import annotations

import pandas as pd

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


def paper_value(row: dict) -> tuple | None:
    """The paper's (train AUC, test AUC, CI) for one of our results rows, or None where it has no such row."""
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


def beside(table: pd.DataFrame, rows: list[dict]) -> pd.DataFrame:
    """A results table with the paper's test AUC (and CI; ImageNet weights) in a column beside ours."""
    paper = [paper_value(r) for r in rows]
    out = table.copy()
    out["paper test AUC (ImageNet)" if any(r.get("source") not in (None, "none") for r in rows) else "paper test AUC"] = [f"{p[1]:.2f}" + (f" [{p[2][0]:.2f}, {p[2][1]:.2f}]" if p[2] else "") if p else "-"
                             for p in paper]
    return out
