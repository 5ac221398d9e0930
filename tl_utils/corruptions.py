"""Common corruptions at five severities: blur, noise, contrast, brightness, JPEG, pixelate (chapter 12).

Six of the families of Hendrycks and Dietterich's ImageNet-C (2019), each from severity 1 (mild) to 5
(severe), on uint8 images (N, C, H, W) as tl_utils.data returns them, and deterministic for a
seed: a corrupted test set is as fixed as the original one. The strengths are ImageNet-C's, except
blur's, whose width is given for 224-pixel images and scaled here to the images' own side.
"""

from __future__ import annotations

import torch
from torchvision.transforms.v2 import functional as TF

from . import shifts

SEVERITIES: dict[str, tuple[float, ...]] = {
    "blur": (1.0, 2.0, 3.0, 4.0, 6.0),  # Gaussian sigma in pixels of a 224-pixel image
    "noise": (0.08, 0.12, 0.18, 0.26, 0.38),  # standard deviation of Gaussian noise, pixels in 0..1
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),  # the contrast kept around each image's mean grey
    "brightness": (0.1, 0.2, 0.3, 0.4, 0.5),  # added to every pixel, in 0..1
    "jpeg": (25, 18, 15, 10, 7),  # JPEG quality
    "pixelate": (0.6, 0.5, 0.4, 0.3, 0.25),  # the side kept, as a share, before enlarging back
}
KINDS = tuple(SEVERITIES)


def noise(images: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    """Gaussian noise of standard deviation `sigma` (pixels in 0..1), the same draw for a seed."""
    x = shifts.brightness_contrast(images) / 255  # checks the input; brightness 0, contrast 1 change nothing
    draw = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    return ((x + sigma * draw).clamp(0, 1) * 255).round().to(torch.uint8)


def jpeg(images: torch.Tensor, quality: int) -> torch.Tensor:
    """Each image saved as a JPEG at `quality` (1-100) and decoded again (torchvision's encoder)."""
    shifts.brightness_contrast(images[:1])  # the same check on the input as every shift
    if images.shape[1] not in (1, 3):
        raise ValueError(f"JPEG stores 1 or 3 channels, these images have {images.shape[1]}")
    return TF.jpeg(images, quality)


def pixelate(images: torch.Tensor, keep: float) -> torch.Tensor:
    """Each image shrunk to `keep` of its side (averaging) and enlarged back with square pixels."""
    shifts.brightness_contrast(images[:1])
    side = images.shape[-2:]
    small = TF.resize(images, [max(1, round(keep * s)) for s in side], antialias=True)
    return TF.resize(small, list(side), interpolation=TF.InterpolationMode.NEAREST)


def corrupt(images: torch.Tensor, kind: str, severity: int, seed: int = 0) -> torch.Tensor:
    """`images` with corruption `kind` (one of KINDS) at `severity` 1-5; severity 0 returns them as they are."""
    if kind not in SEVERITIES:
        raise ValueError(f"unknown corruption {kind!r}: choose one of {', '.join(KINDS)}")
    if not (isinstance(severity, int) and 0 <= severity <= 5):
        raise ValueError(f"severity is a whole number from 0 (none) to 5, got {severity!r}")
    if severity == 0:
        return images.clone()
    level = SEVERITIES[kind][severity - 1]
    if kind == "blur":
        return shifts.blur(images, sigma=level * images.shape[-1] / 224)
    if kind == "noise":
        return noise(images, level, seed)
    if kind == "contrast":
        return shifts.brightness_contrast(images, contrast=level)
    if kind == "brightness":
        return shifts.brightness_contrast(images, brightness=level)
    if kind == "pixelate":
        return pixelate(images, level)
    return jpeg(images, int(level))
