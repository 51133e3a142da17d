"""Interactive views: live widgets only with a front end, a static figure at once in batch runs, 1-based controls."""
from collections import OrderedDict

import matplotlib
import numpy as np
import pytest
import torch
from torch import nn

from radiolib.core import frontend
from radiolib.views import widgets

matplotlib.use("Agg")
ipywidgets = pytest.importorskip("ipywidgets")
from ipywidgets.widgets.widget import _instances  # noqa: E402  (every live widget model, by id)


class FakeKernel:
    """What ipykernel offers `frontend.attached()`: the parent request of the cell being run."""

    def __init__(self, allow_stdin: bool, msg_type: str = "execute_request"):
        self.parent = {"header": {"msg_type": msg_type}, "content": {"allow_stdin": allow_stdin}}
        self._allow_stdin = allow_stdin

    def get_parent(self, channel=None):
        return self.parent


@pytest.fixture
def shown(monkeypatch):
    """What a view displays (figures, bundles) and the figures it redraws in its output area."""
    out = {"displayed": [], "drawn": [], "live": []}
    monkeypatch.setattr(widgets, "_display", lambda obj, raw=False: out["displayed"].append(obj))
    monkeypatch.setattr(widgets, "_redraw", lambda area, make: out["drawn"].append(make()))
    monkeypatch.setattr(widgets, "_show_live", lambda box: out["live"].append(box))
    yield out
    matplotlib.pyplot.close("all")


@pytest.fixture
def batch(monkeypatch):
    """A kernel driven as papermill and nbval drive it (execute requests with allow_stdin false)."""
    monkeypatch.delenv(frontend.ENV, raising=False)
    monkeypatch.setattr(frontend, "kernel", lambda: FakeKernel(allow_stdin=False))


@pytest.fixture
def live(monkeypatch):
    monkeypatch.setenv(frontend.ENV, "1")


def curves(n_folds: int, offset: float = 0.0) -> list[dict]:
    return [{"epoch": [1, 2, 3], "train_auc": [0.5, 0.6, 0.7 + offset], "test_auc": [0.5, 0.5 + f / 10, 0.55]}
            for f in range(n_folds)]


