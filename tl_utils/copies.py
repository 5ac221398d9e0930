"""Copies among images and texts: the same file twice, or the same picture re-saved.

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

Small grey images (28x28 digits, clothes, silhouettes) are compared whole instead, at
`SMALL_SIMILARITY`: shrunk to 16x16, distinct digits and clothes look alike by chance
(Fashion-MNIST held 439 622 pairs at 0.98, 21 988 of them with two different labels), while
at full size 499 pairs reach 0.99 and not one of them has two labels.

Texts are copies when they are equal once case, spaces and punctuation are set aside
(`normalised`). `later_copies` says which member of a pair across splits to leave out; the
course's own datasets (tl_utils.data) and `tl-advise` (tl_utils.advise.checks) both use it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["Copy", "thumbnails", "find_copies", "normalised", "text_copies", "later_copies", "describe",
           "MIN_SIMILARITY", "SMALL_SIMILARITY"]

MIN_SIMILARITY = 0.98
SMALL_SIMILARITY = 0.99  # for images compared whole (side=None)
THUMBNAIL = 16  # pixels on a side


@dataclass(frozen=True)
class Copy:
    """Examples `first` < `second` look alike: `similarity` of their thumbnails (1.0 the most)."""

    first: int
    second: int
    similarity: float
    exact: bool


def thumbnails(images: torch.Tensor, side: int | None = THUMBNAIL) -> torch.Tensor:
    """(N, side * side) unit vectors: each uint8 image (N, C, H, W) as a grey thumbnail, centred
    (side=None: the grey image at its own size)."""
    if images.ndim != 4:
        raise ValueError(f"expected a batch of images (N, C, H, W), got shape {tuple(images.shape)}")
    grey = images.float().mean(dim=1, keepdim=True)
    small = (grey if side is None else F.interpolate(grey, size=(side, side), mode="area")).flatten(1)
    return F.normalize(small - small.mean(dim=1, keepdim=True), dim=1)


def _same_content(images: torch.Tensor, files: Sequence[Path] | None) -> list[str]:
    if files is not None:
        return [hashlib.sha256(Path(f).read_bytes()).hexdigest() for f in files]
    return [hashlib.sha256(x.numpy().tobytes()).hexdigest() for x in images]


def find_copies(images: torch.Tensor, files: Sequence[Path] | None = None,
                min_similarity: float = MIN_SIMILARITY, side: int | None = THUMBNAIL) -> list[Copy]:
    """Every pair of exact or near copies in `images` (uint8, N x C x H x W), in index order.

    files: the files the images were decoded from, so that identical files count as exact
    copies; without them, identical pixels do. side: the thumbnail's side (None: compare the
    images whole, for small ones; use `SMALL_SIMILARITY` then).
    """
    if files is not None and len(files) != len(images):
        raise ValueError(f"{len(files)} files for {len(images)} images")
    digests = _same_content(images, files)
    thumbs = thumbnails(images, side)
    found = [Copy(a, b, round(s, 4), digests[a] == digests[b]) for a, b, s in _similar_pairs(thumbs, min_similarity)]
    seen = {(c.first, c.second) for c in found}
    first: dict[str, int] = {}
    for j, digest in enumerate(digests):  # identical flat images have no thumbnail direction
        if digest in first and (first[digest], j) not in seen:
            found.append(Copy(first[digest], j, 1.0, True))
        first.setdefault(digest, j)
    return sorted(found, key=lambda c: (c.first, c.second))


def _similar_pairs(thumbs: torch.Tensor, min_similarity: float, dims: int = 32,
                   block: int = 512) -> list[tuple[int, int, float]]:
    """Every (a, b, similarity) with a < b and thumbs[a] . thumbs[b] >= min_similarity, for vectors
    of length at most 1.

    Comparing every pair in full costs N * N * D (70 000 Fashion-MNIST images whole: 40 s on two
    cores). For such vectors a similarity of at least s means a distance of at most sqrt(2 - 2s),
    and a projection onto orthonormal directions never lengthens a distance. So candidates come
    from the `dims` principal directions, and only among vectors that lie that close along the
    first of them (sorted by it); each candidate is then compared in full. No pair is missed.
    """
    n, d = thumbs.shape
    _, vectors = torch.linalg.eigh(thumbs.T @ thumbs)  # ascending: the last are the principal ones
    projected = thumbs @ vectors[:, -min(dims, d):].flip(1)
    order = torch.argsort(projected[:, 0])
    projected = projected[order]
    lengths, ones = (projected * projected).sum(dim=1, keepdim=True), torch.ones(n, 1)
    left = torch.cat([projected, lengths, ones], dim=1)  # left[a] . right[b] = |p_a - p_b|^2, one product
    right = torch.cat([-2 * projected, ones, lengths], dim=1)
    limit = 2 - 2 * min_similarity + 1e-3  # squared distance, with room for float rounding
    first = projected[:, 0].contiguous()
    pairs = []
    for start in range(0, n, block):  # in blocks of the sorted order, each against those within reach
        stop = int(torch.searchsorted(first, first[min(start + block, n) - 1] + limit ** 0.5, right=True))
        a, b = torch.nonzero(left[start:start + block] @ right[start:stop].T <= limit, as_tuple=True)
        a, b = a + start, b + start
        a, b = order[a[a < b]], order[b[a < b]]
        a, b = torch.minimum(a, b), torch.maximum(a, b)
        for chunk in range(0, len(a), 8192):  # each gathers two (8192, D) blocks: a few tens of MB
            i, j = a[chunk:chunk + 8192], b[chunk:chunk + 8192]
            similarity = (thumbs[i] * thumbs[j]).sum(dim=1)
            keep = similarity >= min_similarity
            pairs += zip(i[keep].tolist(), j[keep].tolist(), similarity[keep].tolist())
    return sorted(pairs)


def normalised(text: str) -> str:
    """The text as the copy check compares it: case folded, runs of spaces and punctuation made one space."""
    return " ".join(re.sub(r"[\W_]+", " ", text.casefold()).split())


def text_copies(texts: Sequence[str], codes: np.ndarray) -> list[Copy]:
    """Texts equal once `normalised`. Each group of equal texts gives one pair per member after
    the first, with the member of the earliest split (codes: 0 train, 1 val, 2 test): so every
    member in a later split is paired with it, however many copies there are."""
    groups: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        groups.setdefault(normalised(text), []).append(i)
    found = []
    for members in groups.values():
        anchor = min(members, key=lambda i: (codes[i], i))
        found += [Copy(min(anchor, i), max(anchor, i), 1.0, texts[anchor] == texts[i]) for i in members if i != anchor]
    return sorted(found, key=lambda c: (c.first, c.second))


def later_copies(found: Sequence[Copy], codes: np.ndarray) -> tuple[list[Copy], list[int]]:
    """(the copies across splits, the examples to leave out of evaluation): of each pair across
    splits, the one in the later split (val after train, test after both); codes of -1 (already
    left out) do not count."""
    leaks = [c for c in found if min(codes[c.first], codes[c.second]) >= 0 and codes[c.first] != codes[c.second]]
    return leaks, sorted({max((c.first, c.second), key=lambda i: codes[i]) for c in leaks})


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
