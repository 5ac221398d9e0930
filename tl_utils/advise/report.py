"""report.md and its figures for `tl-advise` (chapter 10).

Figures are drawn with matplotlib's object API (no pyplot), so writing a report from a
notebook leaves the notebook's own plotting untouched.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

from .. import copies
from ..folders import Folder
from ..splits import SPLITS, DataSplit
from ..stats import interval
from .result import STAGES, Advice
from .textfiles import TextTable

__all__ = ["write_report", "confusion", "confident_errors"]


def confusion(labels: torch.Tensor, predicted: torch.Tensor, n_classes: int) -> np.ndarray:
    """Counts (true class, predicted class), every class a row and a column even when absent."""
    return confusion_matrix(labels.numpy(), predicted.numpy(), labels=list(range(n_classes)))


def confident_errors(labels: torch.Tensor, probs: torch.Tensor, n: int = 8) -> list[int]:
    """Indices of the wrong predictions made with the highest probability, most confident first."""
    wrong = torch.nonzero(probs.argmax(1) != labels).flatten()
    return wrong[probs[wrong].max(1).values.argsort(descending=True)][:n].tolist()


def _save(fig: Figure, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return f"figures/{path.name}"


def _curve_figure(advice: Advice, path: Path) -> str:
    fig = Figure(figsize=(5, 3.2))
    ax = fig.subplots()
    x = [r["images"] for r in advice.curve]
    y = np.array([r["val_acc"] for r in advice.curve])
    err = [interval(a, advice.sizes["val"]) for a in y]
    ax.errorbar(x, 100 * y, yerr=100 * np.array(err), marker="o", capsize=3)
    ax.set_xscale("log")
    ax.set_xticks(x, [str(v) for v in x])
    ax.minorticks_off()
    ax.set_xlabel("labelled training images (log scale)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("Linear probe on a fraction of each class (bars: 95% interval)", fontsize=9)
    return _save(fig, path)


def _recall_figure(matrix: np.ndarray, classes: list[str], path: Path) -> str:
    counts = matrix.sum(1)
    recall = matrix.diagonal() / np.maximum(counts, 1)
    fig = Figure(figsize=(5, 0.3 * len(classes) + 1.2))
    ax = fig.subplots()
    ax.barh(range(len(classes)), 100 * recall)
    ax.set_yticks(range(len(classes)), [f"{c} ({n})" for c, n in zip(classes, counts)], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("recall on test (%); in brackets, the class's test images")
    return _save(fig, path)


def _confusion_figure(matrix: np.ndarray, classes: list[str], path: Path) -> str:
    side = 0.45 * len(classes) + 2
    fig = Figure(figsize=(side, side))
    ax = fig.subplots()
    ConfusionMatrixDisplay(matrix, display_labels=classes).plot(ax=ax, cmap="Blues", colorbar=False,
                                                                xticks_rotation=90, text_kw={"fontsize": 7})
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return _save(fig, path)


def _errors_figure(test: DataSplit, probs: torch.Tensor, worst: list[int], path: Path) -> str:
    fig = Figure(figsize=(1.6 * len(worst), 2.0))
    axes = np.atleast_1d(fig.subplots(1, len(worst)))
    for ax, i in zip(axes, worst):
        ax.imshow(test.x[i].permute(1, 2, 0).numpy())
        ax.set_title(f"{test.classes[test.y[i]]}\n→ {test.classes[probs[i].argmax()]} ({probs[i].max():.0%})",
                     fontsize=7)
        ax.axis("off")
    return _save(fig, path)


def _used(splits: dict[str, DataSplit], classes: list[str]) -> pd.DataFrame:
    table = pd.DataFrame({s: np.bincount(d.y.numpy(), minlength=len(classes)) for s, d in splits.items()},
                         index=pd.Index(classes, name="class"))
    table.loc["all"] = table.sum()
    return table


def _table(frame: pd.DataFrame, **formats: str) -> str:
    shown = frame.copy()
    for column, spec in formats.items():
        shown[column] = shown[column].map(lambda v, s=spec: format(v, s))
    return shown.to_markdown()


def _errors_list(test: DataSplit, probs: torch.Tensor, worst: list[int], width: int = 160) -> list[str]:
    lines = []
    for i in worst:
        text = test.x[i] if len(test.x[i]) <= width else test.x[i][:width - 1] + "…"
        lines.append(f"- {test.classes[test.y[i]]} → {test.classes[probs[i].argmax()]} ({probs[i].max():.0%}): "
                     f"{text!r}")
    return lines


def write_report(advice: Advice, source: Folder | TextTable, splits: dict[str, DataSplit], probs: torch.Tensor,
                 folder: Path | None = None) -> Path:
    """Write report.md and figures/ into `folder` (default advice.out, where the report says the
    model is); returns the report's path."""
    folder = folder or advice.out
    figures = folder / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    f = advice.findings
    noun = f.noun
    parts = [f"# tl-advise report: {splits['train'].name}", "",
             f"{len(f.names)} {noun}s of {len(source.classes)} classes, {advice.seconds:.0f} s in all, in the "
             f"stages {' → '.join(STAGES)}. The features were computed in a temporary folder, deleted at the "
             f"end: nothing of your {noun}s is kept outside this folder.", "",
             "## Recommendation", "", *[f"- {line}" for line in advice.reasons], "",
             "## The data", "", *[f"- {line}" for line in f.lines()], "",
             f"{noun.capitalize()}s per class and split, as used (copies of another split's {noun}s left out of "
             "validation and test):", "", _used(splits, source.classes).to_markdown(), ""]
    if isinstance(source, TextTable):
        parts += [f"Texts from column `{source.text_column}`, labels from column `{source.label_column}`"
                  + (f" ({' and '.join(source.guessed)} column guessed)" if source.guessed else "") + "; splits "
                  + ("from the file's `split` column." if source.fixed_splits else "made per class from a hash of "
                     "each text."), ""]
    if f.skipped:
        what = "files" if noun == "image" else "rows"
        parts += [f"Skipped {what}:", "", *[f"- `{s.path}`: {s.reason}" if noun == "image" else f"- {s}"
                                             for s in f.skipped], ""]
    if f.copies:
        splits_of = [SPLITS[c] for c in source.codes]
        parts += ["Copies (across splits first):", "",
                  *[f"- {line}" for line in copies.describe(f.copies, f.names, splits_of, noun)], ""]
    if f.small:
        parts += [f"Images with a side under 32 pixels: {', '.join(f.names[i] for i in f.small[:20])}", ""]
    table = advice.table()
    parts += ["## The ladder (validation split)", "",
              _table(table, **{"validation accuracy": ".1%", "± (95%)": ".1%", "seconds": ".1f",
                               "trainable parameters": ","}), ""]
    parts += ["", f"![label efficiency]({_curve_figure(advice, figures / 'label_efficiency.png')})", ""]
    test = splits["test"]
    if advice.test_acc is not None:
        matrix = confusion(test.y, probs.argmax(1), len(source.classes))
        parts += ["## The chosen model on the test split (scored once)", "",
                  f"{advice.chosen.name}: {advice.test_acc:.1%} on {len(test)} test {noun}s "
                  f"(± {interval(advice.test_acc, len(test)):.1%}).", "",
                  f"![recall per class]({_recall_figure(matrix, source.classes, figures / 'recall.png')})", "",
                  f"![confusion matrix]({_confusion_figure(matrix, source.classes, figures / 'confusion.png')})", ""]
        worst = confident_errors(test.y, probs)
        if worst and test.is_text:
            parts += ["The most confident mistakes (true → predicted):", "", *_errors_list(test, probs, worst), ""]
        elif worst:
            parts += ["The most confident mistakes (true → predicted):", "",
                      f"![confident errors]({_errors_figure(test, probs, worst, figures / 'errors.png')})", ""]
    parts += ["## The saved model", "",
              f"`{advice.out / 'model'}`: model.safetensors and model.json (nothing pickled) and model.onnx. "
              f"onnxruntime's probabilities differ from PyTorch's by at most {advice.onnx_difference:.1e}.", "",
              "```", f"tl-predict {advice.out / 'model'} {'photo.jpg' if noun == 'image' else 'new_texts.txt'}",
              "```", ""]
    if advice.int8 is not None:
        parts += ["## int8", "", advice.int8.sentence(), ""]
    report = folder / "report.md"
    report.write_text("\n".join(parts), encoding="utf-8")
    return report
