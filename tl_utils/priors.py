"""Label shift: the target's class priors estimated without labels, and predictions corrected for them (chapter 12).

Under label shift the classes' frequencies change while each class's inputs stay as they were,
so a model's probabilities are off by the ratio of new to old priors. Two estimators of the new
priors from unlabelled target data: `em_priors` (Saerens et al. 2002) alternates re-weighting the
model's probabilities and re-estimating the priors from them, which trusts the probabilities to be
calibrated; `bbse_priors` (black-box shift estimation, Lipton et al. 2018) inverts the confusion
matrix measured on labelled source validation data, which trusts only the hard predictions.
`adjust` re-weights probabilities for the new priors (Bayes' rule).
"""

from __future__ import annotations

import torch


def _priors(p: torch.Tensor, k: int | None = None, name: str = "priors") -> torch.Tensor:
    p = torch.as_tensor(p, dtype=torch.float64)
    if p.ndim != 1 or (k is not None and len(p) != k) or (p < 0).any() or not torch.isclose(p.sum(), p.new_tensor(1.0)):
        raise ValueError(f"{name} must be {k or 'K'} non-negative numbers summing to 1, got {p.tolist()}")
    return p


def _probabilities(probs: torch.Tensor) -> torch.Tensor:
    probs = torch.as_tensor(probs, dtype=torch.float64)
    if probs.ndim != 2 or (probs < 0).any() or not torch.allclose(probs.sum(1), probs.new_ones(len(probs)), atol=1e-4):
        raise ValueError("probabilities must be an (N, K) array whose rows sum to 1 (softmax of the logits)")
    return probs


def adjust(probs: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Probabilities (N, K) of a model trained with class priors `source`, corrected for `target`:
    p_t(y|x) is proportional to p_s(y|x) * target[y] / source[y]."""
    probs = _probabilities(probs)
    k = probs.shape[1]
    weighted = probs * (_priors(target, k, "target priors") / _priors(source, k, "source priors").clamp_min(1e-12))
    return weighted / weighted.sum(1, keepdim=True).clamp_min(1e-300)


def em_priors(probs: torch.Tensor, source: torch.Tensor, *, iterations: int = 1000,
              tolerance: float = 1e-8) -> torch.Tensor:
    """Saerens et al.'s EM: the priors under which the corrected probabilities of the target
    examples `probs` (N, K), averaged, give the priors back. Starts from `source`."""
    probs = _probabilities(probs)
    source = _priors(source, probs.shape[1], "source priors")
    estimate = source.clone()
    for _ in range(iterations):
        new = adjust(probs, source, estimate).mean(0)
        if (new - estimate).abs().max() < tolerance:
            return new
        estimate = new
    return estimate


def confusion(predicted: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """The joint distribution C[i, j] = P(predicted i, true class j) on labelled data (K, K)."""
    predicted, labels = torch.as_tensor(predicted).long(), torch.as_tensor(labels).long()
    if predicted.shape != labels.shape or predicted.ndim != 1 or not len(labels):
        raise ValueError("predicted and labels must be two 1-d arrays of the same, non-zero length")
    joint = torch.zeros(k, k, dtype=torch.float64)
    joint.index_put_((predicted, labels), torch.ones(len(labels), dtype=torch.float64), accumulate=True)
    return joint / len(labels)


def bbse_priors(joint: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
    """Lipton et al.'s BBSE: the target priors from `joint` (`confusion` on source validation data)
    and the model's predicted classes on the target. Solves joint @ w = P_target(predicted) for the
    ratios w of target to source priors; negative ratios (noise) are set to 0 and the result renormalised."""
    joint = torch.as_tensor(joint, dtype=torch.float64)
    k = joint.shape[0]
    if joint.shape != (k, k):
        raise ValueError(f"the confusion matrix must be square (K, K), got {tuple(joint.shape)}")
    if torch.linalg.matrix_rank(joint) < k:
        raise ValueError("the confusion matrix is singular (a class is never predicted, or two are confused "
                         "completely): BBSE cannot invert it; use em_priors or more validation data")
    predicted = torch.as_tensor(predicted).long()
    if predicted.ndim != 1 or not len(predicted) or predicted.min() < 0 or predicted.max() >= k:
        raise ValueError(f"predicted must be a non-empty 1-d array of classes 0 to {k - 1} (argmax of the "
                         f"target's probabilities), got shape {tuple(predicted.shape)}")
    observed = torch.bincount(predicted, minlength=k).double() / len(predicted)
    ratios = torch.linalg.solve(joint, observed).clamp_min(0)
    target = ratios * joint.sum(0)  # source priors: the columns' sums
    return target / target.sum()
