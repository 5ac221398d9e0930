"""`tl-advise PATH`: the course applied to your own images or texts, offline (chapter 10).

    tl-advise path/to/folder [--out FOLDER] [--minutes 5] [--size 64] [--seed 0]
    tl-advise reviews.csv [--text-column text] [--label-column label] [--out FOLDER] ...
    tl-predict FOLDER/model photo.jpg more/*.png [--onnx]
    tl-predict FOLDER/model new_texts.txt [--onnx]

PATH is a folder with one subfolder of images per class (or train/ val/ test/ folders of them),
or a CSV / JSON-lines file with a column of texts and one of labels (and, optionally, a `split`
column of train/val/test; tl_utils.textfiles). The tool

1. checks the data (tl_utils.checks) and says what it found, leaving out of validation and test
   every example that copies another split's;
2. runs the course's ladder (tl_utils.ladder) within the time budget, every choice on the
   validation split;
3. recommends a method, with its reasons in numbers;
4. scores the chosen model once on the test split and writes report.md with its figures;
5. saves the model (tl_utils.deploy: safetensors and JSON, nothing pickled), exports it to ONNX
   and checks that onnxruntime gives the same probabilities.

Bad input stops it with a message that says what was wrong and exit status 2 (the exit codes
are in `--help`); nothing half-written is left behind, and a rerun into the same folder
replaces only the files tl-advise wrote there (tl_utils.owned).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import (
    checks,
    copies,
    deploy,
    features,
    freezing,
    ladder,
    models,
    owned,
    textfiles,
    textmodels,
)
from .data import SPLITS, DataSplit, Folder, read_folder, split_by_name
from .runtime import seed_everything
from .train import forward
from .train import take as train_take

__all__ = ["Advice", "AdviseError", "advise", "recommend", "main", "predict_main", "MIN_PER_CLASS", "ADVISED_PER_CLASS",
           "ADVISED_VAL", "ONNX_TOLERANCE", "CURVE_FRACTIONS"]

MIN_PER_CLASS = 6  # images per class, without split folders: one each for validation and test at 80/10/10
ADVISED_PER_CLASS, ADVISED_VAL = checks.ADVISED_PER_CLASS, checks.ADVISED_VAL  # where the numbers get readable
ONNX_TOLERANCE = 1e-4  # the largest difference in probabilities accepted between ONNX Runtime and PyTorch
CURVE_FRACTIONS = (0.1, 0.25, 0.5, 1.0)
TOP_SHARE = 0.55  # of the time left after the features and the cheap methods
SCRATCH_SHARE = 0.7  # of the time left after that (the rest: scoring, report, export)


class AdviseError(ValueError):
    """Input the tool cannot work with; the message says what to change."""


@dataclass
class Advice:
    """Everything tl-advise measured and decided; `out` holds report.md, figures/ and model/."""

    out: Path
    findings: checks.Findings
    sizes: dict[str, int]  # images per split, after leaks were left out
    rungs: list[ladder.Rung]
    chosen: ladder.Rung
    reasons: list[str]
    curve: list[dict]
    val_labels: torch.Tensor
    test_acc: float | None
    onnx_difference: float
    seconds: float
    skipped_methods: dict[str, str] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """One row per method: validation accuracy, its 95% interval, seconds, trainable parameters."""
        n = self.sizes["val"]
        return pd.DataFrame([{"method": r.name, "validation accuracy": r.val_acc,
                              "± (95%)": ladder.interval(r.val_acc, n), "seconds": r.seconds,
                              "trainable parameters": r.trainable, "chosen": r is self.chosen}
                             for r in self.rungs]).set_index("method")


@dataclass
class _Prepared:
    """What the modality-specific half of `advise` hands to the common half."""

    source: Folder | textfiles.TextTable
    findings: checks.Findings
    splits: dict[str, DataSplit]
    rungs: list[ladder.Rung]
    curve: list[dict]
    skipped: dict[str, str]
    inputs: Callable[[str], torch.Tensor | dict]  # split name -> what the deployed model takes
    deployable: Callable[[ladder.Rung], tuple[torch.nn.Module, dict]]
    order: tuple[str, ...] = ladder.KINDS  # the ladder's order for `ladder.choose`
    tokenizer: object = None


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


def _enough(y: np.ndarray, classes: list[str], fixed_splits: bool, noun: str) -> None:
    if len(classes) < 2:
        raise AdviseError(f"only one class ({classes[0]!r}): a classifier needs at least two.")
    counts = np.bincount(y, minlength=len(classes))
    if not fixed_splits and counts.min() < MIN_PER_CLASS:
        few = {c: int(n) for c, n in zip(classes, counts) if n < MIN_PER_CLASS}
        raise AdviseError(f"too few {noun}s in class(es) {few}: at least {MIN_PER_CLASS} per class are needed to "
                          f"train, validate and test ({ADVISED_PER_CLASS} or more give numbers worth reading).")


def _log_skipped(skipped: list, log: Callable[[str], None]) -> None:
    for s in skipped[:20]:
        log(f"  skipped {s}")
    if len(skipped) > 20:
        log(f"  ... and {len(skipped) - 20} more (all in report.md)")


def _left(start: float, minutes: float) -> float:
    return max(0.0, minutes * 60 - (time.perf_counter() - start))


def _epochs_that_fit(model: torch.nn.Module, sample: tuple, n_train: int, n_val: int,
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


def _frozen(pooled: dict[str, features.Features], attach: Callable, architecture: str,
            seed: int) -> tuple[list[ladder.Rung], list[dict]]:
    """The rungs on frozen features (k-NN, linear probe) and the label-efficiency curve."""
    rungs = [ladder.knn(pooled["train"], pooled["val"], attach, architecture),
             ladder.probe(pooled["train"], pooled["val"], seed, attach, architecture)]
    return rungs, ladder.label_curve(pooled["train"], pooled["val"], CURVE_FRACTIONS, seed)


def _skip_reason(per_epoch: float, flag: str) -> str:
    return f"one epoch takes about {per_epoch:.0f} s, over the budget" if per_epoch else f"{flag} 0"


def _images(path: Path, size: int, seed: int, start: float, minutes: float, top_epochs: int | None,
            scratch_epochs: int | None, log: Callable[[str], None], cache: Path) -> _Prepared:
    """Checks, features and the ladder for a folder of images."""
    folder = read_folder(path, size)  # the skipped files are listed below and in the report
    _enough(folder.y, folder.classes, folder.fixed_splits, "image")
    findings = checks.check_folder(folder)
    splits = _split(folder, findings, torch.from_numpy(folder.x), [f.name for f in folder.files], path.name, "image")
    log(f"read {len(folder.files)} images of {len(folder.classes)} classes; {len(folder.skipped)} file(s) skipped; "
        f"{len(findings.left_out)} image(s) copying another split's left out of evaluation")
    _log_skipped(folder.skipped, log)
    n_classes, n_val = len(folder.classes), len(splits["val"])

    log("[2/5] features of the pretrained backbone (in a temporary folder, deleted at the end)")
    backbone = models.load_backbone()
    prep = models.preprocessing(size=size)
    pooled = {s: features.extract(backbone, splits[s], prep, cache=cache) for s in ("train", "val")}
    bottoms = {s: features.extract_stages(backbone, splits[s], prep, [ladder.TOP_K], cache=cache)[ladder.TOP_K]
               for s in ("train", "val")}  # the top stages' inputs; test images meet only the chosen model

    log("[3/5] the ladder: k-NN, linear probe, fine-tuning the top stages, a small CNN from scratch")
    rungs, curve = _frozen(pooled, ladder.lite0_heads(backbone), "efficientnet-lite0", seed)
    skipped: dict[str, str] = {}
    sample = slice(0, min(32, len(splits["train"])))
    epochs, per_epoch = top_epochs, 0.0
    if epochs is None:  # as many as fit in the budget's share
        top = freezing.split(models.load_backbone(num_classes=n_classes, check_inputs=False), ladder.TOP_K).top
        epochs, per_epoch = _epochs_that_fit(top, (bottoms["train"].x[sample], bottoms["train"].y[sample]),
                                             len(splits["train"]), n_val, TOP_SHARE * _left(start, minutes), cap=10)
    if epochs > 0:
        rungs.append(ladder.top_stages(backbone, bottoms, n_classes, epochs, seed))
    else:
        skipped["fine-tuned top stages"] = _skip_reason(per_epoch, "--top-epochs")
    epochs, per_epoch = scratch_epochs, 0.0
    if epochs is None:
        epochs, per_epoch = _epochs_that_fit(models.small_cnn(n_classes), (prep(splits["train"].x[sample]),
                                             splits["train"].y[sample]), len(splits["train"]), n_val,
                                             SCRATCH_SHARE * _left(start, minutes), cap=30)
    if epochs > 0:
        rungs.append(ladder.scratch(splits["train"], splits["val"], prep, epochs, seed))
    else:
        skipped["small CNN from scratch"] = _skip_reason(per_epoch, "--scratch-epochs")

    def deployable(rung: ladder.Rung) -> tuple[torch.nn.Module, dict]:
        return deploy.deployable(rung.model, architecture=rung.architecture, head=rung.head, classes=folder.classes,
                                 size=size, mean=prep.mean, std=prep.std)

    return _Prepared(folder, findings, splits, rungs, curve, skipped, lambda s: splits[s].x, deployable)


def _texts(path: Path, text_column: str | None, label_column: str | None, seed: int, start: float, minutes: float,
           top_epochs: int | None, scratch_epochs: int | None, log: Callable[[str], None], cache: Path) -> _Prepared:
    """Checks, embeddings and the ladder for a CSV / JSON-lines file of texts and labels."""
    try:
        table = textfiles.read_table(path, text_column, label_column)
    except textfiles.TextFileError as error:
        raise AdviseError(str(error)) from None
    log(f"  texts from column {table.text_column!r}, labels from column {table.label_column!r}"
        + (f" ({' and '.join(table.guessed)} column guessed: name others with --text-column / --label-column)"
           if table.guessed else ""))
    _enough(table.y, table.classes, table.fixed_splits, "text")
    findings = checks.check_texts(table)
    splits = _split(table, findings, table.texts, table.texts, path.stem, "text")
    log(f"read {len(table.texts)} texts of {len(table.classes)} classes; {len(table.skipped)} row(s) skipped; "
        f"{len(findings.left_out)} text(s) copying another split's left out of evaluation")
    _log_skipped(table.skipped, log)

    log("[2/5] embeddings of the pretrained encoder (in a temporary folder, deleted at the end)")
    tokenizer, encoder = models.load_text_encoder()
    tokens = {s: textmodels.tokenise(tokenizer, d.x) for s, d in splits.items() if len(d)}
    labels = {s: d.y for s, d in splits.items()}
    findings.long = textmodels.too_long(tokenizer, table.texts)
    embedded = {s: features.Features(features.embed_texts(tokenizer, encoder, splits[s].x, max_length=textmodels.MAX_LENGTH,
                                                          cache=cache), splits[s].y, splits[s].classes, path, False, 0.0)
                for s in ("train", "val")}  # test texts meet only the chosen model

    log("[3/5] the ladder: k-NN, linear probe, fine-tuning the top encoder layers, TF-IDF from scratch")
    rungs, curve = _frozen(embedded, ladder.text_heads(encoder), "minilm-l6", seed)
    skipped: dict[str, str] = {}
    top = ladder.top_layers_model(rungs[1])
    epochs, per_epoch = top_epochs, 0.0
    if epochs is None:
        sample = {k: v[:32] for k, v in tokens["train"].items()}
        epochs, per_epoch = _epochs_that_fit(top, (sample, labels["train"][:32]), len(splits["train"]),
                                             len(splits["val"]), TOP_SHARE * _left(start, minutes), cap=5)
    if epochs > 0:
        rungs.append(ladder.top_layers(top, tokens, labels, epochs, seed))
    else:
        skipped["fine-tuned top encoder layers"] = _skip_reason(per_epoch, "--top-epochs")
    if scratch_epochs != 0:  # TF-IDF takes seconds: no epochs to fit
        rungs.append(ladder.tfidf(tokens, labels, len(table.classes), tokenizer, seed))
    else:
        skipped["TF-IDF + logistic regression from scratch"] = "--scratch-epochs 0"

    def deployable(rung: ladder.Rung) -> tuple[torch.nn.Module, dict]:
        return deploy.deployable_text(rung.model, architecture=rung.architecture, head=rung.head,
                                      classes=table.classes, max_length=textmodels.MAX_LENGTH,
                                      text_column=table.text_column)

    return _Prepared(table, findings, splits, rungs, curve, skipped, lambda s: tokens[s], deployable, ladder.TEXT_KINDS,
                     tokenizer)


def advise(path: Path | str, out: Path | str | None = None, *, minutes: float = 5.0, size: int = 64,
           seed: int = 0, top_epochs: int | None = None, scratch_epochs: int | None = None,
           text_column: str | None = None, label_column: str | None = None,
           log: Callable[[str], None] = print) -> Advice:
    """Check the data, run the ladder, recommend, score on test once, report, save and export.

    path: a folder of images, or a CSV / JSON-lines file of texts and labels (text_column and
    label_column name its columns; guessed when not given).
    top_epochs / scratch_epochs: fixed numbers of epochs instead of what fits in `minutes`
    (for numbers that repeat exactly, as in chapter 10); 0 skips the method.
    """
    start = time.perf_counter()
    path = Path(path).expanduser()
    if not path.exists():
        raise AdviseError(f"{path} does not exist: give a folder with one subfolder of images per class, or a CSV "
                          "or JSON-lines file of texts and labels.")
    if size < 32:
        raise AdviseError(f"--size {size} is too small: the backbone needs at least 32 pixels (64 or more).")
    name = path.resolve().stem if path.is_file() else path.resolve().name  # reviews.csv -> reviews-advice
    out = (Path(out) if out is not None else Path.cwd() / f"{name}-advice").expanduser().resolve()
    _check_out(path, out)
    seed_everything(seed)
    log(f"[1/5] checking {path}")
    with tempfile.TemporaryDirectory(prefix="tl-advise-features-") as cache:  # your features are not kept anywhere
        if path.is_file():
            run = _texts(path, text_column, label_column, seed, start, minutes, top_epochs, scratch_epochs, log,
                         Path(cache))
        else:
            run = _images(path, size, seed, start, minutes, top_epochs, scratch_epochs, log, Path(cache))
    for name, why in run.skipped.items():
        log(f"  skipped {name}: {why}")
    splits, noun = run.splits, run.findings.noun

    chosen = ladder.choose(run.rungs, splits["val"].y, order=run.order)
    reasons = recommend(run.rungs, chosen, splits["val"].y, run.curve, run.skipped, noun)
    log("[4/5] " + reasons[0])

    log("[5/5] scoring on test once, writing the report, saving and exporting the model")
    deployed, config = run.deployable(chosen)
    test = splits["test"]
    probs = (deploy.probabilities(deployed, run.inputs("test")) if len(test)
             else torch.zeros(0, len(run.source.classes)))
    test_acc = float((probs.argmax(1) == test.y).float().mean()) if len(test) else None
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))  # renamed to `out` when complete
    try:
        deploy.save(deployed, config, work / "model", tokenizer=run.tokenizer)
        check = train_take(run.inputs("test" if len(test) else "val"), torch.arange(min(64, len(test) or
                                                                                        len(splits["val"]))))
        onnx_difference = float(np.abs(deploy.onnx_probabilities(work / "model" / "model.onnx", check)
                                       - deploy.probabilities(deployed, check).numpy()).max())
        if not onnx_difference <= ONNX_TOLERANCE:
            raise AdviseError(f"the ONNX export disagrees with PyTorch by {onnx_difference:.1e} (more than "
                              f"{ONNX_TOLERANCE:.0e}): nothing was saved. Please report this with your torch and "
                              "onnxruntime versions.")
        advice = Advice(out, run.findings, {s: len(d) for s, d in splits.items()}, run.rungs, chosen, reasons,
                        run.curve, splits["val"].y, test_acc, onnx_difference, time.perf_counter() - start,
                        run.skipped)
        from .report import write_report  # matplotlib only when a report is written

        write_report(advice, run.source, splits, probs, folder=work)
        _check_out(path, out)  # again: minutes have passed since the first check
        owned.publish(work, out, legacy=_is_advice(out))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    example = "IMAGE" if noun == "image" else "TEXTS.txt"
    log(f"report: {out / 'report.md'}; model: {out / 'model'} (tl-predict {out / 'model'} {example}...)")
    return advice


def _is_advice(folder: Path) -> bool:
    """True for a folder a previous tl-advise wrote: what it wrote there may be replaced, nothing else."""
    return owned.owned_files(folder) is not None or (
        (folder / "report.md").is_file() and (folder / "model" / "model.json").is_file())  # before manifests


def _check_out(path: Path, out: Path) -> None:
    """Refuse an output folder that overlaps the data or holds files of someone else's."""
    data = path.resolve()
    if out == data or data in out.parents:
        raise AdviseError(f"--out {out} is inside {path}: the next run would read the report as data; "
                          "choose a folder outside it.")
    if out in data.parents:
        raise AdviseError(f"{path} is inside the output folder {out}: move the data out of it, or choose "
                          "another --out.")
    if out.exists() and not _is_advice(out) and (not out.is_dir() or any(out.iterdir())):
        raise AdviseError(f"{out} exists and was not written by tl-advise: choose another --out (tl-advise "
                          "only writes into a new folder, an empty one, or one it wrote before).")


