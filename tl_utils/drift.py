"""Data drift: the maximum mean discrepancy (MMD) between incoming inputs and a reference sample
(the responsible-transfer page, chapter 12).

`mmd` compares two samples of vectors (embeddings, pooled features) with a Gaussian kernel of
width `gamma`; it is near zero when both come from one distribution. `batch_mmds` gives its
values for many random batches drawn from a pool of inputs without drift, computing the kernel
matrices once, so that thousands of draws take a second: an alarm threshold is a high quantile
of them. `median_gamma` sets the width from the reference's own distances (the median heuristic).
"""

from __future__ import annotations

import numpy as np
import torch


def kernel(x: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
    """exp(-gamma * |x_i - y_j|^2) for every pair of rows."""
    return torch.exp(-gamma * torch.cdist(x, y) ** 2)


def mmd(a: torch.Tensor, b: torch.Tensor, gamma: float = 1.0) -> float:
    """The (biased) squared MMD between the rows of `a` and those of `b`."""
    return (kernel(a, a, gamma).mean() + kernel(b, b, gamma).mean() - 2 * kernel(a, b, gamma).mean()).item()


def median_gamma(reference: torch.Tensor) -> float:
    """1 / the median squared distance between the reference's rows: a width that fits their scale."""
    return 1 / torch.cdist(reference, reference).pow(2).median().clamp_min(1e-12).item()


def batch_mmds(reference: torch.Tensor, pool: torch.Tensor, batch: int, draws: int, rng: np.random.Generator,
               gamma: float = 1.0) -> np.ndarray:
    """`mmd(reference, b)` for `draws` batches b of `batch` rows drawn from `pool` without replacement
    (within a batch), equal to calling `mmd` on each, from two kernel matrices computed once."""
    if not 1 < batch <= len(pool):
        raise ValueError(f"a batch must hold 2 to {len(pool)} rows of the pool, got {batch}")
    ref_ref = kernel(reference, reference, gamma).mean()
    ref_pool, pool_pool = kernel(reference, pool, gamma), kernel(pool, pool, gamma)
    out = np.empty(draws)
    for d in range(draws):
        i = torch.from_numpy(rng.choice(len(pool), batch, replace=False))
        out[d] = (ref_ref + pool_pool[i][:, i].mean() - 2 * ref_pool[:, i].mean()).item()
    return out
