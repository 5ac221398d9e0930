"""`tl-advise PATH`: the course applied to your own images, offline (chapter 10).

    tl-advise path/to/folder [--out FOLDER] [--minutes 5] [--size 64] [--seed 0]
    tl-predict FOLDER/model photo.jpg more/*.png [--onnx]

PATH holds one subfolder of images per class (or train/ val/ test/ folders of them). The tool

1. checks the data (tl_utils.checks) and says what it found, leaving out of validation and test
   every image that copies another split's;
2. runs the course's ladder (tl_utils.ladder) within the time budget, every choice on the
   validation split;
3. recommends a method, with its reasons in numbers;
4. scores the chosen model once on the test split and writes report.md with its figures;
5. saves the model (tl_utils.deploy: safetensors and JSON, nothing pickled), exports it to ONNX
   and checks that onnxruntime gives the same probabilities.

Bad input stops it with a message that says what was wrong and exit status 2; nothing
half-written is left behind.
"""

from __future__ import annotations

import argparse
import copy
import math
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import checks, deploy, features, freezing, ladder, models
from .data import SPLITS, DataSplit, read_folder, split_by_name
from .runtime import seed_everything

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


def _splits(path: Path, size: int, log: Callable[[str], None]) -> tuple:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the skipped files go into the report instead
        folder = read_folder(path, size)
    counts = np.bincount(folder.y, minlength=len(folder.classes))
    if not folder.fixed_splits and counts.min() < MIN_PER_CLASS:
        few = {c: int(n) for c, n in zip(folder.classes, counts) if n < MIN_PER_CLASS}
        raise AdviseError(f"too few images in class(es) {few}: at least {MIN_PER_CLASS} per class are needed to "
                          f"train, validate and test ({ADVISED_PER_CLASS} or more give numbers worth reading).")
    findings = checks.check_folder(folder)
    codes = checks.without_leaks(folder, findings)
    if folder.fixed_splits and not (codes == 1).any():  # train/ and test/ only: validation from train
        keep = codes >= 0
        names = [f.name for f, k in zip(folder.files, keep) if k]
        codes[keep] = split_by_name(folder.y[keep], names, (0.8, 0.2, 0.0), codes[keep] == 2)
    x, y = torch.from_numpy(folder.x), torch.from_numpy(folder.y)
    splits = {s: DataSplit(x[codes == i], y[codes == i], folder.classes, path.name, s) for i, s in enumerate(SPLITS)}
    missing = [c for c in folder.classes if not (splits["train"].y == folder.classes.index(c)).any()]
    if missing:
        raise AdviseError(f"class(es) {missing} have no training image: add some to train/.")
    if len(splits["val"]) == 0:
        raise AdviseError(f"no image is left for validation: add images ({ADVISED_PER_CLASS} or more per class).")
    log(f"read {len(folder.files)} images of {len(folder.classes)} classes; {len(folder.skipped)} file(s) skipped; "
        f"{len(findings.left_out)} image(s) copying another split's left out of evaluation")
    for skipped in folder.skipped[:20]:
        log(f"  skipped {skipped}")
    if len(folder.skipped) > 20:
        log(f"  ... and {len(folder.skipped) - 20} more (all in report.md)")
    return folder, findings, splits


def _left(start: float, minutes: float) -> float:
    return max(0.0, minutes * 60 - (time.perf_counter() - start))