class TinyNet(nn.Module):
    """Two named layers, enough for `feature_maps`' extractor."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 4, 3)
        self.conv3 = nn.Conv2d(4, 6, 3)

    def forward(self, x):
        return self.conv3(torch.relu(self.conv1(x)))


def view_calls(patch_set, faulty_cohort):
    """Each widget cell of notebooks 01, 02 and 05, as the notebooks call them."""
    return OrderedDict([
        ("01 patch explorer", lambda: widgets.patch_explorer(patch_set, faulty_cohort)),
        ("02 curve browser", lambda: widgets.curve_browser({"cifar": curves(3), "cifar, lr 5e-04": curves(2)})),
        ("05 feature-map viewer", lambda: widgets.feature_map_viewer(TinyNet(), patch_set, 80, "googlenet", 32,
                                                                    ("conv1", "conv3"), 4)),
    ])


def titles(fig) -> str:
    return " | ".join([a.get_title() for a in fig.axes] + [a.get_title(loc="left") for a in fig.axes]
                      + [fig._suptitle.get_text() if fig._suptitle else ""])


# --- front end detection -------------------------------------------------------------------------------------

def test_no_kernel_means_no_front_end(monkeypatch):
    monkeypatch.delenv(frontend.ENV, raising=False)
    assert frontend.kernel() is None and not frontend.attached()


@pytest.mark.parametrize("allow_stdin", [True, False])
def test_front_end_follows_the_cells_allow_stdin(monkeypatch, allow_stdin):
    monkeypatch.delenv(frontend.ENV, raising=False)
    monkeypatch.setattr(frontend, "kernel", lambda: FakeKernel(allow_stdin))
    assert frontend.attached() is allow_stdin
    bar = frontend.tqdm(range(3), desc="x")
    assert bar.disable is not allow_stdin
    bar.close()


def test_widget_callback_keeps_the_last_cells_flag(monkeypatch):
    monkeypatch.delenv(frontend.ENV, raising=False)
    monkeypatch.setattr(frontend, "kernel", lambda: FakeKernel(True, msg_type="comm_msg"))
    assert frontend.attached()


@pytest.mark.parametrize("value,expected", [("1", True), ("live", True), ("0", False), ("batch", False)])
def test_environment_overrides_detection(monkeypatch, value, expected):
    monkeypatch.setenv(frontend.ENV, value)
    monkeypatch.setattr(frontend, "kernel", lambda: FakeKernel(not expected))
    assert frontend.attached() is expected


def test_papermill_runs_without_front_end_and_writes_no_progress_bar(tmp_path):
    """A real papermill kernel: allow_stdin is false, so no front end, and a progress bar leaves no output."""
    import nbformat
    import papermill as pm
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from radiolib import frontend\nprint('attached:', frontend.attached())"),
                nbformat.v4.new_code_cell("for _ in frontend.tqdm(range(3), desc='work'):\n    pass")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, tmp_path / "in.ipynb")
    pm.execute_notebook(str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb"), progress_bar=False,
                        kernel_name="python3", cwd=str(tmp_path))
    cells = nbformat.read(tmp_path / "out.ipynb", 4).cells
    assert [o.get("text") for o in cells[0].outputs] == ["attached: False\n"]
    assert cells[1].outputs == []


# --- batch: a static figure at once, no widget -----------------------------------------------------------------

def test_widget_cells_of_01_02_05_return_at_once_with_their_static_figure(batch, shown, patch_set, faulty_cohort):
    matplotlib.pyplot.close("all")  # figures other tests of this session left open are not this test's concern
    for name, call in view_calls(patch_set, faulty_cohort).items():
        before, displayed = set(_instances), len(shown["displayed"])
        assert call() is None, name  # returns: nothing waits for a front end
        assert set(_instances) == before, f"{name} built a live widget in a batch run"
        figures = shown["displayed"][displayed:]
        assert len(figures) == 1 and isinstance(figures[0], matplotlib.figure.Figure), name
    explorer, browser, viewer = shown["displayed"]
    assert "slice" in titles(explorer) and "cifar" in titles(browser) and "luminal-like #1" in titles(viewer)
    assert not matplotlib.pyplot.get_fignums(), "static figures must be closed after display"


# --- live: 1-based controls that match the titles ----------------------------------------------------------------

def controls(box) -> dict:
    """The value controls of a view, by description."""
    found, stack = {}, [box]
    while stack:
        w = stack.pop()
        stack.extend(getattr(w, "children", ()))
        if getattr(w, "description", ""):
            found[w.description] = w
    return found


def test_patch_explorer_slice_slider_is_1_based_like_the_title(live, shown, patch_set, faulty_cohort):
    widgets.patch_explorer(patch_set, faulty_cohort)
    c = controls(shown["live"][0])
    z = c["slice"]
    assert z.min == 1 and f"slice {z.value}," in titles(shown["drawn"][-1])
    n_slices = z.max
    z.value = n_slices
    assert f"slice {n_slices}," in titles(shown["drawn"][-1])
    z.value = 1
    assert "slice 1," in titles(shown["drawn"][-1])
    before = shown["drawn"][-1].axes[0].images[0].get_array().copy()
    c["channel"].value = c["channel"].options[1][1]
    assert not np.array_equal(before, shown["drawn"][-1].axes[0].images[0].get_array())
    other = c["patient"].options[1]
    c["patient"].value = other
    assert titles(shown["drawn"][-1]).startswith(other) and f"slice {z.value}," in titles(shown["drawn"][-1])


def test_curve_browser_fold_slider_is_1_based_and_off_while_all_folds(live, shown):
    runs = {"cifar": curves(3), "vgg_r": curves(2, offset=0.1)}
    widgets.curve_browser(runs)
    c = controls(shown["live"][0])
    fold, all_folds, run = c["fold"], c["all folds"], c["run"]
    assert (fold.min, fold.max, fold.disabled, all_folds.value) == (1, 3, True, True)
    all_folds.value = False
    assert not fold.disabled and titles(shown["drawn"][-1]).startswith("cifar, fold 1")
    fold.value = 2
    fig = shown["drawn"][-1]
    assert "cifar, fold 2" in titles(fig)
    plotted = [list(line.get_ydata()) for line in fig.axes[0].lines]
    assert runs["cifar"][1]["test_auc"] in plotted and runs["cifar"][0]["test_auc"] not in plotted
    run.value = "vgg_r"
    assert fold.max == 2 and "vgg_r, fold 2" in titles(shown["drawn"][-1])
    all_folds.value = True
    assert fold.disabled


def test_feature_map_viewer_patch_numbers_are_1_based(live, shown, patch_set):
    widgets.feature_map_viewer(TinyNet(), patch_set, 80, "googlenet", 32, ("conv1", "conv3"), 4)
    c = controls(shown["live"][0])
    lum = c["luminal-like"]
    assert lum.min == 1 and lum.value == 1 and "luminal-like #1" in titles(shown["drawn"][-1])
    lum.value = 2
    assert "luminal-like #2" in titles(shown["drawn"][-1])
    c["layer"].value = "conv3"
    assert "conv3" in titles(shown["drawn"][-1])


def test_live_view_shows_a_short_text_instead_of_the_widget_repr(monkeypatch):
    got = []
    monkeypatch.setattr(widgets, "_display", lambda obj, raw=False: got.append((obj, raw)))
    box = ipywidgets.VBox([ipywidgets.IntSlider()])
    widgets._show_live(box)
    (bundle, raw), = got
    assert raw and bundle["text/plain"] == widgets.LIVE_TEXT and "VBox" not in str(bundle)
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == box.model_id
    box.close()


@pytest.mark.slow
def test_widget_cells_build_no_widget_under_papermill(tmp_path, faulty_cohort):
    """The three views run by papermill itself: each cell shows one static figure, no widget is ever built."""
    import nbformat
    import papermill as pm
    code = nbformat.v4.new_code_cell
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        code(f"cohort, cache = {str(faulty_cohort)!r}, {str(tmp_path / 'cache')!r}"),
        code("import torch\nfrom torch import nn\nfrom ipywidgets.widgets.widget import _instances\n"
             "from radiolib import widgets\nfrom radiolib.data.dataset import build_patch_set\n"
             "ps = build_patch_set(cohort, [80, 120], 4, 0, cache, progress=False)\n"
             "net = nn.Sequential()\nnet.add_module('conv1', nn.Conv2d(3, 4, 3))\n"
             "net.add_module('conv3', nn.Conv2d(4, 6, 3))"),
        code("widgets.patch_explorer(ps, cohort)"),
        code("widgets.curve_browser({'cifar': [{'epoch': [1, 2], 'train_auc': [0.5, 0.7], 'test_auc': [0.5, 0.6]}]})"),
        code("widgets.feature_map_viewer(net, ps, 80, 'googlenet', 32, ('conv1', 'conv3'), 4)"),
        code("print(len(_instances))"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, tmp_path / "in.ipynb")
    pm.execute_notebook(str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb"), progress_bar=False,
                        kernel_name="python3", cwd=str(tmp_path))
    out = nbformat.read(tmp_path / "out.ipynb", 4)
    for cell in out.cells[2:5]:
        kinds = [(o.output_type, sorted(o.get("data", {}))) for o in cell.outputs]
        assert kinds == [("display_data", ["image/png", "text/plain"])], (cell.source, kinds)
    assert out.cells[-1].outputs[0]["text"] == "0\n"
    assert "widgets" not in out.metadata
