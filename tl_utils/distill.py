"""Knowledge distillation (chapter 11): a small student learns from a teacher's softened outputs.

Hinton, Vinyals and Dean (2015): divide the teacher's logits by a temperature T > 1 before the
softmax, so that the small probabilities it gives the wrong classes (which shirts look like
coats) become visible targets, and train the student to match them at the same temperature,
with the loss scaled by T**2 so that its gradients keep their size as T changes.

    targets = distill.soft_targets(teacher_logits, temperature=4)
    train.fit(student, (images, targets), loss_fn=distill.loss(4), ...)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["soft_targets", "loss", "hard_targets"]


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise ValueError(f"the temperature must be positive, got {temperature}: 1 leaves the teacher's "
                         "probabilities as they are, larger values soften them.")


def soft_targets(teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """The teacher's probabilities at `temperature`: softmax(logits / T), (N, K), float32."""
    _check_temperature(temperature)
    return (teacher_logits.float() / temperature).softmax(dim=1)


def hard_targets(teacher_logits: torch.Tensor) -> torch.Tensor:
    """The teacher's most likely class for each example (pseudo-labels), (N,) int64."""
    return teacher_logits.argmax(dim=1)


def loss(temperature: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """loss_fn for `train.fit`: T**2 times the cross-entropy between the student's probabilities at
    temperature T and the targets (from `soft_targets` at the same T)."""
    _check_temperature(temperature)

    def distillation_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return temperature**2 * nn.functional.cross_entropy(logits / temperature, targets)

    return distillation_loss
