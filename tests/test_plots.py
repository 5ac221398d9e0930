import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from tl_utils import plots


def test_image_grid_lays_out_and_titles_images():
    images = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    fig = plots.image_grid(images, [f"#{i}" for i in range(5)], ncols=3)
    assert isinstance(fig, Figure) and len(fig.axes) == 6
    assert [ax.get_title() for ax in fig.axes[:5]] == ["#0", "#1", "#2", "#3", "#4"]


def test_overlay_grid_upsamples_maps_onto_the_image():
    fig = plots.overlay_grid(torch.rand(3, 32, 32), torch.randn(4, 4, 4), ["a", "b", "c", "d"], ncols=2)
    assert len(fig.axes) == 4 and fig.axes[0].images[1].get_array().shape == (32, 32)


def test_plot_history_draws_one_line_per_metric():
    history = [{"epoch": 1, "train_acc": 0.5, "val_acc": 0.4}, {"epoch": 2, "train_acc": 0.7, "val_acc": 0.6}]
    fig = plots.plot_history(history)
    assert len(fig.axes[0].lines) == 2 and fig.axes[0].get_xlabel() == "epoch"


def test_plot_history_draws_on_given_axes_and_marks_an_epoch():
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 0.5 + abs(e - 2) / 10} for e in (1, 2, 3)]
    fig, (left, right) = plt.subplots(1, 2)
    assert plots.plot_history(history, ["train_loss", "val_loss"], "loss", ax=right, mark_epoch=2) is fig
    assert len(left.lines) == 0 and len(right.lines) == 3 and list(right.lines[-1].get_xdata()) == [2, 2]
