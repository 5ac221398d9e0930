"""Which parts of a network train: stages, splits, heads, freezing and BatchNorm (chapters 3-7).

A backbone is a list of stages (`stages`), input side first, then a head (`head`). Freezing
"the first k stages" (`freeze_stages`) keeps them at their pretrained values; `split` cuts the
network there, so the frozen bottom's output can be cached and only the top trains.
BatchNorm layers have a second kind of state besides weights, their running statistics:
`set_bn_mode` says whether training may move them (chapter 3 measures why it matters).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

import torch
from torch import nn

from .models import SmallCNN


def stages(model: nn.Module) -> list[nn.Module]:
    """The backbone's trunk as an ordered list, input side first (the head is not included).

    EfficientNet: the stem, its 7 blocks, the final 1x1 conv (9 stages, each callable, so
    running them in order reproduces the trunk). BERT-family encoders: the embeddings, then
    each transformer layer. SmallCNN: its two conv blocks and its fully connected block.
    Freezing "the first k stages" means these.
    """
    if isinstance(model, SmallCNN):
        return model.stages()
    if isinstance(model, Top):
        return list(model.trunk)
    if hasattr(model, "conv_stem") and hasattr(model, "blocks"):
        return [nn.Sequential(model.conv_stem, model.bn1), *model.blocks,
                nn.Sequential(model.conv_head, model.bn2)]
    base = getattr(model, "base_model", model)
    if hasattr(base, "embeddings") and hasattr(base, "encoder"):
        return [base.embeddings, *base.encoder.layer]
    raise TypeError(f"don't know the stages of a {type(model).__name__}")


class Top(nn.Module):
    """The part of a backbone above a split: `trunk` (its upper stages), `pool`, then `head`.

    `features()` is the trunk and the pooling: what the head sees, as a module of its own.
    """

    def __init__(self, trunk: Sequence[nn.Module], pool: nn.Module, head: nn.Module, drop_rate: float = 0.0):
        super().__init__()
        self.trunk = nn.Sequential(*trunk)
        self.pool = pool
        self.dropout = nn.Dropout(drop_rate)
        self.head = head

    def features(self) -> nn.Sequential:
        """The trunk and the pooling, sharing this module's weights: (N, C, H, W) -> (N, D)."""
        return nn.Sequential(self.trunk, self.pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.pool(self.trunk(x))))


class Split(NamedTuple):
    """A backbone cut in two: `top(bottom(x))` equals the backbone's output."""

    bottom: nn.Sequential
    top: Top


def split(model: nn.Module, k: int) -> Split:
    """(bottom, top): the first `k` stages, and everything after them up to the logits.

    top(bottom(x)) equals model(x). Both share the model's modules, so training `top`
    trains the model. With the bottom frozen, its output can be computed once and cached
    (tl_utils.features.extract(..., stage=k)), and only the top runs each epoch (chapter 3).
    """
    trunk = stages(model)
    if not hasattr(model, "global_pool") or not 0 <= k <= len(trunk):
        raise ValueError(f"split needs an EfficientNet and 0 <= k <= {len(trunk)}, got k={k}")
    top = Top(trunk[k:], model.global_pool, model.classifier, getattr(model, "drop_rate", 0.0))
    return Split(nn.Sequential(*trunk[:k]), top)


def head(model: nn.Module) -> nn.Module:
    """The classification head: what a new task replaces."""
    if isinstance(model, (SmallCNN, Top)):
        return model.head
    if hasattr(model, "get_classifier"):
        return model.get_classifier()
    if hasattr(model, "classifier"):
        return model.classifier
    raise TypeError(f"don't know the head of a {type(model).__name__}")


def freeze_stages(model: nn.Module, n_frozen: int) -> None:
    """Freeze the first `n_frozen` stages (0 = train everything, len(stages) = only the head)."""
    trunk = stages(model)
    if not 0 <= n_frozen <= len(trunk):
        raise ValueError(f"n_frozen must be between 0 and {len(trunk)}, got {n_frozen}")
    for param in model.parameters():
        param.requires_grad_(True)
    for stage in trunk[:n_frozen]:
        for param in stage.parameters():
            param.requires_grad_(False)


def unfreezing_schedule(n_stages: int, epochs: int, first: int = 1, per_epoch: int = 1) -> list[int]:
    """Gradual unfreezing (ULMFiT, chapter 3): how many stages stay frozen in each epoch.

    The first epoch trains the head and the top `first` stages; each later epoch unfreezes
    `per_epoch` more, top down. E.g. unfreezing_schedule(9, 4, per_epoch=3) -> [8, 5, 2, 0].
    Pass the list to tl_utils.train.fit(..., frozen_stages=...).
    """
    if epochs < 1 or first < 0 or per_epoch < 1:
        raise ValueError("epochs and per_epoch must be at least 1, first at least 0")
    return [max(0, n_stages - first - per_epoch * epoch) for epoch in range(epochs)]


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (only those that will be trained, with `trainable_only`)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def set_bn_mode(model: nn.Module, mode: str) -> None:
    """How BatchNorm layers behave while training (call after model.train()).

    "train": every BatchNorm updates its running statistics (PyTorch's default).
    "frozen": BatchNorm layers whose parameters are frozen keep their statistics (eval mode),
              as Keras does for frozen layers; the others train.
    "eval": every BatchNorm keeps its pretrained statistics.
    """
    if mode not in ("train", "frozen", "eval"):
        raise ValueError(f"BatchNorm mode must be 'train', 'frozen' or 'eval', got {mode!r}")
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            frozen = not any(p.requires_grad for p in module.parameters())
            if mode == "eval" or (mode == "frozen" and frozen):
                module.eval()


@contextmanager
def same_modes(model: nn.Module) -> Iterator[nn.Module]:
    """Restore every submodule's train/eval mode on leaving the block (e.g. BatchNorm kept in
    eval mode inside a model in training mode, as set_bn_mode leaves it)."""
    modes = [(module, module.training) for module in model.modules()]
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training
