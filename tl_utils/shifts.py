"""Distribution shifts for testing robustness: the same test images, seen differently (chapter 3).

Each function takes uint8 images (N, C, H, W) and returns uint8 images of the same shape,
deterministically, so a shifted test set is as fixed as the original one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF


def _check(images: torch.Tensor) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
        raise TypeError("shifts take uint8 images (N, C, H, W), as tl_utils.data returns them")
    return images.float()


def brightness_contrast(images: torch.Tensor, brightness: float = 0.0, contrast: float = 1.0) -> torch.Tensor:
    """Scale each image's contrast around its mean grey level by `contrast` (torchvision's
    adjust_contrast), then add `brightness` (in 0..1 units: a brighter or darker scan)."""
    x = TF.adjust_contrast(_check(images) / 255, contrast) + brightness
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def blur(images: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Gaussian blur with standard deviation `sigma` pixels (torchvision's gaussian_blur, 3 sigma wide)."""
    radius = max(1, math.ceil(3 * sigma))
    return TF.gaussian_blur(_check(images), [2 * radius + 1] * 2, [sigma, sigma]).round().clamp(0, 255).to(torch.uint8)


def rotate(images: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate about the centre by `degrees` (counter-clockwise), filling with the corner colour."""
    x = _check(images)
    a = math.radians(degrees)
    theta = torch.tensor([[math.cos(a), math.sin(a), 0.0], [-math.sin(a), math.cos(a), 0.0]])
    grid = F.affine_grid(theta.expand(len(x), 2, 3), list(x.shape), align_corners=False)
    fill = x[:, :, :1, :1]  # the top-left pixel: the background of most of the course's images
    out = F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill
    return out.round().clamp(0, 255).to(torch.uint8)


def permute_pixels(images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Every image's pixels shuffled by one fixed permutation: all the information is still
    there, all the spatial structure is gone (chapter 6's degenerate source)."""
    _check(images)
    n, c, h, w = images.shape
    order = torch.randperm(h * w, generator=torch.Generator().manual_seed(seed))
    return images.reshape(n, c, h * w)[:, :, order].reshape(n, c, h, w)