def _epochs_that_fit(model: torch.nn.Module, sample: tuple[torch.Tensor, torch.Tensor], n_train: int, n_val: int,
                     seconds: float, cap: int, transform=None) -> tuple[int, float]:
    """(epochs, seconds per epoch): how many epochs of training `model` fit in `seconds`, from the
    time of one step on the CPU (on a GPU the estimate is pessimistic: more would fit)."""
    trial = copy.deepcopy(model).train()
    x, y = sample
    step = []
    for _ in range(2):  # the first step pays for warming up
        t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(trial(transform(x) if transform else x), y)
        loss.backward()
        step.append(time.perf_counter() - t0)
    per_epoch = step[-1] * (math.ceil(n_train / len(x)) + math.ceil(n_val / len(x)) / 3)
    return max(0, min(cap, int(seconds // per_epoch))), per_epoch


def advise(path: Path | str, out: Path | str | None = None, *, minutes: float = 5.0, size: int = 64,
           seed: int = 0, top_epochs: int | None = None, scratch_epochs: int | None = None,
           log: Callable[[str], None] = print) -> Advice:
    """Check the folder, run the ladder, recommend, score on test once, report, save and export.

    top_epochs / scratch_epochs: fixed numbers of epochs instead of what fits in `minutes`
    (for numbers that repeat exactly, as in chapter 10); 0 skips the method.
    """
    start = time.perf_counter()
    path = Path(path).expanduser()
    if not path.exists():
        raise AdviseError(f"{path} does not exist: give the folder that holds one subfolder of images per class.")
    if path.is_file():
        raise AdviseError(f"{path} is a file: give a folder with one subfolder of images per class "
                          "(texts in CSV or JSON lines are not supported yet).")
    if size < 32:
        raise AdviseError(f"--size {size} is too small: the backbone needs at least 32 pixels (64 or more).")
    out = (Path(out) if out is not None else Path.cwd() / f"{path.resolve().name}-advice").expanduser().resolve()
    if out == path.resolve() or path.resolve() in out.parents:
        raise AdviseError(f"--out {out} is inside {path}: the next run would read the report as a class; "
                          "choose a folder outside it.")
    if out.exists() and not _is_advice(out) and (not out.is_dir() or any(out.iterdir())):
        raise AdviseError(f"{out} exists and was not written by tl-advise: choose another --out.")
    seed_everything(seed)
    log(f"[1/5] checking {path}")
    folder, findings, splits = _splits(path, size, log)
    n_classes, n_val = len(folder.classes), len(splits["val"])

    log("[2/5] features of the pretrained backbone")
    backbone = models.load_backbone()
    prep = models.preprocessing(size=size)
    pooled = {s: features.extract(backbone, d, prep) for s, d in splits.items() if len(d)}
    bottoms = {s: features.extract_stages(backbone, splits[s], prep, [ladder.TOP_K])[ladder.TOP_K]
               for s in ("train", "val")}  # the top stages' inputs, cached like the features

    log("[3/5] the ladder: k-NN, linear probe, fine-tuning the top stages, a small CNN from scratch")
    rungs = [ladder.knn(backbone, pooled["train"], pooled["val"]),
             ladder.probe(backbone, pooled["train"], pooled["val"], seed)]
    curve = ladder.label_curve(pooled["train"], pooled["val"], CURVE_FRACTIONS, seed)
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
        skipped["fine-tuned top stages"] = (f"one epoch takes about {per_epoch:.0f} s, over the budget" if per_epoch
                                            else "--top-epochs 0")
    epochs, per_epoch = scratch_epochs, 0.0
    if epochs is None:
        epochs, per_epoch = _epochs_that_fit(models.small_cnn(n_classes), (prep(splits["train"].x[sample]),
                                             splits["train"].y[sample]), len(splits["train"]), n_val,
                                             SCRATCH_SHARE * _left(start, minutes), cap=30)
    if epochs > 0:
        rungs.append(ladder.scratch(splits["train"], splits["val"], prep, epochs, seed))
    else:
        skipped["small CNN from scratch"] = (f"one epoch takes about {per_epoch:.0f} s, over the budget" if per_epoch
                                             else "--scratch-epochs 0")
    for name, why in skipped.items():
        log(f"  skipped {name}: {why}")

    chosen = ladder.choose(rungs)
    reasons = recommend(rungs, chosen, splits["val"].y, curve, skipped)
    log("[4/5] " + reasons[0])

    log("[5/5] scoring on test once, writing the report, saving and exporting the model")
    deployed, config = deploy.deployable(chosen.model, architecture=chosen.architecture, head=chosen.head,
                                         classes=folder.classes, size=size, mean=prep.mean, std=prep.std)
    test = splits["test"]
    probs = deploy.probabilities(deployed, test.x) if len(test) else torch.zeros(0, n_classes)
    test_acc = float((probs.argmax(1) == test.y).float().mean()) if len(test) else None
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))  # renamed to `out` when complete
    try:
        deploy.save(deployed, config, work / "model")
        check = test.x[:64] if len(test) else splits["val"].x[:64]
        onnx_difference = float(np.abs(deploy.onnx_probabilities(work / "model" / "model.onnx", check)
                                       - deploy.probabilities(deployed, check).numpy()).max())
        if not onnx_difference <= ONNX_TOLERANCE:
            raise AdviseError(f"the ONNX export disagrees with PyTorch by {onnx_difference:.1e} (more than "
                              f"{ONNX_TOLERANCE:.0e}): nothing was saved. Please report this with your torch and "
                              "onnxruntime versions.")
        advice = Advice(work, findings, {s: len(d) for s, d in splits.items()}, rungs, chosen, reasons, curve,
                        splits["val"].y, test_acc, onnx_difference, time.perf_counter() - start, skipped)
        from .report import write_report  # matplotlib only when a report is written

        write_report(advice, folder, splits, probs)
        deploy.replace_folder(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    advice.out = out
    log(f"report: {out / 'report.md'}; model: {out / 'model'} (tl-predict {out / 'model'} IMAGE...)")
    return advice


def _is_advice(folder: Path) -> bool:
    """True for a folder a previous tl-advise wrote (it may be replaced)."""
    return (folder / "report.md").is_file() and (folder / "model" / "model.json").is_file()


def _points(x: float) -> str:
    return f"{100 * x:.1f} points"


def recommend(rungs: list[ladder.Rung], chosen: ladder.Rung, val_labels: torch.Tensor, curve: list[dict],
              skipped: dict[str, str] | None = None) -> list[str]:
    """The recommendation, then its reasons, each a sentence with the numbers behind it.

    Two methods are compared on the same validation images (ladder.paired_interval): a gain is
    called real only when it is larger than its 95% interval.
    """
    kinds = {r.kind: r for r in rungs}
    probe, top, cnn = kinds.get("probe"), kinds.get("top"), kinds.get("scratch")
    best = max(rungs, key=lambda r: r.val_acc)
    n_val = len(val_labels)

    def compare(a: ladder.Rung, b: ladder.Rung) -> tuple[float, float]:
        return ladder.paired_interval(a.val_pred, b.val_pred, val_labels)

    lines = [f"Use the {chosen.name}: {chosen.val_acc:.1%} on validation (± {ladder.interval(chosen.val_acc, n_val):.1%}"
             f"), trained in {chosen.seconds:.1f} s" + ("." if chosen is best else
             f", within {_points(ladder.TOLERANCE)} of the best ({best.name}, {best.val_acc:.1%}), which trains more.")]
    if top is not None and probe is not None:
        gain, noise = compare(top, probe)
        if gain > noise:
            lines.append(f"Fine-tuning the top stages gains {_points(gain)} over the linear probe, more than the "
                         f"noise (± {_points(noise)}): worth its {top.seconds:.0f} s.")
        elif gain > 0:
            lines.append(f"Fine-tuning the top stages scored {_points(gain)} above the linear probe, within the noise "
                         f"(± {_points(noise)}): this validation split cannot tell them apart.")
        else:
            lines.append(f"Fine-tuning the top stages did not beat the linear probe ({top.val_acc:.1%} vs "
                         f"{probe.val_acc:.1%}): the pretrained features already fit this task as well as it can tell.")
    if cnn is not None:
        transfer = max((r for r in rungs if r.kind != "scratch"), key=lambda r: r.val_acc)
        margin, noise = compare(transfer, cnn)
        if margin > noise:
            lines.append(f"Transfer beats the small CNN trained from scratch by {_points(margin)}, more than the "
                         f"noise (± {_points(noise)}): {transfer.val_acc:.1%} vs {cnn.val_acc:.1%}.")
        else:
            lines.append(f"The small CNN trained from scratch is within the noise of transfer ({cnn.val_acc:.1%} vs "
                         f"{transfer.val_acc:.1%}, ± {_points(noise)}): your images may be far from the photos the "
                         "backbone learnt from (chapter 6); compare on more data before trusting transfer here.")
    if len(curve) >= 2:
        half = min(curve[:-1], key=lambda r: abs(r["fraction"] - 0.5))
        gain, noise = ladder.paired_interval(curve[-1]["val_pred"], half["val_pred"], val_labels)
        verdict = (": more labels are likely to help." if gain > noise else
                   f", within the noise (± {_points(noise)}): this validation split cannot tell whether more labels "
                   "would help.")
        lines.append(f"The probe gained {_points(gain)} from {half['fraction']:.0%} to all of the labels" + verdict)
    close = [r for r in rungs if r is not best and compare(best, r)[0] <= compare(best, r)[1]]
    if close or n_val < ADVISED_VAL:
        names = ", ".join(r.name for r in close) or "none"
        advised = f" (at least {ADVISED_VAL} are advised)" if n_val < ADVISED_VAL else ""
        lines.append(f"Caution: the validation split has {n_val} images{advised}; within the noise of the best: "
                     f"{names}. More validation images would tell them apart.")
    for name, why in (skipped or {}).items():
        lines.append(f"Not run: {name} ({why}); give more --minutes to include it.")
    return lines


def main(argv: list[str] | None = None) -> int:
    """The `tl-advise` command."""
    parser = argparse.ArgumentParser(prog="tl-advise", description=__doc__.split("\n\n")[0])
    parser.add_argument("path", help="a folder of class subfolders of images (or train/ val/ test/ folders of them)")
    parser.add_argument("--out", help="where to write report.md, figures/ and model/ (default: PATH-advice here)")
    parser.add_argument("--minutes", type=float, default=5.0, help="time budget (default 5, for a laptop CPU)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (default 64; 128+ on a GPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top-epochs", type=int, help="fixed epochs for fine-tuning (default: what fits)")
    parser.add_argument("--scratch-epochs", type=int, help="fixed epochs for the CNN from scratch (default: what fits)")
    args = parser.parse_args(argv)
    try:
        advice = advise(args.path, args.out, minutes=args.minutes, size=args.size, seed=args.seed,
                        top_epochs=args.top_epochs, scratch_epochs=args.scratch_epochs,
                        log=lambda line: print(line, file=sys.stderr))
    except (AdviseError, OSError, ValueError) as error:  # FileNotFoundError and FileExistsError are OSErrors
        print(f"tl-advise: {error}", file=sys.stderr)
        return 2
    print("\n".join(advice.reasons))
    return 0


def predict_main(argv: list[str] | None = None) -> int:
    """The `tl-predict` command: one line per image, label and probability, tab-separated."""
    parser = argparse.ArgumentParser(prog="tl-predict", description="Label images with a model saved by tl-advise.")
    parser.add_argument("model", help="the model folder tl-advise wrote (it holds model.json)")
    parser.add_argument("files", nargs="+", help="image files")
    parser.add_argument("--onnx", action="store_true", help="run model.onnx with onnxruntime instead of PyTorch")
    args = parser.parse_args(argv)
    try:
        if args.onnx:
            _, config = deploy.load(args.model)
            if not (Path(args.model) / "model.onnx").is_file():
                raise FileNotFoundError(f"{args.model} has no model.onnx: run tl-predict without --onnx")
            images, used, skipped = deploy.read_images(args.files, config["size"])
            probs = deploy.onnx_probabilities(Path(args.model) / "model.onnx", images) if len(used) else []
            rows = [{"file": str(f), "label": config["classes"][int(np.argmax(p))], "probability": float(np.max(p))}
                    for f, p in zip(used, probs)]
        else:
            rows, skipped = deploy.predict_files(args.model, args.files)
    except (OSError, ValueError) as error:
        print(f"tl-predict: {error}", file=sys.stderr)
        return 2
    for row in rows:
        print(f"{row['file']}\t{row['label']}\t{row['probability']:.3f}")
    for s in skipped:
        print(f"tl-predict: skipped {s}", file=sys.stderr)
    return 1 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