def _points(x: float) -> str:
    return f"{100 * x:.1f} points"


def recommend(rungs: list[ladder.Rung], chosen: ladder.Rung, val_labels: torch.Tensor, curve: list[dict],
              skipped: dict[str, str] | None = None, noun: str = "image") -> list[str]:
    """The recommendation, then its reasons, each a sentence with the numbers behind it; `noun`
    ("image" or "text") says what the examples are.

    Two methods are compared on the same validation images (ladder.paired_interval): a gain is
    called real only when it is larger than its 95% interval.
    """
    kinds = {r.kind: r for r in rungs}
    probe, top, cnn = kinds.get("probe"), kinds.get("top"), kinds.get("scratch")
    best = ladder.best_of(rungs)
    n_val = len(val_labels)
    tuned = "the top stages" if noun == "image" else "the top encoder layers"
    baseline = "small CNN trained from scratch" if noun == "image" else "TF-IDF + logistic regression baseline"
    far = ("your images may be far from the photos the backbone learnt from (chapter 6)" if noun == "image" else
           "the words alone may carry your labels, or your texts may be far from those the encoder learnt from")

    def compare(a: ladder.Rung, b: ladder.Rung) -> tuple[float, float]:
        return ladder.paired_interval(a.val_pred, b.val_pred, val_labels)

    behind, noise = compare(best, chosen)  # the comparison ladder.choose made
    lines = [f"Use the {chosen.name}: {chosen.val_acc:.1%} on validation (± {ladder.interval(chosen.val_acc, n_val):.1%}"
             f"), trained in {chosen.seconds:.1f} s" + ("." if chosen is best else
             f"; the best, the {best.name} ({best.val_acc:.1%}), is {_points(behind)} ahead, within the noise "
             f"(± {_points(noise)}) of this validation split, and costs more to train or to run.")]
    if top is not None and probe is not None:
        gain, noise = compare(top, probe)
        if gain > noise:
            lines.append(f"Fine-tuning {tuned} gains {_points(gain)} over the linear probe, more than the "
                         f"noise (± {_points(noise)}): worth its {top.seconds:.0f} s.")
        elif gain > 0:
            lines.append(f"Fine-tuning {tuned} scored {_points(gain)} above the linear probe, within the noise "
                         f"(± {_points(noise)}): this validation split cannot tell them apart.")
        else:
            lines.append(f"Fine-tuning {tuned} did not beat the linear probe ({top.val_acc:.1%} vs "
                         f"{probe.val_acc:.1%}): the pretrained features already fit this task as well as it can tell.")
    if cnn is not None:
        transfer = max((r for r in rungs if r.kind != "scratch"), key=lambda r: r.val_acc)
        margin, noise = compare(transfer, cnn)
        if margin > noise:
            lines.append(f"Transfer beats the {baseline} by {_points(margin)}, more than the "
                         f"noise (± {_points(noise)}): {transfer.val_acc:.1%} vs {cnn.val_acc:.1%}.")
        else:
            lines.append(f"The {baseline} is within the noise of transfer ({cnn.val_acc:.1%} vs "
                         f"{transfer.val_acc:.1%}, ± {_points(noise)}): {far}; compare on more data before trusting "
                         "transfer here.")
    if len(curve) >= 2:
        half = min(curve[:-1], key=lambda r: abs(r["fraction"] - 0.5))
        gain, noise = ladder.paired_interval(curve[-1]["val_pred"], half["val_pred"], val_labels)
        verdict = (": more labels are likely to help." if gain > noise else
                   f", within the noise (± {_points(noise)}): this validation split cannot tell whether more labels "
                   "would help.")
        lines.append(f"The probe gained {_points(gain)} from {half['fraction']:.0%} to all of the labels" + verdict)
    close = [r for r in rungs if r is not best and ladder.close_to_best(best, r, val_labels)]
    if close or n_val < ADVISED_VAL:
        names = ", ".join(r.name for r in close) or "none"
        advised = f" (at least {ADVISED_VAL} are advised)" if n_val < ADVISED_VAL else ""
        lines.append(f"Caution: the validation split has {n_val} {noun}s{advised}; within the noise of the best: "
                     f"{names}. More validation {noun}s might tell them apart.")
    flattered = [r for r in rungs if r.tried > 1]
    if flattered:
        most = max(flattered, key=lambda r: ladder.selection_lift(r, n_val))
        settings = "; ".join(f"the {r.name}, {r.tried}" for r in flattered)
        lines.append(f"Optimism: these scores are each the best of several settings tried on this same validation "
                     f"split ({settings}), so they flatter those methods, by up to about "
                     f"{_points(ladder.selection_lift(most, n_val))} for the {most.name} (one standard error times "
                     "the expected best of that many draws); the test split, scored once, is not flattered.")
    for name, why in (skipped or {}).items():
        lines.append(f"Not run: {name} ({why}); give more --minutes to include it.")
    return lines


