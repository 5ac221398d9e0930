"""How sure an accuracy is: its 95% interval, alone or as the difference of two models scored on
the same examples (chapters 8 and 10, and `tl-advise`'s recommendation)."""

from __future__ import annotations

import math

import torch

__all__ = ["Z", "interval", "paired_interval"]

Z = 1.96  # 95% intervals


def interval(acc: float, n: int) -> float:
    """Half-width of a 95% Wilson interval for an accuracy measured on `n` examples (never 0, even
    at 0% or 100%, unlike the normal approximation)."""
    n = max(n, 1)
    centre = (acc + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(acc * (1 - acc) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return max(centre + half - acc, acc - (centre - half))


def paired_interval(pred_a: torch.Tensor, pred_b: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """(acc_a - acc_b, half-width of its 95% interval), both scored on the same examples.

    Paired: only the examples on which the two disagree about being right count, which makes
    the interval narrower than comparing two separate accuracies.
    """
    right_a, right_b = pred_a == labels, pred_b == labels
    n = len(labels)
    only_a, only_b = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    difference = (only_a - only_b) / n
    spread = math.sqrt(max(only_a + only_b - (only_a - only_b) ** 2 / n, 1.0)) / n  # at least one disagreement
    return difference, Z * spread
