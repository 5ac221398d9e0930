"""Intervals of accuracies (tl_utils.stats), checked against scipy."""

import pytest
import torch
from scipy.stats import binomtest

from tl_utils import stats


@pytest.mark.parametrize("right, n", [(0, 58), (58, 58), (29, 58), (80, 100), (3, 7), (951, 1000)])
def test_interval_is_the_wilson_interval_of_scipy(right, n):
    """The half-width is the larger side of scipy's Wilson interval (scipy's z is 1.95996..., ours 1.96)."""
    acc = right / n
    low, high = binomtest(right, n).proportion_ci(0.95, method="wilson")
    assert stats.interval(acc, n) == pytest.approx(max(high - acc, acc - low), rel=2e-4)
    assert stats.interval(acc, n) > 0.01  # never 0, even at 0% or 100%


def test_the_paired_interval_counts_only_disagreements():
    labels = torch.zeros(100, dtype=torch.long)
    a = torch.zeros(100, dtype=torch.long)
    b = a.clone()
    b[:5] = 1  # b is wrong on 5 examples where a is right: a is 5 points ahead
    difference, half = stats.paired_interval(a, b, labels)
    assert difference == pytest.approx(0.05)
    assert half == pytest.approx(1.96 * (5 - 25 / 100) ** 0.5 / 100)  # McNemar-style, no agreement counted
    assert half < stats.interval(1.0, 100) + stats.interval(0.95, 100)
