"""The figures' axes say what they plot: learning curves on whole epochs."""
import matplotlib

matplotlib.use("Agg")

from radiolib.views import plots  # noqa: E402


def test_learning_curves_mark_whole_epochs_only():
    curves = [{"epoch": [1, 2], "train_auc": [0.6, 0.7], "test_auc": [0.55, 0.6]},
              {"epoch": [1, 2], "train_auc": [0.62, 0.75], "test_auc": [0.5, 0.58]}]
    fig = plots.curve_grid({"cifar": curves, "vgg_r": curves})
    for ax in fig.axes:
        fig.canvas.draw()
        low, high = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if low <= t <= high]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    matplotlib.pyplot.close(fig)
