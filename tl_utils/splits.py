"""What a split is (`DataSplit`), and which examples go to train, val and test: fixed, per class.

The registry's datasets are split once with a seed that does not depend on a chapter's `seed`
(`registry_codes`), so a test split never changes; a learner's folder or file is split by its
files' names (`split_by_name`), so a file added later moves at most a couple of others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["DataSplit", "SPLITS", "SPLIT_NAMES", "FOLDER_FRACTIONS", "SPLIT_SEED", "registry_codes", "split_by_name"]

SPLITS = ("train", "val", "test")
FOLDER_FRACTIONS = (0.8, 0.1, 0.1)  # how a folder without train/ val/ test/ subfolders is split, per class
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                "test": "test", "testing": "test"}  # split folders' names, in any case
SPLIT_SEED = 20240  # fixed: the splits never depend on the user's seed


@dataclass(frozen=True)
class DataSplit:
    """One split of a dataset, in memory.

    x: uint8 images (N, C, H, W), or a list of N strings for text datasets.
    y: int64 labels (N,), each an index into `classes`.
    """

    x: torch.Tensor | list[str]
    y: torch.Tensor
    classes: list[str]
    name: str
    split: str

    def __len__(self) -> int:
        return len(self.y)

    @property
    def is_text(self) -> bool:
        return isinstance(self.x, list)

    def subset(self, index: Sequence[int] | torch.Tensor) -> DataSplit:
        """The examples at `index`, as a new DataSplit."""
        index = torch.as_tensor(index, dtype=torch.long)
        x = [self.x[i] for i in index.tolist()] if self.is_text else self.x[index]
        return DataSplit(x, self.y[index], self.classes, self.name, self.split)

    def __repr__(self) -> str:
        shape = f"{len(self.x)} texts" if self.is_text else f"images {tuple(self.x.shape)}"
        return (
            f"DataSplit({self.name!r}, split={self.split!r}, {shape}, "
            f"{len(self.classes)} classes)"
        )


def _assign(y: np.ndarray, fractions: Sequence[float], is_test: np.ndarray | None,
            order: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Split codes (0 train, 1 val, 2 test), per class: `order` puts a class's examples in the
    order in which the first fraction goes to test and the next to validation. `is_test`: an
    official test set, kept (val is then drawn from the rest, and no more test)."""
    codes = np.zeros(len(y), dtype=np.int8)
    if is_test is not None:
        codes[is_test] = 2
    pool = np.flatnonzero(codes == 0)
    _, val_f, test_f = fractions
    for label in np.unique(y[pool]):
        members = order(pool[y[pool] == label])
        n_test = round(len(members) * test_f) if is_test is None else 0
        n_val = round(len(members) * val_f)
        codes[members[:n_test]] = 2
        codes[members[n_test:n_test + n_val]] = 1
    return codes


def registry_codes(y: np.ndarray, fractions: Sequence[float], is_test: np.ndarray | None) -> np.ndarray:
    """The registry's splits: each class in a random order drawn with a fixed seed."""
    return _assign(y, fractions, is_test, np.random.default_rng(SPLIT_SEED).permutation)


def split_by_name(y: np.ndarray, names: Sequence[str], fractions: Sequence[float] = FOLDER_FRACTIONS,
                  is_test: np.ndarray | None = None) -> np.ndarray:
    """Split codes (0 train, 1 val, 2 test) for files, per class, decided by their names.

    In each class the files are ordered by a hash of their name; the first fraction goes to
    test and the next to validation. Unlike a random permutation, adding or removing a file
    moves at most a couple of others between splits, so two runs on a growing folder score on
    nearly the same test images. `is_test`: files already in a test folder (val is then drawn
    from the rest, and no more test).
    """
    def by_hash(members: np.ndarray) -> np.ndarray:
        return members[np.argsort([hashlib.sha256(str(names[i]).encode()).hexdigest() for i in members])]
    return _assign(y, fractions, is_test, by_hash)
