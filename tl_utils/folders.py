"""A learner's own folder of images: read into memory with its splits, or written from splits.

`read_folder` takes one subfolder of images per class, or train/ val/ test/ folders of them, and
says what it skipped and why; `write_folder` writes the layout it reads (`data.load(path)` and
`tl-advise` read folders through it).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from . import imagefiles, keys
from .splits import SPLIT_NAMES, SPLITS, DataSplit, split_by_name

__all__ = ["Folder", "read_folder", "read_arrays", "write_folder"]


def _class_names(top: Path) -> list[str]:
    return [d.name for d in top.iterdir() if d.is_dir() and not imagefiles.is_hidden(d, top)]


def _warn_skipped(root: str, skipped: list[imagefiles.Skipped], limit: int = 20) -> None:
    if skipped:
        shown, more = imagefiles.skipped_lines(skipped, limit)
        lines = [f"  {line}" for line in shown] + ([f"  ... and {more} more"] if more else [])
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
    Without split folders, each class is split 80/10/10 by its files' names (`split_by_name`).
    Decoded once per process; the key is every file's path, size and modification time, so a
    file added, removed or edited in the same session is seen at the next read.
    """
    root_path = Path(root_path).expanduser().resolve()
    root = str(root_path)
    if not root_path.is_dir():
        raise FileNotFoundError(f"{root} is not a folder: give the folder that holds one subfolder of images per class.")
    split_dirs = {}
    for d in sorted(root_path.iterdir()):
        split = SPLIT_NAMES.get(d.name.lower())
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
            split_of += [SPLITS.index(SPLIT_NAMES[top.name.lower()]) if split_dirs else code] * len(found)
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


def read_arrays(root_path: Path, size: int) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """`read_folder` for `data.load`: the arrays, with a warning that lists every skipped file."""
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
