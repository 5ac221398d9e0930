"""A learner's texts and labels from a CSV or JSON-lines file (chapter 10, `tl-advise`).

`read_table(path)` reads a CSV with pandas (UTF-8, with or without a byte-order mark; commas,
semicolons or tabs) and JSON lines with Hugging Face `datasets` (nothing leaves the machine; its
cache goes into a temporary folder, not yours), finds the text and label columns (given, or
guessed by name and content, and said which), and keeps every row that has both: an empty text
or a missing label is skipped and listed by row number (1 is the first row after the header).
Labels may be strings or numbers; the class names are their sorted values. A column named
`split` with train / val / test values (or training, valid, validation, testing) fixes the splits;
otherwise they are made per class from a hash of each text (`splits.split_by_name`).
"""

from __future__ import annotations

import io
import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..imagefiles import Skipped
from ..splits import FOLDER_FRACTIONS, SPLIT_NAMES, SPLITS, split_by_name

__all__ = ["TextTable", "TextFileError", "read_table", "read_texts", "FORMATS",
           "TEXT_NAMES", "LABEL_NAMES"]

FORMATS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".ndjson": "json"}
TEXT_NAMES = ("text", "texts", "sentence", "review", "content", "body", "document", "tweet", "comment", "message")
LABEL_NAMES = ("label", "labels", "class", "category", "sentiment", "target", "y")
SPLIT_COLUMN = "split"


class TextFileError(ValueError):
    """A text file the tool cannot work with; the message says what to change."""


@dataclass
class TextTable:
    """The usable rows of a file: texts, labels (indices into `classes`) and split codes."""

    texts: list[str]
    y: np.ndarray
    classes: list[str]
    codes: np.ndarray  # 0 train, 1 val, 2 test
    fixed_splits: bool  # the file has a split column
    rows: list[int]  # each text's row number in the file
    text_column: str
    label_column: str
    guessed: list[str] = field(default_factory=list)  # which columns were guessed: "text", "label"
    skipped: list[Skipped] = field(default_factory=list)  # rows, numbered from 1 after the header (blank lines not counted)


def _load(path: Path) -> dict[str, list]:
    """The file's columns as lists, read by `datasets` with its cache in a temporary folder."""
    import datasets

    if path.suffix.lower() not in FORMATS:
        raise TextFileError(f"{path} is neither CSV nor JSON lines: give a .csv, .tsv, .jsonl or .json file of texts "
                            "and labels, or a folder of class subfolders of images.")
    if FORMATS[path.suffix.lower()] == "csv":
        return _load_csv(path)
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        with tempfile.TemporaryDirectory() as cache:
            table = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=cache,
                                          keep_in_memory=True)
            return table.to_dict()
    except Exception as error:  # pyarrow and pandas raise many kinds; all mean the same here
        raise TextFileError(f"{path} cannot be read as {FORMATS[path.suffix.lower()].upper()}: "
                            f"{str(error).splitlines()[0] if str(error) else type(error).__name__}") from None
    finally:
        if bars:
            datasets.enable_progress_bars()


def _load_csv(path: Path) -> dict[str, list]:
    """A CSV's columns as lists: UTF-8 with or without a byte-order mark (as spreadsheet programs
    save "CSV UTF-8"), separated by commas, semicolons or tabs (whichever the header uses)."""
    import pandas as pd

    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise TextFileError(
            f"{path} is not UTF-8 (byte {raw[error.start]:#04x} at position {error.start} is not valid): save it "
            "again as \"CSV UTF-8\" in your spreadsheet program, or convert it, e.g. "
            f"`iconv -f latin1 -t utf-8 {path.name} > utf8.csv` for a Latin-1 file.") from None
    header = text.split("\n", 1)[0]
    sep = "\t" if path.suffix.lower() == ".tsv" else max(",;\t", key=header.count)
    try:  # only empty cells are missing: "NA", "None" or "null" are texts
        frame = pd.read_csv(io.StringIO(text), sep=sep, keep_default_na=False, na_values=[""])
    except (ValueError, pd.errors.ParserError) as error:
        raise TextFileError(f"{path} cannot be read as CSV: {str(error).splitlines()[0]}") from None
    frame = frame.astype(object).where(frame.notna(), None)  # an empty cell is None, as in a JSON file
    return {str(c): frame[c].tolist() for c in frame.columns}


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == ""


def _named(names: list[str], usual: tuple[str, ...]) -> str | None:
    """The first column whose name, in any case, is one of the usual names."""
    return next((c for c in names if c.strip().lower() in usual), None)


def _guess_text(columns: dict[str, list], exclude: set[str]) -> str | None:
    names = [c for c in columns if c not in exclude]
    if _named(names, TEXT_NAMES):
        return _named(names, TEXT_NAMES)
    strings = [c for c in names if any(isinstance(v, str) for v in columns[c])]
    return max(strings, key=lambda c: np.mean([len(v) for v in columns[c] if isinstance(v, str)]), default=None)


