"""`tl-predict`'s work: a saved model run on files and folders, batch by batch as they are read."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from .. import imagefiles, onnxmodels, textmodels
from . import deploy, textfiles
from .int8 import FILE as INT8_FILE

__all__ = ["read_images", "expand", "iter_predictions", "predict_files", "TEXT_SUFFIXES"]


def read_images(files: Sequence[Path | str], size: int) -> tuple[torch.Tensor, list[Path], list[imagefiles.Skipped]]:
    """uint8 (N, 3, size, size) of the files that decode, those files, and the others with why."""
    images, used, skipped = [], [], []
    for f in map(Path, files):
        try:
            images.append(imagefiles.to_square_rgb(f, size))
            used.append(f)
        except imagefiles.ImageError as error:
            skipped.append(imagefiles.Skipped(f, str(error)))
    stacked = torch.from_numpy(np.stack(images)) if images else torch.zeros(0, 3, size, size, dtype=torch.uint8)
    return stacked, used, skipped


def _read_texts(files: Sequence[Path | str], column: str | None) -> tuple[list[str], list[str], list[imagefiles.Skipped]]:
    texts, used, skipped = [], [], []
    for f in map(Path, files):
        try:
            for where, text in textfiles.read_texts(f, column):
                used.append(where)
                texts.append(text)
        except (OSError, ValueError) as error:
            skipped.append(imagefiles.Skipped(f, "no such file" if not f.exists() else str(error)))
    return texts, used, skipped


TEXT_SUFFIXES = (".txt", *textfiles.FORMATS)  # what tl-predict reads from a folder for a text model


def expand(files: Sequence[Path | str], suffixes: Sequence[str]) -> tuple[list[Path], list[imagefiles.Skipped]]:
    """The files as given, with each folder replaced by the files under it (recursively, sorted,
    hidden ones left out) whose names end in one of `suffixes`; and the folders with none."""
    out, empty = [], []
    for f in map(Path, files):
        if f.is_dir():
            found = sorted(p for p in f.rglob("*") if p.is_file() and p.suffix.lower() in suffixes
                           and not imagefiles.is_hidden(p, f))
            out += found
            if not found:
                empty.append(imagefiles.Skipped(f, f"a folder with no file ending in {', '.join(suffixes)}"))
        else:
            out.append(f)
    return out, empty


def iter_predictions(folder: Path | str, files: Sequence[Path | str], *, onnx: bool = False, int8: bool = False,
                     batch_size: int = 64) -> Iterator[tuple[list[dict], list[imagefiles.Skipped]]]:
    """Predict batch by batch as the files are read: yields ([{file, label, probability,
    probabilities}], files not read) per batch of `batch_size` files. Images, or texts (.txt files
    give one per line, 'file:line'); folders are searched recursively. onnx: run model.onnx with
    onnxruntime; int8: run model.int8.onnx (written by tl-advise --int8)."""
    model, config = deploy.load(folder)
    onnx_file = INT8_FILE if int8 else "model.onnx" if onnx else None
    if onnx_file is not None and not (Path(folder) / onnx_file).is_file():
        how = ("run tl-advise with --int8 (it keeps the int8 file only if it holds up on validation; its report "
               "says why not), or predict without --int8") if int8 else "predict without --onnx"
        raise FileNotFoundError(f"{folder} has no {onnx_file}: {how}")
    texts = config.get("input") == "texts"
    tokenizer = deploy.load_tokenizer(folder) if texts else None
    paths, empty = expand(files, TEXT_SUFFIXES if texts else imagefiles.IMAGE_SUFFIXES)
    session = onnxmodels.session(Path(folder) / onnx_file) if onnx_file else None  # opened once, for every batch
    if empty:
        yield [], empty
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        if texts:
            lines, used, skipped = _read_texts(chunk, config.get("text_column"))
            inputs = textmodels.tokenise(tokenizer, lines, config["max_length"]) if lines else {}
        else:
            inputs, used, skipped = read_images(chunk, config["size"])
        if not used:
            probs = torch.zeros(0, len(config["classes"]))
        elif session is not None:
            probs = torch.from_numpy(deploy.onnx_probabilities(session, inputs))
        else:
            probs = deploy.probabilities(model, inputs)
        yield ([{"file": str(f), "label": config["classes"][int(p.argmax())], "probability": float(p.max()),
                 "probabilities": dict(zip(config["classes"], map(float, p)))} for f, p in zip(used, probs)], skipped)


def predict_files(folder: Path | str, files: Sequence[Path | str], *, onnx: bool = False,
                  int8: bool = False) -> tuple[list[dict], list[imagefiles.Skipped]]:
    """All of `iter_predictions` at once: (rows, files not read)."""
    rows, skipped = [], []
    for batch_rows, batch_skipped in iter_predictions(folder, files, onnx=onnx, int8=int8):
        rows += batch_rows
        skipped += batch_skipped
    return rows, skipped
