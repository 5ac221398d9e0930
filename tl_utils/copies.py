"""Copies among images: the same file twice, or the same picture re-saved (chapter 10).

A test image that also sits in the training data makes every test score a lie: the model is
graded on a picture it has learnt. Learners' folders have such copies more often than one
thinks (a photo exported twice, a download saved again at another size), so the data checks
look for two kinds:

- **exact**: identical files (same sha256), or identical pixels after decoding;
- **near**: the same picture resized, recompressed or recoloured. Each image is shrunk to a
  16x16 grey thumbnail; two thumbnails whose correlation is at least `MIN_SIMILARITY` are
  reported, with the similarity, for a person to look at. Measured once, when the threshold
  was chosen: a photo halved and saved as a JPEG at quality 60 kept a similarity above
  0.999, eight distinct photos stayed below 0.93, and the course's 619 clip-art drawings held
  18 pairs at 0.98 or more, which by eye are each one drawing twice, most of them in two
  colours. A crop is not found (a 5% crop on every side fell to 0.85). tests/test_copies.py
  checks that re-saved photos are found, distinct photos are not, and clip art has few pairs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

__all__ = ["Copy", "thumbnails", "find_copies", "describe", "MIN_SIMILARITY"]

MIN_SIMILARITY = 0.98
THUMBNAIL = 16  # pixels on a side


@dataclass(frozen=True)
class Copy:
    """Examples `first` < `second` look alike: `similarity` of their thumbnails (1.0 the most)."""

    first: int
    second: int
    similarity: float
    exact: bool


def thumbnails(images: torch.Tensor) -> torch.Tensor:
    """(N, 256) unit vectors: each uint8 image (N, C, H, W) as a 16x16 grey thumbnail, centred."""
    if images.ndim != 4:
        raise ValueError(f"expected a batch of images (N, C, H, W), got shape {tuple(images.shape)}")
    grey = images.float().mean(dim=1, keepdim=True)
    small = F.interpolate(grey, size=(THUMBNAIL, THUMBNAIL), mode="area").flatten(1)
    return F.normalize(small - small.mean(dim=1, keepdim=True), dim=1)


def _same_content(images: torch.Tensor, files: Sequence[Path] | None) -> list[str]:
    if files is not None:
        return [hashlib.sha256(Path(f).read_bytes()).hexdigest() for f in files]
    return [hashlib.sha256(x.numpy().tobytes()).hexdigest() for x in images]


def find_copies(images: torch.Tensor, files: Sequence[Path] | None = None,
                min_similarity: float = MIN_SIMILARITY) -> list[Copy]:
    """Every pair of exact or near copies in `images` (uint8, N x C x H x W), in index order.

    files: the files the images were decoded from, so that identical files count as exact
    copies; without them, identical pixels do.
    """
    if files is not None and len(files) != len(images):
        raise ValueError(f"{len(files)} files for {len(images)} images")
    digests = _same_content(images, files)
    thumbs = thumbnails(images)
    found = []
    for start in range(0, len(thumbs), 512):  # in blocks: memory stays small for tens of thousands
        similarity = thumbs[start:start + 512] @ thumbs.T
        for i, j in torch.nonzero(similarity >= min_similarity).tolist():
            a = start + i
            if a < j:
                found.append(Copy(a, j, round(float(similarity[i, j]), 4), digests[a] == digests[j]))
    seen = {(c.first, c.second) for c in found}
    first: dict[str, int] = {}
    for j, digest in enumerate(digests):  # identical flat images have no thumbnail direction
        if digest in first and (first[digest], j) not in seen:
            found.append(Copy(first[digest], j, 1.0, True))
        first.setdefault(digest, j)
    return sorted(found, key=lambda c: (c.first, c.second))


def describe(copies: Sequence[Copy], names: Sequence[str], splits: Sequence[str] | None = None,
             noun: str = "image") -> list[str]:
    """One line per copy, those across splits first: 'a.jpg and b.jpg: near copy (similarity 0.991)'
    (for texts, noun="text": 'row 3 and row 9: the same text')."""
    def across(c: Copy) -> bool:
        return splits is not None and splits[c.first] != splits[c.second]

    lines = []
    for c in sorted(copies, key=lambda c: (not across(c), c.first, c.second)):
        if noun == "text":
            kind = "the same text" if c.exact else "the same text but for case, spacing or punctuation"
        else:
            kind = "the same file" if c.exact else f"near copy (similarity {c.similarity:.3f})"
        where = f" [{splits[c.first]} / {splits[c.second]}: across splits]" if across(c) else ""
        lines.append(f"{names[c.first]} and {names[c.second]}: {kind}{where}")
    return lines
