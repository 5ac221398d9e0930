"""`advise`: the tool's one pipeline, the same stages for images and texts (chapter 10).

    read -> check -> split -> features -> ladder -> choose -> save and export -> report

Each stage logs its name (`STAGES`), as the report and chapter 10 name them. What differs between
images and texts (how files are read, which features, which rungs) is an `Images` or a `Texts`
(tl_utils.advise.kinds); the order, the choice and everything after it are written once, here.
"""


from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..runtime import seed_everything
from ..train import take as train_take
from . import checks, deploy, ladder, owned
from . import int8 as int8_copy
from .kinds import Budget, Images, Texts
from .recommend import recommend
from .result import STAGES, Advice, AdviseError

__all__ = ["advise", "STAGES", "MIN_PER_CLASS", "ADVISED_PER_CLASS", "ADVISED_VAL", "ONNX_TOLERANCE"]

MIN_PER_CLASS = 6  # images per class, without split folders: one each for validation and test at 80/10/10
ADVISED_PER_CLASS, ADVISED_VAL = checks.ADVISED_PER_CLASS, checks.ADVISED_VAL  # where the numbers get readable
ONNX_TOLERANCE = 1e-4  # the largest difference in probabilities accepted between ONNX Runtime and PyTorch


def _enough(y: np.ndarray, classes: list[str], fixed_splits: bool, noun: str) -> None:
    if len(classes) < 2:
        raise AdviseError(f"only one class ({classes[0]!r}): a classifier needs at least two.")
    counts = np.bincount(y, minlength=len(classes))
    if not fixed_splits and counts.min() < MIN_PER_CLASS:
        few = {c: int(n) for c, n in zip(classes, counts) if n < MIN_PER_CLASS}
        raise AdviseError(f"too few {noun}s in class(es) {few}: at least {MIN_PER_CLASS} per class are needed to "
                          f"train, validate and test ({ADVISED_PER_CLASS} or more give numbers worth reading).")


def advise(path: Path | str, out: Path | str | None = None, *, minutes: float = 5.0, size: int = 64,
           seed: int = 0, top_epochs: int | None = None, scratch_epochs: int | None = None,
           text_column: str | None = None, label_column: str | None = None, int8: bool = False,
           log: Callable[[str], None] = print) -> Advice:
    """Read, check, split, features, ladder, choose, save and export, report (`STAGES`).

    path: a folder of images, or a CSV / JSON-lines file of texts and labels (text_column and
    label_column name its columns; guessed when not given).
    top_epochs / scratch_epochs: fixed numbers of epochs instead of what fits in `minutes`
    (for numbers that repeat exactly, as in chapter 10); 0 skips the method.
    int8: also write model.int8.onnx, kept only if it scores within int8.TOLERANCE of model.onnx on
    validation (chapter 11); the report says what it measured either way.
    """
    start = time.perf_counter()
    path = Path(path).expanduser()
    if not path.exists():
        raise AdviseError(f"{path} does not exist: give a folder with one subfolder of images per class, or a CSV "
                          "or JSON-lines file of texts and labels.")
    if size < 32:
        raise AdviseError(f"--size {size} is too small: the backbone needs at least 32 pixels (64 or more).")
    for flag, epochs in (("--top-epochs", top_epochs), ("--scratch-epochs", scratch_epochs)):
        if epochs is not None and epochs < 0:
            raise AdviseError(f"{flag} {epochs}: give a number of epochs, 0 or more (0 skips the method).")
    name = path.resolve().stem if path.is_file() else path.resolve().name  # reviews.csv -> reviews-advice
    out = (Path(out) if out is not None else Path.cwd() / f"{name}-advice").expanduser().resolve()
    owned.recover(out)  # what a run killed while it replaced files (power loss) set aside, put back first
    _check_out(path, out)
    seed_everything(seed)
    stage = _stages(log)
    budget = Budget(start, minutes)
    with tempfile.TemporaryDirectory(prefix="tl-advise-features-") as cache:  # your features are not kept anywhere
        run = (Texts(path, text_column, label_column, seed, Path(cache)) if path.is_file()
               else Images(path, size, seed, Path(cache)))
        noun = run.noun
        stage("read", str(path))
        source = run.read(log)
        _enough(source.y, source.classes, source.fixed_splits, noun)
        stage("check", f"copies, class balance, sizes of the {noun}s")
        findings = run.check()
        splits = run.split(findings)
        stage("split", ", ".join(f"{s} {len(d)}" for s, d in splits.items())
              + f" {noun}s; {len(findings.left_out)} copying another split's left out of evaluation")
        stage("features", run.features_note + " (in a temporary folder, deleted at the end)")
        run.features()
        stage("ladder", run.ladder_note)
        rungs, curve = run.ladder(budget, top_epochs, scratch_epochs)
    for method, why in budget.skipped.items():
        log(f"  skipped {method}: {why}")

    chosen = ladder.choose(rungs, splits["val"].y, order=run.order)
    reasons = recommend(rungs, chosen, splits["val"].y, curve, budget.skipped, noun)
    stage("choose", reasons[0])

    stage("save and export", "scoring on test once, saving the model, exporting it to ONNX and checking the export"
          + (", quantizing it to int8 and scoring that on validation" if int8 else ""))
    deployed, config = run.deployable(chosen)
    test = splits["test"]
    probs = (deploy.probabilities(deployed, run.inputs("test")) if len(test)
             else torch.zeros(0, len(source.classes)))
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
            import onnxruntime

            raise RuntimeError(f"the ONNX export disagrees with PyTorch by {onnx_difference:.1e} (more than "
                               f"{ONNX_TOLERANCE:.0e}), with torch {torch.__version__} and onnxruntime "
                               f"{onnxruntime.__version__}: nothing was saved")
        quantized = None
        if int8:
            quantized = int8_copy.quantize(work / "model", config, run.inputs("val"), splits["val"].y,
                                           run.inputs("train"))
            log(f"  {quantized.sentence()}")
        advice = Advice(out, findings, {s: len(d) for s, d in splits.items()}, rungs, chosen, reasons,
                        curve, splits["val"].y, test_acc, onnx_difference, time.perf_counter() - start,
                        budget.skipped, quantized)
        stage("report", str(out / "report.md"))
        from .report import write_report  # matplotlib only when a report is written

        write_report(advice, source, splits, probs, folder=work)
        _check_out(path, out)  # again: minutes have passed since the first check
        owned.publish(work, out, legacy=_is_advice(out))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    example = "IMAGE" if noun == "image" else "TEXTS.txt"
    log(f"report: {out / 'report.md'}; model: {out / 'model'} (tl-predict {out / 'model'} {example}...)")
    return advice


def _stages(log: Callable[[str], None]) -> Callable[[str, str], None]:
    """log("[k/8] stage: what it does"), k counted along STAGES, which names every stage in order."""
    def stage(name: str, detail: str) -> None:
        log(f"[{STAGES.index(name) + 1}/{len(STAGES)}] {name}: {detail}")
    return stage


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


