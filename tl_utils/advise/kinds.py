"""What differs between images and texts at each stage of `pipeline`: `Images` and `Texts`,
and the time budget that fits each trained rung in or skips it with its reason."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .. import copies, features, freezing, imagefiles, models, textmodels
from ..folders import Folder, read_folder
from ..splits import SPLITS, DataSplit, split_by_name
from ..train import forward
from . import checks, deploy, ladder, textfiles
from .checks import ADVISED_PER_CLASS
from .result import AdviseError

__all__ = ["Images", "Texts", "Budget", "epochs_that_fit", "CURVE_FRACTIONS", "TOP_SHARE", "SCRATCH_SHARE"]

CURVE_FRACTIONS = (0.1, 0.25, 0.5, 1.0)  # of each class's training examples, for the label-efficiency curve
TOP_SHARE = 0.55  # of the time left after the features and the cheap methods
SCRATCH_SHARE = 0.7  # of the time left after that (the rest: scoring, report, export)


def _split(source: Folder | textfiles.TextTable, findings: checks.Findings, x, names: list[str],
           name: str, noun: str) -> dict[str, DataSplit]:
    """The train/val/test DataSplits of a folder or a text file, leaked copies left out."""
    codes = checks.without_leaks(source, findings)
    if source.fixed_splits and not (codes == 1).any():  # train and test only: validation from train
        keep = codes >= 0
        codes[keep] = split_by_name(source.y[keep], [n for n, k in zip(names, keep) if k], (0.8, 0.2, 0.0),
                                    codes[keep] == 2)
        leaks, left_out = copies.later_copies(findings.copies, codes)  # copies within train may now straddle train/val
        findings.leaks += [c for c in leaks if c not in findings.leaks]
        findings.left_out = sorted(set(findings.left_out) | set(left_out))
        codes[left_out] = -1
    y = torch.from_numpy(source.y)
    splits = {s: DataSplit([x[i] for i in np.flatnonzero(codes == c)] if isinstance(x, list) else x[codes == c],
                           y[codes == c], source.classes, name, s) for c, s in enumerate(SPLITS)}
    missing = [c for c in source.classes if not (splits["train"].y == source.classes.index(c)).any()]
    if missing:
        raise AdviseError(f"class(es) {missing} have no training {noun}: add some to the training split.")
    if len(splits["val"]) == 0:
        raise AdviseError(f"no {noun} is left for validation: add {noun}s ({ADVISED_PER_CLASS} or more per class).")
    return splits


def _log_skipped(skipped: list, log: Callable[[str], None]) -> None:
    shown, more = imagefiles.skipped_lines(skipped)
    for line in shown:
        log(f"  skipped {line}")
    if more:
        log(f"  ... and {more} more (all in report.md)")


def _left(start: float, minutes: float) -> float:
    return max(0.0, minutes * 60 - (time.perf_counter() - start))


def epochs_that_fit(model: torch.nn.Module, sample: tuple, n_train: int, n_val: int,
                     seconds: float, cap: int, transform=None) -> tuple[int, float]:
    """(epochs, seconds per epoch): how many epochs of training `model` fit in `seconds`, from the
    time of one step on the CPU (on a GPU the estimate is pessimistic: more would fit)."""
    trial = copy.deepcopy(model).train()
    x, y = sample
    step = []
    for _ in range(2):  # the first step pays for warming up
        t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(forward(trial, transform(x) if transform else x), y)
        loss.backward()
        step.append(time.perf_counter() - t0)
    batch = len(y)
    per_epoch = step[-1] * (math.ceil(n_train / batch) + math.ceil(n_val / batch) / 3)
    return max(0, min(cap, int(seconds // per_epoch))), per_epoch


class Budget:
    """The time budget, and the one way a trained rung is fitted into it or skipped with its reason."""

    def __init__(self, start: float, minutes: float):
        self.start, self.minutes, self.skipped = start, minutes, {}

    def left(self) -> float:
        return _left(self.start, self.minutes)

    def rung(self, name: str, flag: str, epochs: int | None, estimate: Callable[[float], tuple[int, float]],
             share: float, train: Callable[[int], ladder.Rung]) -> list[ladder.Rung]:
        """[the rung `train(epochs)` gives], or [] with the reason in `skipped[name]`. `epochs`:
        fixed by `flag`, or (None) as many as `estimate(seconds)` says fit in `share` of the time left."""
        per_epoch = 0.0
        if epochs is None:
            epochs, per_epoch = estimate(share * self.left())
        if epochs > 0:
            return [train(epochs)]
        self.skipped[name] = (f"one epoch takes about {per_epoch:.0f} s, over the budget" if per_epoch
                              else f"{flag} 0")
        return []


def _frozen(pooled: dict[str, features.Features], attach: Callable, architecture: str,
            seed: int) -> tuple[list[ladder.Rung], list[dict]]:
    """The rungs on frozen features (k-NN, linear probe) and the label-efficiency curve."""
    rungs = [ladder.knn(pooled["train"], pooled["val"], attach, architecture),
             ladder.probe(pooled["train"], pooled["val"], seed, attach, architecture)]
    return rungs, ladder.label_curve(pooled["train"], pooled["val"], CURVE_FRACTIONS, seed)


class Images:
    """The image half of each stage: a folder of class subfolders, Lite0's features, the image ladder."""

    noun, order, tokenizer = "image", ladder.KINDS, None
    features_note = "the pretrained backbone's features"
    ladder_note = "k-NN, linear probe, fine-tuning the top stages, a small CNN from scratch"

    def __init__(self, path: Path, size: int, seed: int, cache: Path):
        self.path, self.size, self.seed, self.cache = path, size, seed, cache

    def read(self, log: Callable[[str], None]) -> Folder:
        try:
            folder = read_folder(self.path, self.size)  # the skipped files are listed below and in the report
        except ValueError as error:  # the folder's layout: what to change is in the message
            raise AdviseError(str(error)) from None
        log(f"  {len(folder.files)} images of {len(folder.classes)} classes; {len(folder.skipped)} file(s) skipped")
        _log_skipped(folder.skipped, log)
        self.source = folder
        return folder

    def check(self) -> checks.Findings:
        return checks.check_folder(self.source)

    def split(self, findings: checks.Findings) -> dict[str, DataSplit]:
        folder = self.source
        self.splits = _split(folder, findings, torch.from_numpy(folder.x), [f.name for f in folder.files],
                             self.path.name, "image")
        return self.splits

    def features(self) -> None:
        splits = self.splits
        self.backbone = models.load_backbone()
        self.prep = models.preprocessing(size=self.size)
        self.pooled = {s: features.extract(self.backbone, splits[s], self.prep, cache=self.cache) for s in ("train", "val")}
        self.bottoms = {s: features.extract_stages(self.backbone, splits[s], self.prep, [ladder.TOP_K],
                                                   cache=self.cache)[ladder.TOP_K]
                        for s in ("train", "val")}  # the top stages' inputs; test images meet only the chosen model

    def ladder(self, budget: Budget, top_epochs: int | None, scratch_epochs: int | None) -> tuple[list, list]:
        splits, seed, bottoms = self.splits, self.seed, self.bottoms
        n_classes, n_train, n_val = len(self.source.classes), len(splits["train"]), len(splits["val"])
        rungs, curve = _frozen(self.pooled, ladder.lite0_heads(self.backbone), "efficientnet-lite0", seed)
        sample = slice(0, min(32, n_train))

        def top_estimate(seconds: float) -> tuple[int, float]:
            top = freezing.split(models.load_backbone(num_classes=n_classes, check_inputs=False), ladder.TOP_K).top
            return epochs_that_fit(top, (bottoms["train"].x[sample], bottoms["train"].y[sample]), n_train, n_val,
                                    seconds, cap=10)

        def scratch_estimate(seconds: float) -> tuple[int, float]:
            return epochs_that_fit(models.small_cnn(n_classes), (self.prep(splits["train"].x[sample]),
                                    splits["train"].y[sample]), n_train, n_val, seconds, cap=30)

        rungs += budget.rung("fine-tuned top stages", "--top-epochs", top_epochs, top_estimate, TOP_SHARE,
                             lambda epochs: ladder.top_stages(self.backbone, bottoms, n_classes, epochs, seed))
        rungs += budget.rung("small CNN from scratch", "--scratch-epochs", scratch_epochs, scratch_estimate,
                             SCRATCH_SHARE, lambda epochs: ladder.scratch(splits["train"], splits["val"], self.prep,
                                                                          epochs, seed))
        return rungs, curve

    def inputs(self, split: str) -> torch.Tensor:
        return self.splits[split].x

    def deployable(self, rung: ladder.Rung) -> tuple[torch.nn.Module, dict]:
        return deploy.deployable(rung.model, architecture=rung.architecture, head=rung.head,
                                 classes=self.source.classes, size=self.size, mean=self.prep.mean, std=self.prep.std)