EXIT_CODES = """exit status:
  0    done
  1    an internal failure (a bug, or a library that misbehaved): run again with --debug and report the traceback
  2    a problem with the arguments or the data: the message says what to change
  130  interrupted (Ctrl-C): nothing was written, an earlier output folder is as it was"""


def _number(kind: type, low: float, what: str) -> Callable[[str], float]:
    """An argparse type: a number of `kind` at least `low`, refused with a message otherwise."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value >= low:
            raise argparse.ArgumentTypeError(f"{text} is too small: {what} must be at least {low:g}")
        return value
    return parse


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("tl-hands-on")
    except PackageNotFoundError:  # run from a checkout that was not installed
        release = "unknown"
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {release}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of a failure")
    return parser


def _run(prog: str, debug: bool, work: Callable[[], int]) -> int:
    """Run `work` with the exit codes of EXIT_CODES: input errors 2, internal failures 1, Ctrl-C 130."""
    try:
        return work()
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted" + ("; nothing was written, an earlier output folder is as it was"
                                          if prog == "tl-advise" else ""), file=sys.stderr)
        return 130
    except (AdviseError, OSError, ValueError) as error:  # FileNotFoundError and FileExistsError are OSErrors
        if debug:
            raise
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - a bug: one line, and how to see and report it
        if debug:
            raise
        print(f"{prog}: internal failure ({type(error).__name__}: {error}). Run again with --debug for the "
              "traceback, and please report it.", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    """The `tl-advise` command."""
    parser = _parser("tl-advise", __doc__.split("\n\n")[0])
    parser.add_argument("path", help="a folder of class subfolders of images (or train/ val/ test/ folders of them), "
                                     "or a CSV / JSON-lines file of texts and labels")
    parser.add_argument("--out", help="where to write report.md, figures/ and model/ (default: PATH-advice here); "
                                      "a rerun replaces only what tl-advise wrote there")
    parser.add_argument("--minutes", type=_number(float, 0.001, "--minutes"), default=5.0,
                        help="time budget (default 5, for a laptop CPU)")
    parser.add_argument("--size", type=_number(int, 32, "--size"), default=64,
                        help="image side in pixels (default 64; 128+ on a GPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top-epochs", type=_number(int, 0, "--top-epochs"),
                        help="fixed epochs for fine-tuning (default: what fits; 0 skips it)")
    parser.add_argument("--scratch-epochs", type=_number(int, 0, "--scratch-epochs"),
                        help="fixed epochs for the CNN from scratch (default: what fits; 0 skips it; for texts, "
                             "0 skips the TF-IDF baseline)")
    parser.add_argument("--text-column", help="texts: the column that holds the texts (default: guessed, and said)")
    parser.add_argument("--label-column", help="texts: the column that holds the labels (default: guessed, and said)")
    loud = parser.add_mutually_exclusive_group()
    loud.add_argument("-q", "--quiet", action="store_true", help="print only the recommendation and errors")
    loud.add_argument("-v", "--verbose", action="store_true", help="also show progress bars")
    args = parser.parse_args(argv)
    if args.verbose:
        os.environ["TL_PROGRESS"] = "1"
    elif "TL_PROGRESS" not in os.environ:
        os.environ["TL_PROGRESS"] = "1" if sys.stderr.isatty() else "0"  # no bars in a log file

    def work() -> int:
        advice = advise(args.path, args.out, minutes=args.minutes, size=args.size, seed=args.seed,
                        top_epochs=args.top_epochs, scratch_epochs=args.scratch_epochs, text_column=args.text_column,
                        label_column=args.label_column,
                        log=(lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr)))
        print("\n".join(advice.reasons))
        return 0

    return _run("tl-advise", args.debug, work)


def predict_main(argv: list[str] | None = None) -> int:
    """The `tl-predict` command: one line per image (or text), label and probability, tab-separated."""
    parser = _parser("tl-predict", "Label images or texts with a model saved by tl-advise.")
    parser.add_argument("model", help="the model folder tl-advise wrote (it holds model.json)")
    parser.add_argument("files", nargs="+", help="image files or folders of them (searched recursively); for a text "
                                                 "model, .txt files (one text per line), CSV / JSON-lines files, or "
                                                 "folders of them")
    parser.add_argument("--onnx", action="store_true", help="run model.onnx with onnxruntime instead of PyTorch")
    parser.add_argument("--json", action="store_true", help="one JSON object per line, with every class's probability")
    args = parser.parse_args(argv)

    def work() -> int:
        failed = 0
        for rows, skipped in deploy.iter_predictions(args.model, args.files, onnx=args.onnx):
            for row in rows:  # printed as each batch is done, not at the end
                print(json.dumps(row, ensure_ascii=False) if args.json else
                      f"{row['file']}\t{row['label']}\t{row['probability']:.3f}", flush=True)
            for s in skipped:
                print(f"tl-predict: skipped {s}", file=sys.stderr)
            failed += len(skipped)
        return 2 if failed else 0

    return _run("tl-predict", args.debug, work)


if __name__ == "__main__":
    sys.exit(main())
