"""Checks on a learner's image folder before any training (chapter 10, `tl-advise`).

`check_folder(folder)` looks at what `data.read_folder` read and returns `Findings`: images
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

from . import copies
from .data import SPLITS, Folder

__all__ = ["Findings", "check_folder", "without_leaks", "MIN_SIDE", "MIN_PER_SPLIT"]

MIN_SIDE = 32  # pixels: smaller images are upscaled to the input size and mostly blur
MIN_PER_SPLIT = 1  # every class needs at least this many images in train, val and test


@dataclass
class Findings:
    """What the checks found; `lines()` says it in words."""

    counts: pd.DataFrame  # images per class (rows) and split (columns)
    imbalance: float  # largest class / smallest class, in the training split
    skipped: list  # imagefiles.Skipped
    small: list[int]  # examples whose shorter side is under MIN_SIDE
    copies: list[copies.Copy]
    leaks: list[copies.Copy]  # the copies across splits
    thin_classes: list[str]  # classes with fewer than MIN_PER_SPLIT images in some split
    names: list[str] = field(repr=False, default_factory=list)  # each example's path, for messages

    def lines(self) -> list[str]:
        """The findings as sentences, the most serious first."""
        out = []
        if self.leaks:
            out.append(f"{len(self.leaks)} image(s) in validation or test copy another split's image: "
                       "every score on them would be a lie; they are left out of validation and test.")
        if self.thin_classes:
            out.append(f"class(es) {self.thin_classes} have no image in some split: add images (at least "
                       "10 per class), or give train/ val/ test/ folders.")
        if self.skipped:
            out.append(f"{len(self.skipped)} file(s) skipped (not images, or unreadable): see the list below.")
        if self.imbalance >= 3:
            out.append(f"the largest class has {self.imbalance:.1f} times the images of the smallest: look at "
                       "per-class recall, not only accuracy.")
        if self.small:
            out.append(f"{len(self.small)} image(s) have a side under {MIN_SIDE} pixels: upscaled, they blur.")
        within = len(self.copies) - len(self.leaks)
        if within:
            out.append(f"{within} pair(s) of copies within one split: they count twice.")
        return out or ["no problems found."]


def check_folder(folder: Folder) -> Findings:
    """Run every check on a folder read by `data.read_folder`."""
    split_names = [SPLITS[c] for c in folder.codes]
    counts = pd.crosstab(pd.Categorical([folder.classes[y] for y in folder.y], folder.classes),
                         pd.Categorical(split_names, SPLITS), dropna=False)
    counts.index.name, counts.columns.name = "class", "split"
    train_counts = counts["train"].to_numpy()
    imbalance = float(train_counts.max() / max(train_counts.min(), 1))
    found = copies.find_copies(torch.from_numpy(folder.x), folder.files)
    leaks = [c for c in found if folder.codes[c.first] != folder.codes[c.second]]
    needed = ["train", "val", "test"] if (counts["val"] > 0).any() or not folder.fixed_splits else ["train", "test"]
    thin = [cls for cls in folder.classes if (counts.loc[cls, needed] < MIN_PER_SPLIT).any()]
    small = [int(i) for i in np.flatnonzero(folder.sizes.min(axis=1) < MIN_SIDE)]
    return Findings(counts, imbalance, list(folder.skipped), small, found, leaks, thin,
                    [str(f) for f in folder.files])


def without_leaks(folder: Folder, findings: Findings) -> np.ndarray:
    """Split codes with every leaked copy moved out of evaluation: -1 marks an image left out.

    Of a pair across splits, the image in the later split (val after train, test after both)
    is left out; training keeps its copy.
    """
    codes = folder.codes.astype(np.int64).copy()
    for c in findings.leaks:
        later = c.first if folder.codes[c.first] > folder.codes[c.second] else c.second
        codes[later] = -1
    return codes
