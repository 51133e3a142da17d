"""Interactive views for JupyterLab (ipywidgets), numbered from 1 as the paper and the DICOM files count.

With a front end attached (`frontend.attached()`), each view displays its live widget; in a batch run (papermill,
nbval) it displays only the static figure of its first state and builds no widget. Either way it returns None, so a
saved notebook shows a picture, never a widget's repr.
"""
from __future__ import annotations

from functools import lru_cache

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from ..core import frontend
from ..data.dataset import open_cohort
from ..data.patches import sample_patch
from ..learn.features import feature_maps
from .plots import CHANNEL_NAMES, learning_curves
from .plots import feature_maps as draw_maps

LIVE_TEXT = "interactive view: run this notebook in JupyterLab to use it"


def _display(obj, raw: bool = False) -> None:
    from IPython.display import display  # lazy: only the live widgets need it
    display(obj, raw=raw)


def _show_static(fig) -> None:
    """Display a view's static figure once (and close it, so the inline backend does not show it again)."""
    _display(fig)
    plt.close(fig)


def _show_live(box) -> None:
    """Display a widget with a short text for readers without a kernel instead of the widget's repr."""
    bundle = box._repr_mimebundle_()
    bundle = bundle[0] if isinstance(bundle, tuple) else bundle
    _display({**bundle, "text/plain": LIVE_TEXT}, raw=True)


def _redraw(out, make_figure) -> None:
    """Replace the output area's figure by a new one."""
    with out:
        out.clear_output(wait=True)
        make_figure()
        plt.show()


def slice_with_patch(channels: np.ndarray, regions, z: int, channel: int, px: int, label: int, patient: str,
                     channel_names=CHANNEL_NAMES, mask: np.ndarray | None = None):
    """A slice of one subtraction channel with every lesion region's patch square, and the first patch beside it;
    with the patient's tumour `mask` ((Z, Y, X) bool, `Volume.mask`), its outline on the slice."""
    fig, (ax, axp) = plt.subplots(1, 2, figsize=(9, 4.2), gridspec_kw={"width_ratios": [2, 1]})
    vmax = float(np.percentile(channels[channel], 99.5)) or 1.0
    ax.imshow(channels[channel, z], cmap="magma", vmin=0, vmax=vmax)
    here = regions[regions.slice == z]
    for r in here.itertuples():
        ax.add_patch(Rectangle((r.cx - px / 2, r.cy - px / 2), px, px, fill=False, ec="cyan", lw=1))
        ax.add_patch(Rectangle((r.cx - r.w / 2, r.cy - r.h / 2), r.w, r.h, fill=False, ec="yellow", lw=0.8))
    if mask is not None and mask[z].any():
        ax.contour(mask[z].astype(float), levels=[0.5], colors="lime", linewidths=0.8)
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


def patch_explorer(patch_set, data_dir, target_label: str | None = None) -> None:
    """Pick a patient, slice, channel and patch size; see the patch cut from the preprocessed volume."""

    cohort = open_cohort(data_dir, target_label, progress=False)
    target = patch_set.meta["target_spacing_mm"]
    table = patch_set.table.set_index("patient")
    sizes = [(f"{s} ({px} px)", px) for s, px in patch_set.meta["patch_pixels"].items()]

    @lru_cache(maxsize=4)
    def volume(patient):
        return cohort.volume(patient, target)

    def first_slice(patient) -> int:
        """The 1-based slice shown first: the middle of the patient's lesion slices."""
        regions = volume(patient).regions
        return int(regions.slice.median()) + 1 if len(regions) else 1

    def figure(patient, slice_number, channel, px):
        v = volume(patient)
        return slice_with_patch(v.channels, v.regions, slice_number - 1, channel, px, int(table.loc[patient, "label"]),
                                patient, cohort.channel_names, v.mask)

    first = table.index[0]
    if not frontend.attached():
        return _show_static(figure(first, first_slice(first), 0, sizes[0][1]))

    import ipywidgets as w  # lazy: optional package (the notebooks extra)
    patient = w.Dropdown(options=list(table.index), description="patient")
    z = w.IntSlider(description="slice", min=1, max=volume(first).channels.shape[1], value=first_slice(first))
    channel = w.Dropdown(options=[(n, i) for i, n in enumerate(cohort.channel_names)], description="channel")
    size = w.Dropdown(options=sizes, description="patch size")
    out = w.Output()

    def on_patient(change=None):
        z.max = volume(patient.value).channels.shape[1]
        z.value = first_slice(patient.value)

    def draw(change=None):
        _redraw(out, lambda: figure(patient.value, z.value, channel.value, size.value))

    patient.observe(on_patient, "value")
    for control in (patient, z, channel, size):
        control.observe(draw, "value")
    draw()
    return _show_live(w.VBox([w.HBox([patient, z]), w.HBox([channel, size]), out]))


