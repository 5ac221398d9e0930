"""Small matplotlib helpers. Each returns the figure and saves nothing; the notebook decides."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def _to_hwc(image: torch.Tensor | np.ndarray, rescale: bool) -> np.ndarray:
    """(C, H, W) or (H, W) -> (H, W) or (H, W, 3) floats in [0, 1] for imshow."""
    a = image.detach().float().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image, float)
    if a.ndim == 3:
        a = a.transpose(1, 2, 0) if a.shape[0] in (1, 3) else a
        a = a[..., 0] if a.shape[-1] == 1 else a
    if rescale:
        low, high = a.min(), a.max()
        return (a - low) / (high - low + 1e-12)
    return a / 255.0 if a.max() > 1 else a


def _grid(n: int, ncols: int, size: float, suptitle: str | None) -> tuple[Figure, list]:
    """A figure with one blank axis per image, `ncols` to a row."""
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle)
    return fig, list(axes.flat)[:n]


def image_grid(
    images: Sequence | torch.Tensor,
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    rescale: bool = False,
    cmap: str = "gray",
    size: float = 1.6,
    suptitle: str | None = None,
) -> Figure:
    """Show images in a grid: uint8 or float, (C, H, W) or (H, W).

    rescale: stretch each image to its own min..max (for filters and feature maps).
    """
    fig, axes = _grid(len(images), ncols, size, suptitle)
    for i, ax in enumerate(axes):
        ax.imshow(_to_hwc(images[i], rescale), cmap=cmap)
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig


def plot_history(history: list[dict], metrics: Sequence[str] = ("train_acc", "val_acc"),
                 ylabel: str = "accuracy", title: str | None = None, ax: Axes | None = None,
                 mark_epoch: int | None = None) -> Figure:
    """Curves of per-epoch metrics from `tl_utils.train.fit`.

    ax: draw on these axes (e.g. one panel of a figure with several); by default a new figure.
    mark_epoch: draw a dashed vertical line at this epoch (e.g. the best validation epoch).
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.2))
    epochs = [row["epoch"] for row in history]
    for metric in metrics:
        ax.plot(epochs, [row[metric] for row in history], marker="o", markersize=3, label=metric)
    if mark_epoch is not None:
        ax.axvline(mark_epoch, color="gray", linestyle="--", linewidth=1, label=f"epoch {mark_epoch}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax.figure


def overlay_grid(
    image: torch.Tensor,
    maps: torch.Tensor,
    titles: Sequence[str] | None = None,
    ncols: int = 6,
    size: float = 1.8,
    suptitle: str | None = None,
) -> Figure:
    """Where each activation map fires, as a heat map over the image it came from.

    image: (3, H, W) as the network saw it (any range); maps: (K, h, w), any h, w.
    Only the positive part of each map is shown, upsampled to the image's size.
    """
    heat = torch.nn.functional.interpolate(maps.detach().float().clamp(min=0)[:, None],
                                           size=tuple(image.shape[-2:]), mode="bilinear")[:, 0]
    background = _to_hwc(image, rescale=True)
    fig, axes = _grid(len(maps), ncols, size, suptitle)
    for i, ax in enumerate(axes):
        ax.imshow(background)
        ax.imshow(heat[i].numpy(), cmap="magma", alpha=0.6)
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig


def plot_curves(table, x: str, y: str, group: str, chance: float | None = None, logx: bool = True,
                xlabel: str | None = None, ylabel: str | None = None, title: str | None = None,
                connect: bool = True) -> Figure:
    """Mean and spread (min to max over the other columns, e.g. seeds) of y against x, per group.

    table: a pandas DataFrame with one row per run.
    connect: draw lines between the x values; False for a few separate settings (two label counts
        are not a trend): one point per group and x, side by side, with bars from min to max.
    """
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    groups = list(table.groupby(group, sort=False))
    position = {v: i for i, v in enumerate(sorted(table[x].unique()))}  # connect=False: x values side by side
    for k, (name, rows) in enumerate(groups):
        stats = rows.groupby(x)[y].agg(["mean", "min", "max"])
        if connect:
            line, = ax.plot(stats.index, stats["mean"], marker="o", label=name)
            ax.fill_between(stats.index, stats["min"], stats["max"], color=line.get_color(), alpha=0.15)
        else:
            where = [position[v] + (k - (len(groups) - 1) / 2) * 0.15 for v in stats.index]
            ax.errorbar(where, stats["mean"], yerr=[stats["mean"] - stats["min"], stats["max"] - stats["mean"]],
                        fmt="o", capsize=3, label=name)
    if not connect:
        ax.set_xticks(list(position.values()), [str(v) for v in position])
        ax.set_xlim(-0.5, len(position) - 0.5)
    if chance is not None:
        ax.axhline(chance, color="gray", linestyle="--", linewidth=1, label="chance")
    if logx and connect:
        ax.set_xscale("log")
        ticks = sorted(table[x].unique())
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
