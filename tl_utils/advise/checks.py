"""Checks on a learner's folder of images or file of texts before any training (chapter 10, `tl-advise`).

`check_folder(folder)` looks at what `folders.read_folder` read and returns `Findings`: images
per class and split, the imbalance, the files that were skipped and why, images much smaller
than the backbone's input, exact and near copies (tl_utils.copies) within a split and across
splits, and classes too small to have examples in every split. `without_leaks` then drops every
validation or test image that copies a training image (or a test image that copies a
validation one), so that no score is earned on a picture the model has learnt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from .. import copies, textmodels
from ..folders import Folder
from ..splits import SPLITS
from . import textfiles

__all__ = ["Findings", "check_folder", "check_texts", "without_leaks", "counts", "MIN_SIDE", "MIN_PER_SPLIT", "ADVISED_PER_CLASS",
           "ADVISED_VAL"]

MIN_SIDE = 32  # pixels: smaller images are upscaled to the input size and mostly blur
MIN_PER_SPLIT = 1  # every class needs at least this many images in train, val and test
ADVISED_PER_CLASS = 20  # training images per class below which the findings warn
ADVISED_VAL = 100  # validation images below which accuracies are too noisy to rank most methods


@dataclass
class Findings:
    """What the checks found; `lines()` says it in words."""

    counts: pd.DataFrame  # images per class (rows) and split (columns)
    imbalance: float  # largest class / smallest class, in the training split
    skipped: list  # imagefiles.Skipped
    small: list[int]  # examples whose shorter side is under MIN_SIDE
    copies: list[copies.Copy]
    leaks: list[copies.Copy]  # the copies across splits
    left_out: list[int]  # the examples taken out of validation and test because they copy another split's
    thin_classes: list[str]  # classes with fewer than MIN_PER_SPLIT images in some split
    few_classes: list[str]  # classes with fewer than ADVISED_PER_CLASS training images
    names: list[str] = field(repr=False, default_factory=list)  # each example's path (or row), for messages
    noun: str = "image"  # what an example is: "image" or "text"
    long: int = 0  # texts longer than the encoder reads (textmodels.MAX_LENGTH)

    def lines(self) -> list[str]:
        """The findings as sentences, the most serious first."""
        out = []
        if self.leaks:
            article = "an" if self.noun[0] in "aeiou" else "a"
            out.append(f"{len(self.left_out)} {self.noun}(s) in validation or test copy {article} {self.noun} of an earlier split "
                       f"({len(self.leaks)} pair(s)): every score on them would be a lie; they are left out of "
                       "validation and test.")
        if self.thin_classes:
            out.append(f"class(es) {self.thin_classes} have no {self.noun} in some split: add {self.noun}s (at least "
                       f"{ADVISED_PER_CLASS} per class), or give train/ val/ test/ folders.")
        if self.few_classes:
            out.append(f"class(es) {self.few_classes} have fewer than {ADVISED_PER_CLASS} training {self.noun}s: "
                       f"expect their recall to be poor, and add {self.noun}s if you can.")
        if self.skipped:
            what = "file(s) skipped (not images, or unreadable)" if self.noun == "image" else \
                "row(s) skipped (an empty text or no label)"
            out.append(f"{len(self.skipped)} {what}: see the list below.")
        if self.imbalance >= 3:
            out.append(f"the largest class has {self.imbalance:.1f} times the {self.noun}s of the smallest: look at "
                       "per-class recall, not only accuracy.")
        if self.small:
            out.append(f"{len(self.small)} image(s) have a side under {MIN_SIDE} pixels: upscaled, they blur.")
        if self.long:
            out.append(f"{self.long} text(s) are longer than {textmodels.MAX_LENGTH} tokens: only their first {textmodels.MAX_LENGTH} are "
                       "read.")
        within = len(self.copies) - len(self.leaks)
        if within:
            out.append(f"{within} pair(s) of copies within one split: they count twice.")
        return out or ["no problems found."]


def counts(labels: np.ndarray, codes: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """Images per class (rows) and split (columns); codes of -1 (left out) are not counted."""
    kept = codes >= 0
    return pd.crosstab(pd.Categorical(np.asarray(classes)[labels[kept]], categories=classes),
                       pd.Categorical(np.asarray(SPLITS)[codes[kept]], categories=SPLITS),
                       rownames=["class"], colnames=["split"], dropna=False)


def _findings(y: np.ndarray, codes: np.ndarray, classes: list[str], fixed_splits: bool, found: list[copies.Copy],
              skipped: list, small: list[int], names: list[str], noun: str) -> Findings:
    table = counts(y, codes, classes)
    train_counts = table["train"].to_numpy()
    leaks, left_out = copies.later_copies(found, codes)
    needed = ["train", "val", "test"] if (table["val"] > 0).any() or not fixed_splits else ["train", "test"]
    thin = [cls for cls in classes if (table.loc[cls, needed] < MIN_PER_SPLIT).any()]
    few = [cls for cls in classes if table.loc[cls, "train"] < ADVISED_PER_CLASS]
    return Findings(table, float(train_counts.max() / max(train_counts.min(), 1)), list(skipped), small, found, leaks,
                    left_out, thin, few, names, noun=noun)


def check_folder(folder: Folder) -> Findings:
    """Run every check on a folder read by `folders.read_folder`."""
    found = copies.find_copies(torch.from_numpy(folder.x), folder.files)
    small = [int(i) for i in np.flatnonzero(folder.sizes.min(axis=1) < MIN_SIDE)]
    return _findings(folder.y, folder.codes, folder.classes, folder.fixed_splits, found, folder.skipped, small,
                     [str(f) for f in folder.files], "image")


def check_texts(table: textfiles.TextTable) -> Findings:
    """The same checks on the texts of a file, copies by `copies.text_copies`; no size check."""
    codes = np.asarray(table.codes)
    return _findings(table.y, codes, table.classes, table.fixed_splits, copies.text_copies(table.texts, codes),
                     table.skipped, [], [f"row {r}" for r in table.rows], "text")


def without_leaks(folder: Folder, findings: Findings) -> np.ndarray:
    """Split codes with every leaked copy moved out of evaluation: -1 marks an image left out.

    Of a pair across splits, the image in the later split (val after train, test after both)
    is left out; training keeps its copy.
    """
    codes = folder.codes.astype(np.int64).copy()
    codes[findings.left_out] = -1
    return codes