def _guess_label(columns: dict[str, list], exclude: set[str]) -> str | None:
    names = [c for c in columns if c not in exclude]
    if _named(names, LABEL_NAMES):
        return _named(names, LABEL_NAMES)
    distinct = {c: len({str(v) for v in columns[c] if not _missing(v)}) for c in names}
    usable = [c for c in names if distinct[c] >= 2]
    return min(usable, key=lambda c: distinct[c], default=None)


def _class_name(value) -> str:
    if isinstance(value, (list, dict)):
        raise TextFileError(f"a label is {value!r}: each row needs one label (a word or a number), not a list")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _sorted_classes(names: set[str]) -> list[str]:
    numeric = all(re.fullmatch(r"-?\d+", n) for n in names)
    return sorted(names, key=int) if numeric else sorted(names)


def read_table(path: Path | str, text_column: str | None = None, label_column: str | None = None) -> TextTable:
    """The texts and labels of a CSV / JSON-lines file; columns given, or guessed (see `guessed`)."""
    path = Path(path).expanduser()
    columns = _load(path)
    if not columns or not any(columns.values()):
        raise TextFileError(f"{path} has no rows: it needs a column of texts and a column of labels.")
    for given, flag in ((text_column, "--text-column"), (label_column, "--label-column")):
        if given is not None and given not in columns:
            raise TextFileError(f"{path} has no column {given!r} ({flag}); its columns are {list(columns)}.")
    guessed = []
    split_column = _named(list(columns), (SPLIT_COLUMN,))
    exclude = {split_column} | {c for c in (text_column, label_column) if c}
    if text_column is None:
        text_column = _guess_text(columns, exclude)
        if text_column is None:
            raise TextFileError(f"{path}: no column holds texts (its columns are {list(columns)}); "
                                "name one with --text-column.")
        guessed.append("text")
        exclude.add(text_column)
    if label_column is None:
        label_column = _guess_label(columns, exclude)
        if label_column is None:
            raise TextFileError(f"{path}: no column besides {text_column!r} holds labels (its columns are "
                                f"{list(columns)}); name one with --label-column.")
        guessed.append("label")
    if text_column == label_column:
        raise TextFileError(f"the text and label columns are both {text_column!r}: name two different columns.")

    keep, skipped = [], []
    for i, (text, label) in enumerate(zip(columns[text_column], columns[label_column])):
        if _missing(text):
            skipped.append(Skipped(path, "empty text", row=i + 1))
        elif _missing(label):
            skipped.append(Skipped(path, f"no label in column {label_column!r}", row=i + 1))
        else:
            keep.append(i)
    if not keep:
        raise TextFileError(f"{path}: no row has both a text and a label ({len(skipped)} rows skipped).")
    split_values = columns[split_column] if split_column else None
    if split_values is not None:
        unknown = sorted({str(split_values[i]).strip() for i in keep
                          if str(split_values[i]).strip().lower() not in SPLIT_NAMES})
        if unknown:
            rows = [i + 1 for i in keep if str(split_values[i]).strip() in unknown][:5]
            raise TextFileError(f"{path}: column {split_column!r} has values {unknown[:5]} (rows {rows}); use train, "
                                "val and test in every row (or rename the column to use no fixed splits).")
    texts = [str(columns[text_column][i]).strip() for i in keep]
    names = [_class_name(columns[label_column][i]) for i in keep]
    classes = _sorted_classes(set(names))
    y = np.array([classes.index(n) for n in names], dtype=np.int64)
    if split_values is not None:
        codes = np.array([SPLITS.index(SPLIT_NAMES[str(split_values[i]).strip().lower()]) for i in keep], np.int8)
    else:
        codes = split_by_name(y, texts, FOLDER_FRACTIONS)
    return TextTable(texts, y, classes, codes, split_values is not None, [i + 1 for i in keep], text_column,
                     label_column, guessed, skipped)


def read_texts(path: Path | str, column: str | None = None) -> list[tuple[str, str]]:
    """[(where, text)] from a file of new texts, for predictions: a .txt file gives one text per
    non-empty line ('file:line'); a CSV / JSON-lines file gives `column` ('file:row')."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not a file: give text files (.txt: one text per line, or .csv/.jsonl)")
    if path.suffix.lower() == ".txt":
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        return [(f"{path}:{i + 1}", line.strip()) for i, line in enumerate(lines) if line.strip()]
    columns = _load(path)
    if column is not None and column not in columns:
        raise TextFileError(f"{path} has no column {column!r}, the one the model was trained on; its columns are "
                            f"{list(columns)}.")
    if column is None:
        column = _guess_text(columns, {SPLIT_COLUMN})
        if column is None:
            raise TextFileError(f"{path}: no column holds texts (its columns are {list(columns)}).")
    return [(f"{path}:{i + 1}", str(t).strip()) for i, t in enumerate(columns[column]) if not _missing(t)]
