"""How a backbone wants its input, and the check that refuses input it cannot have come from (chapter 1).

`Preprocess` turns uint8 images into the float tensor a backbone expects; each of its fields is
one thing that silently changes the result when it does not match training (chapter 1
measures how much). `check_batch` is the check tl_utils.models.load_backbone attaches to a
backbone. The resize and crop are torchvision's (`transforms.v2.functional`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # what most torchvision models expect; not Lite0
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocess:
    """uint8 images (N, C, H, W) -> the float tensor a backbone expects.

    Each field is one thing that can silently go wrong when it does not match training:
    pixels are multiplied by `scale`, put in `channels` order, resized (shorter side, then a
    centre crop) to `size` with `interpolation`, and normalised with `mean` and `std`.
    """

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"
    scale: float = 1 / 255
    channels: str = "RGB"

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
            got = type(images).__name__ if not isinstance(images, torch.Tensor) else images.dtype
            raise TypeError(
                f"Preprocess expects uint8 images (N, C, H, W) as tl_utils.data returns them, "
                f"got {got}. Floats in [0, 1]? Convert with (x * 255).round().to(torch.uint8)."
            )
        x = images[None] if images.ndim == 3 else images
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(
                f"expected images (N, C, H, W) with C = 1 (grey) or 3 (RGB), got shape "
                f"{tuple(images.shape)}. Channels-last arrays: use tl_utils.data.from_arrays first."
            )
        x = x.float() * self.scale
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # grey -> RGB: the backbone saw colour photos
        if self.channels == "BGR":
            x = x.flip(1)
        x = resize_and_crop(x, self.size, self.interpolation).clamp(0, 255 * self.scale)
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std


def resize_and_crop(x: torch.Tensor, size: int, interpolation: str = "bicubic") -> torch.Tensor:
    """Resize the shorter side to `size` (antialiased when shrinking), then crop the centre square."""
    height, width = x.shape[-2:]
    if (height, width) == (size, size):
        return x
    scale = size / min(height, width)
    new = [max(size, round(height * scale)), max(size, round(width * scale))]
    x = TF.resize(x, new, interpolation=InterpolationMode(interpolation), antialias=scale < 1)
    return TF.center_crop(x, [size, size])


def check_batch(x: torch.Tensor, mean: Sequence[float], std: Sequence[float], train_size: int) -> None:
    """Raise a ValueError if `x` cannot be the output of a Preprocess with this `mean` and `std`."""
    how = "use tl_utils.models.preprocessing(...) on uint8 images, or load_backbone(..., check_inputs=False)"
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"the backbone expects RGB batches (N, 3, H, W), got shape {tuple(x.shape)}; {how}")
    if min(x.shape[-2:]) < 32:
        raise ValueError(
            f"images of {x.shape[-2]}x{x.shape[-1]} pixels are too small: the backbone shrinks them 32x, "
            f"to nothing. Resize to at least 64 px (preprocessing(size=64)); it was trained at {train_size}."
        )
    mean_t, std_t = torch.tensor(mean), torch.tensor(std)
    low, high = float(((0 - mean_t) / std_t).min()), float(((1 - mean_t) / std_t).max())
    margin = 0.05 * (high - low)
    seen_low, seen_high = (float(v) for v in torch.aminmax(x.detach().float()))
    if seen_low < low - margin or seen_high > high + margin:
        hint = ("unscaled [0, 255] pixels?" if seen_high > 10 else
                "another model's normalisation, e.g. ImageNet mean/std?")
        raise ValueError(
            f"input values span [{seen_low:.2f}, {seen_high:.2f}], but this backbone was trained on "
            f"[{low:.2f}, {high:.2f}] (RGB in [0, 1], then (x - {mean[0]}) / {std[0]}). "
            f"Looks like {hint} Fix: {how}."
        )
