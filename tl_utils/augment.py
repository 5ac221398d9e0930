"""Data augmentation on the device, a new random draw for every image (chapter 8).

`fit(augment=...)` calls its augmentation on each training batch, on the device, before the
backbone's preprocessing. torchvision's `transforms.v2` draw one set of random parameters per
call, so a whole batch passed as one tensor would get the same crop and the same flip.
`PerImage` calls the transform once per image instead. The random draws come from PyTorch's
generator, so `seed_everything` fixes them and a resumed run repeats them.

Augmentation and cached features do not mix: a frozen stage's output is worth caching only
because the same image gives the same output every epoch. `ThroughFrozen` computes what the
trainable top of a split backbone sees, from new augmented pixels, batch by batch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision.transforms import v2

from .freezing import same_modes
from .runtime import on_device


class PerImage(nn.Module):
    """Apply `transform` (uint8 (C, H, W) -> uint8 (C, h, w)) to each image of a batch in turn."""

    def __init__(self, transform: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.transform = transform

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
            got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"augmentations work on uint8 image batches (N, C, H, W), as tl_utils.data "
                             f"returns them, got {got}: augment before preprocessing, not after")
        return torch.stack([self.transform(image) for image in images])


def for_drawings(size: int, *, crop_scale: tuple[float, float] = (0.5, 1.0), flip: bool = True,
                 jitter: float = 0.3) -> PerImage:
    """Crops, mirror images and colour changes that leave what a drawing shows unchanged.

    size: the side of the crops, in pixels (the resolution the model trains at).
    crop_scale: the fraction of the image a random crop keeps, (smallest, largest).
    flip: mirror left to right half the time (wrong where mirroring changes the label).
    jitter: how much saturation may change, and hue by a tenth of that (0 for none). Both leave
        white white, so the drawings keep the white background that validation and test
        drawings have; brightness and contrast changes would turn it grey.
    """
    steps: list[nn.Module] = [v2.RandomResizedCrop(size, scale=crop_scale, antialias=True)]
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    if jitter:
        steps.append(v2.ColorJitter(saturation=jitter, hue=jitter / 10))
    return PerImage(v2.Compose(steps))


class ThroughFrozen(nn.Module):
    """Augment a batch, preprocess it and run it through frozen stages: a top's training input.

    For `fit(split.top, images, augment=ThroughFrozen(augmentation, preprocess, split.bottom),
    val=cached_val_outputs)`: the top trains on its usual input, computed afresh from augmented
    images every epoch, while validation reuses the cached outputs of the unaugmented images.
    The frozen stages run without gradients, in evaluation mode, on the batch's device.
    """

    def __init__(self, augmentation: Callable[[torch.Tensor], torch.Tensor],
                 preprocess: Callable[[torch.Tensor], torch.Tensor], bottom: nn.Module):
        super().__init__()
        if any(p.requires_grad for p in bottom.parameters()):
            raise ValueError("the stages below the top must be frozen (freezing.freeze_stages) to run without "
                             "gradients here; to train them too, pass the whole model to fit with augment=augmentation")
        self.augmentation, self.preprocess, self.bottom = augmentation, preprocess, bottom

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with on_device(self.bottom, images.device), same_modes(self.bottom):
            self.bottom.eval()
            return self.bottom(self.preprocess(self.augmentation(images)))