def curve_browser(named_curves: dict[str, list[dict]]) -> None:
    """Pick a run (network or learning rate) and a fold; see its train and test AUC per epoch."""

    def figure(name, fold_number=None):
        curves = named_curves[name]
        if fold_number is None:
            return learning_curves(curves, name)
        return learning_curves([curves[min(fold_number, len(curves)) - 1]], f"{name}, fold {fold_number}")

    first = next(iter(named_curves))
    if not frontend.attached():
        return _show_static(figure(first))

    import ipywidgets as w  # lazy: optional package (the notebooks extra)
    run = w.Dropdown(options=list(named_curves), description="run")
    fold = w.IntSlider(description="fold", min=1, max=len(named_curves[first]), disabled=True)
    all_folds = w.Checkbox(value=True, description="all folds")
    out = w.Output()

    def on_run(change=None):
        fold.max = len(named_curves[run.value])

    def on_all(change=None):
        fold.disabled = all_folds.value

    def draw(change=None):
        _redraw(out, lambda: figure(run.value, None if all_folds.value else fold.value))

    run.observe(on_run, "value")
    all_folds.observe(on_all, "value")
    for control in (run, fold, all_folds):
        control.observe(draw, "value")
    draw()
    return _show_live(w.VBox([w.HBox([run, fold, all_folds]), out]))


def feature_map_viewer(model, patch_set, patch_size: int, net: str, size: int, layers,
                       n_channels: int = 16) -> None:
    """Pick a layer and a test patch of each class (named by the patch set's descriptor); see that layer's feature
    maps (un-pooled activations)."""

    idx = patch_set.index
    rows = {c: idx.index[(idx.role == "test") & (idx.label == c)].to_numpy() for c in (1, 0)}
    names = patch_set.descriptor.class_names
    patches = patch_set.patches(patch_size)

    def figure(layer, numbers):
        """`numbers`: the 1-based test patch number of each class."""
        chosen = {f"{names[c]} #{numbers[c]}": rows[c][numbers[c] - 1] for c in rows}
        maps = feature_maps(model, np.asarray(patches[list(chosen.values())]), net, layer, size)
        return draw_maps(dict(zip(chosen, maps)), layer, n_channels)

    if not frontend.attached():
        return _show_static(figure(list(layers)[0], {c: 1 for c in rows}))

    import ipywidgets as w  # lazy: optional package (the notebooks extra)
    layer = w.Dropdown(options=list(layers), description="layer")
    pick = {c: w.IntSlider(description=names[c], min=1, max=max(len(r), 1))
            for c, r in rows.items()}
    out = w.Output()

    def draw(change=None):
        _redraw(out, lambda: figure(layer.value, {c: s.value for c, s in pick.items()}))

    for control in (layer, *pick.values()):
        control.observe(draw, "value")
    draw()
    return _show_live(w.VBox([w.HBox([layer, *pick.values()]), out]))
