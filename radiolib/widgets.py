"""Interactive views for JupyterLab (ipywidgets). Each has a static counterpart in `plots` for headless runs."""
from __future__ import annotations

from functools import lru_cache

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from .plots import CHANNEL_NAMES


def slice_with_patch(channels: np.ndarray, regions, z: int, channel: int, px: int, label: int, patient: str,
                     channel_names=CHANNEL_NAMES):
    """A slice of one subtraction channel with every lesion region's patch square, and the first patch beside it."""
    from .patches import sample_patch
    fig, (ax, axp) = plt.subplots(1, 2, figsize=(9, 4.2), gridspec_kw={"width_ratios": [2, 1]})
    vmax = float(np.percentile(channels[channel], 99.5)) or 1.0
    ax.imshow(channels[channel, z], cmap="magma", vmin=0, vmax=vmax)
    here = regions[regions.slice == z]
    for r in here.itertuples():
        ax.add_patch(Rectangle((r.cx - px / 2, r.cy - px / 2), px, px, fill=False, ec="cyan", lw=1))
        ax.add_patch(Rectangle((r.cx - r.w / 2, r.cy - r.h / 2), r.w, r.h, fill=False, ec="yellow", lw=0.8))
    ax.set_title(f"{patient} (label {label}), slice {z + 1}, {channel_names[channel]}")
    ax.axis("off")
    if len(here):
        r = here.iloc[0]
        patch = sample_patch(channels, z, r.cy, r.cx, px)[0]
        axp.imshow(patch[channel], cmap="magma", vmin=0, vmax=vmax)
        axp.set_title(f"patch {px}x{px} px, lesion {int(r.lesion)}")
    else:
        axp.text(0.5, 0.5, "no lesion on this slice", ha="center", va="center")
    axp.axis("off")
    fig.tight_layout()
    return fig


def patch_explorer(patch_set, data_dir, target_label: str | None = None):
    """Pick a patient, slice, channel and patch size; see the patch cut from the preprocessed volume."""
    import ipywidgets as w

    from .dataset import open_cohort

    cohort = open_cohort(data_dir, target_label, progress=False)
    target = patch_set.meta["target_spacing_mm"]

    @lru_cache(maxsize=4)
    def volume(patient):
        return cohort.volume(patient, target)

    table = patch_set.table.set_index("patient")
    patient = w.Dropdown(options=list(table.index), description="patient")
    z = w.IntSlider(description="slice", min=0, max=1)
    channel = w.Dropdown(options=[(n, i) for i, n in enumerate(cohort.channel_names)], description="channel")
    size = w.Dropdown(options=[(f"{s} ({px} px)", px) for s, px in patch_set.meta["patch_pixels"].items()],
                      description="patch size")
    out = w.Output()

    def on_patient(change=None):
        v = volume(patient.value)
        z.max = v.channels.shape[1] - 1
        z.value = int(v.regions.slice.median()) if len(v.regions) else 0

    def draw(change=None):
        v = volume(patient.value)
        with out:
            out.clear_output(wait=True)
            slice_with_patch(v.channels, v.regions, z.value, channel.value, size.value,
                             int(table.loc[patient.value, "label"]), patient.value, cohort.channel_names)
            plt.show()

    patient.observe(on_patient, "value")
    for control in (patient, z, channel, size):
        control.observe(draw, "value")
    on_patient()
    draw()
    return w.VBox([w.HBox([patient, z]), w.HBox([channel, size]), out])


def curve_browser(named_curves: dict[str, list[dict]]):
    """Pick a run (network or learning rate) and a fold; see its train and test AUC per epoch."""
    import ipywidgets as w

    from .plots import learning_curves

    run = w.Dropdown(options=list(named_curves), description="run")
    fold = w.IntSlider(description="fold", min=0, max=max(len(c) for c in named_curves.values()) - 1)
    all_folds = w.Checkbox(value=True, description="all folds")
    out = w.Output()

    def draw(change=None):
        curves = named_curves[run.value]
        picked = curves if all_folds.value else [curves[min(fold.value, len(curves) - 1)]]
        with out:
            out.clear_output(wait=True)
            learning_curves(picked, f"{run.value}" + ("" if all_folds.value else f", fold {fold.value + 1}"))
            plt.show()

    for control in (run, fold, all_folds):
        control.observe(draw, "value")
    draw()
    return w.VBox([w.HBox([run, fold, all_folds]), out])


def feature_map_viewer(model, patch_set, patch_size: int, net: str, size: int, layers, n_channels: int = 16):
    """Pick a layer and a patch of each class (named by the patch set's descriptor); see that layer's feature maps
    (un-pooled activations)."""
    import ipywidgets as w

    from .features import feature_maps
    from .plots import feature_maps as draw_maps

    idx = patch_set.index
    rows = {c: idx.index[(idx.role == "test") & (idx.label == c)].to_numpy() for c in (1, 0)}
    layer = w.Dropdown(options=list(layers), description="layer")
    names = patch_set.descriptor.class_names
    pick = {c: w.IntSlider(description=names[c], min=0, max=max(len(r) - 1, 0))
            for c, r in rows.items()}
    out = w.Output()
    patches = patch_set.patches(patch_size)

    def draw(change=None):
        chosen = {f"{names[c]} #{pick[c].value}": rows[c][pick[c].value] for c in rows}
        maps = feature_maps(model, np.asarray(patches[list(chosen.values())]), net, layer.value, size)
        with out:
            out.clear_output(wait=True)
            draw_maps(dict(zip(chosen, maps)), layer.value, n_channels)
            plt.show()

    for control in (layer, *pick.values()):
        control.observe(draw, "value")
    draw()
    return w.VBox([w.HBox([layer, *pick.values()]), out])
