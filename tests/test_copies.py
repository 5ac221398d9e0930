"""Copies among images: re-saved pictures are found, different pictures are not."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from tl_utils import copies, data, imagefiles, registry


def _resaved(image: torch.Tensor, scale: float, quality: int) -> Image.Image:
    """The picture resized and saved again as a JPEG: what a second download looks like."""
    pil = Image.fromarray(image.permute(1, 2, 0).numpy())
    pil = pil.resize((int(pil.width * scale), int(pil.height * scale)), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    pil.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def test_resaved_photos_are_near_copies_and_distinct_photos_are_not(tmp_path):
    names, photos, _ = registry.sample_photos()
    files = []
    for name, photo in zip(names, photos):
        files.append(tmp_path / f"{name}.png")
        Image.fromarray(photo.permute(1, 2, 0).numpy()).save(files[-1])
    _resaved(photos[0], 0.6, 70).save(tmp_path / "again.jpg")
    files.append(tmp_path / "again.jpg")
    (tmp_path / "twice.png").write_bytes(files[1].read_bytes())
    files.append(tmp_path / "twice.png")
    images = torch.from_numpy(np.stack([imagefiles.to_square_rgb(f, 64) for f in files]))
    found = copies.find_copies(images, files)
    n = len(names)
    assert [(c.first, c.second) for c in found] == [(0, n), (1, n + 1)]
    near, exact = found
    assert not near.exact and near.similarity >= copies.MIN_SIMILARITY
    assert exact.exact and exact.similarity == 1.0


def test_in_the_clipart_near_copies_are_few_and_recoloured_drawings():
    clipart = torch.cat([data.load("clipart", s, size=64).x for s in data.SPLITS])  # exact copies already gone
    found = copies.find_copies(clipart)
    assert 0 < len(found) <= 0.05 * len(clipart)
    closest = max(found, key=lambda c: c.similarity)
    colours = clipart[[closest.first, closest.second]].float().mean(dim=(2, 3))  # (2, 3): mean RGB of each
    assert not closest.exact and (colours[0] - colours[1]).abs().max() > 10  # the same drawing, other colours


def test_the_fast_search_finds_exactly_the_pairs_a_full_comparison_finds():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (600, 1, 12, 12), dtype=torch.uint8)
    noisy = (images[:40].float() + torch.randn(40, 1, 12, 12) * torch.linspace(2, 30, 40).view(-1, 1, 1, 1))
    images = torch.cat([images, noisy.clamp(0, 255).to(torch.uint8), images[:1], torch.zeros(2, 1, 12, 12, dtype=torch.uint8)])
    thumbs = copies.thumbnails(images, side=None)
    similarity = thumbs @ thumbs.T
    for threshold in (0.9, 0.99):
        full = {(a, b) for a, b in torch.nonzero(similarity >= threshold).tolist() if a < b}
        found = copies._similar_pairs(thumbs, threshold, dims=8, block=64)
        assert {(a, b) for a, b, _ in found} == full and len(found) == len(full) > 0
        assert all(abs(s - float(similarity[a, b])) < 1e-5 for a, b, s in found)
    wide = copies._similar_pairs(thumbs, 0.9, dims=500)  # more directions than the thumbnails have
    assert {(a, b) for a, b, _ in wide} == {(a, b) for a, b in torch.nonzero(similarity >= 0.9).tolist() if a < b}


def test_describe_puts_copies_across_splits_first():
    found = [copies.Copy(0, 1, 1.0, True), copies.Copy(2, 3, 0.9912, False)]
    lines = copies.describe(found, ["a.png", "b.png", "c.jpg", "d.jpg"], ["train", "train", "train", "test"])
    assert lines == ["c.jpg and d.jpg: near copy (similarity 0.991) [train / test: across splits]",
                     "a.png and b.png: the same file"]


def test_bad_input_is_explained():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        copies.thumbnails(torch.zeros(3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="2 files for 1 images"):
        copies.find_copies(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), files=["a", "b"])
