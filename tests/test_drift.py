"""Drift: the MMD is near zero within one distribution, large across two, and the batched draws
equal the direct computation."""

import numpy as np
import pytest
import torch

from tl_utils import drift


def test_mmd_is_small_within_a_distribution_and_large_across():
    g = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(200, 8, generator=g) for _ in range(3))
    gamma = drift.median_gamma(a)
    assert drift.mmd(a, b, gamma) < 0.05 < 0.5 < drift.mmd(a, c + 2, gamma)
    assert drift.mmd(a, a, gamma) == pytest.approx(0, abs=1e-6)


def test_batched_draws_equal_the_direct_computation():
    g = torch.Generator().manual_seed(1)
    reference, pool = torch.randn(50, 4, generator=g), torch.randn(40, 4, generator=g)
    fast = drift.batch_mmds(reference, pool, 10, 5, np.random.default_rng(3), gamma=0.5)
    rng = np.random.default_rng(3)
    slow = [drift.mmd(reference, pool[torch.from_numpy(rng.choice(40, 10, replace=False))], 0.5) for _ in range(5)]
    assert np.allclose(fast, slow, atol=1e-6)


def test_the_median_heuristic_follows_the_scale():
    x = torch.randn(100, 3, generator=torch.Generator().manual_seed(2))
    assert drift.median_gamma(10 * x) == pytest.approx(drift.median_gamma(x) / 100, rel=1e-4)


def test_a_batch_larger_than_the_pool_is_refused():
    with pytest.raises(ValueError, match="2 to 5 rows"):
        drift.batch_mmds(torch.zeros(3, 2), torch.zeros(5, 2), 6, 1, np.random.default_rng(0))
