"""A learner's own image files: which files to read, how to decode them, what was wrong.

`data.load("path/to/folder")` reads a folder through here, and so will the data checks of
chapter 10, so a folder reads the same way everywhere:

- hidden files and folders (`.DS_Store`, `.ipynb_checkpoints`, macOS's `._photo.jpg` and
  `__MACOSX`, Windows' `Thumbs.db`) are not data: they are passed over without a word;
- any other file that is not an image, or that cannot be decoded, is passed over **and
  reported** by path, with the reason (`Skipped`);
- an image is decoded as a viewer shows it: its EXIF rotation applied, palette, grey, CMYK and
  16-bit images turned into 8-bit RGB, transparency laid on white;
- an image of more than `MAX_PIXELS` is refused before it is decoded (it would take
  gigabytes of memory), with a message that says how to shrink it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, ImageOps

from .runtime import progress

# Set once for the process, not per call: warnings.catch_warnings is not thread-safe, and
# decode_all opens images on several threads. The size check in open_rgb says more than it.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

__all__ = ["IMAGE_SUFFIXES", "MAX_PIXELS", "ImageError", "Skipped", "is_hidden", "list_images", "open_rgb", "decode_all",
           "read_square", "to_square_rgb"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MAX_PIXELS = 89_000_000  # about Pillow's own limit: no camera's photo is larger
_HIDDEN_NAMES = {"__MACOSX", "Thumbs.db", "desktop.ini"}


class ImageError(ValueError):
    """A file that cannot be used as an image; the message says why."""


@dataclass(frozen=True)
class Skipped:
    """A file, or a row of a file, passed over, and why (images here; rows of a learner's texts
    in tl_utils.advise.textfiles)."""

    path: Path
    reason: str
    row: int | None = None  # a row's number, 1 = the first after the header

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.row is None else f"row {self.row}: {self.reason}"


def skipped_lines(skipped: Sequence[Skipped], limit: int = 20) -> tuple[list[str], int]:
    """(one line per skipped item, the first `limit` of them; how many more there are)."""
    return [str(s) for s in skipped[:limit]], max(0, len(skipped) - limit)


def is_hidden(path: Path, root: Path) -> bool:
    """True for a file or folder under `root` that an operating system or a tool put there."""
    return any(part.startswith(".") or part in _HIDDEN_NAMES for part in path.relative_to(root).parts)


def list_images(folder: Path) -> tuple[list[Path], list[Skipped]]:
    """The image files under `folder` (sorted, links followed), and the other files with why."""
    images, skipped = [], []
    for path in sorted(folder.rglob("*")):
        if is_hidden(path, folder) or path.is_dir():
            continue
        if not path.exists():
            skipped.append(Skipped(path, "a link to a file that does not exist"))
        elif path.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append(Skipped(path, f"not an image file (the name must end in one of {', '.join(IMAGE_SUFFIXES)})"))
        else:
            images.append(path)
    return images, skipped


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB, whatever the mode; transparency composited on white."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):  # 16- or 32-bit grey
        values = np.asarray(image, dtype=np.float64)
        top = 255.0 if values.max() <= 255 else 65535.0 if values.max() <= 65535 else float(values.max())
        image = Image.fromarray(np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif image.mode == "CMYK":
        image = image.convert("RGB")
    image = image.convert("RGBA")
    canvas = Image.new("RGBA", image.size, (255, 255, 255, 255))
    return Image.alpha_composite(canvas, image).convert("RGB")


def open_rgb(path: Path, max_pixels: int | None = MAX_PIXELS) -> Image.Image:
    """The image in `path` as a viewer shows it, in 8-bit RGB; ImageError says what was wrong.

    max_pixels: refuse larger images before decoding them; None for trusted files (the pinned
    clip art has drawings of 169 megapixels; Pillow still refuses twice its own limit).
    """
    try:
        image = Image.open(path)  # Pillow's DecompressionBombWarning is silenced at import: the check below says it better
        with image:
            if max_pixels is not None and image.width * image.height > max_pixels:
                raise ImageError(
                    f"{image.width}x{image.height} pixels ({image.width * image.height / 1e6:.0f} megapixels), more "
                    f"than the {max_pixels / 1e6:.0f} this course decodes; shrink it first, for instance to 2000 "
                    "pixels on its longest side")
            return to_rgb(ImageOps.exif_transpose(image))
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except IsADirectoryError:
        raise ImageError("a folder, not an image file") from None
    except Image.DecompressionBombError as error:
        raise ImageError(f"{error}; shrink it first, for instance to 2000 pixels on its longest side") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"cannot be decoded as an image ({type(error).__name__}: {error})") from None


def read_square(path: Path, size: int, max_pixels: int | None = MAX_PIXELS) -> tuple[np.ndarray, tuple[int, int]]:
    """(uint8 (3, size, size), the image's own (width, height)): decoded (`open_rgb`), padded to
    a square on white and resized."""
    image = open_rgb(path, max_pixels)
    side = max(image.size)
    square = Image.new("RGB", (side, side), (255, 255, 255))
    square.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    square = square.resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(square).transpose(2, 0, 1), image.size


def to_square_rgb(path: Path, size: int, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """Decode an image file (`open_rgb`), pad it to a square on white, resize: uint8 (3, size, size)."""
    return read_square(path, size, max_pixels)[0]


Decoded = TypeVar("Decoded")


def decode_all(paths: Sequence[Path], decode: Callable[[Path], Decoded],
               what: str = "decoding images") -> list[Decoded | ImageError]:
    """`decode(path)` for every path, in order, on a pool of threads (PIL decodes outside the
    GIL), with a progress bar on a terminal; a file that fails gives its ImageError in its place."""
    def attempt(path: Path) -> Decoded | ImageError:
        try:
            return decode(path)
        except ImageError as error:
            return error

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        return list(progress(pool.map(attempt, paths), total=len(paths), desc=what))