class Texts:
    """The text half of each stage: a CSV / JSON-lines file, MiniLM's embeddings, the text ladder."""

    noun, order = "text", ladder.TEXT_KINDS
    features_note = "the pretrained encoder's embeddings"
    ladder_note = "k-NN, linear probe, fine-tuning the top encoder layers, TF-IDF from scratch"

    def __init__(self, path: Path, text_column: str | None, label_column: str | None, seed: int, cache: Path):
        self.path, self.columns, self.seed, self.cache = path, (text_column, label_column), seed, cache

    def read(self, log: Callable[[str], None]) -> textfiles.TextTable:
        try:
            table = textfiles.read_table(self.path, *self.columns)
        except textfiles.TextFileError as error:
            raise AdviseError(str(error)) from None
        log(f"  texts from column {table.text_column!r}, labels from column {table.label_column!r}"
            + (f" ({' and '.join(table.guessed)} column guessed: name others with --text-column / --label-column)"
               if table.guessed else ""))
        log(f"  {len(table.texts)} texts of {len(table.classes)} classes; {len(table.skipped)} row(s) skipped")
        _log_skipped(table.skipped, log)
        self.source = table
        return table

    def check(self) -> checks.Findings:
        return checks.check_texts(self.source)

    def split(self, findings: checks.Findings) -> dict[str, DataSplit]:
        table = self.source
        self.splits = _split(table, findings, table.texts, table.texts, self.path.stem, "text")
        self.findings = findings
        return self.splits

    def features(self) -> None:
        splits = self.splits
        self.tokenizer, self.encoder = models.load_text_encoder()
        self.tokens = {s: textmodels.tokenise(self.tokenizer, d.x) for s, d in splits.items() if len(d)}
        self.findings.long = textmodels.too_long(self.tokenizer, self.source.texts)
        self.embedded = {s: features.Features(features.embed_texts(self.tokenizer, self.encoder, splits[s].x,
                                                                   max_length=textmodels.MAX_LENGTH, cache=self.cache),
                                              splits[s].y, splits[s].classes, self.path, False, 0.0)
                         for s in ("train", "val")}  # test texts meet only the chosen model

    def ladder(self, budget: Budget, top_epochs: int | None, scratch_epochs: int | None) -> tuple[list, list]:
        splits, tokens, seed = self.splits, self.tokens, self.seed
        labels = {s: d.y for s, d in splits.items()}
        rungs, curve = _frozen(self.embedded, ladder.text_heads(self.encoder), "minilm-l6", seed)
        top = ladder.top_layers_model(rungs[1])

        def top_estimate(seconds: float) -> tuple[int, float]:
            sample = {k: v[:32] for k, v in tokens["train"].items()}
            return epochs_that_fit(top, (sample, labels["train"][:32]), len(splits["train"]), len(splits["val"]),
                                    seconds, cap=5)

        rungs += budget.rung("fine-tuned top encoder layers", "--top-epochs", top_epochs, top_estimate, TOP_SHARE,
                             lambda epochs: ladder.top_layers(top, tokens, labels, epochs, seed))
        rungs += budget.rung("TF-IDF + logistic regression from scratch", "--scratch-epochs",
                             None if scratch_epochs is None else min(scratch_epochs, 1),
                             lambda seconds: (1, 0.0),  # seconds of work: no epochs to fit
                             1.0, lambda _: ladder.tfidf(tokens, labels, len(self.source.classes), self.tokenizer, seed))
        return rungs, curve

    def inputs(self, split: str) -> dict[str, torch.Tensor]:
        return self.tokens[split]

    def deployable(self, rung: ladder.Rung) -> tuple[torch.nn.Module, dict]:
        return deploy.deployable_text(rung.model, architecture=rung.architecture, head=rung.head,
                                      classes=self.source.classes, max_length=textmodels.MAX_LENGTH,
                                      text_column=self.source.text_column)
