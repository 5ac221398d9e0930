"""Label shift: priors estimated without labels where the answer is known, and Bayes' correction."""

import pytest
import torch

from tl_utils import priors


def _calibrated(n_per_class, means, seed=0):
    """Two-class 1-d Gaussians with known class means: exact posteriors under equal priors."""
    g = torch.Generator().manual_seed(seed)
    x = torch.cat([torch.randn(n, generator=g) + m for n, m in zip(n_per_class, means)])
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(n_per_class)])
    logits = torch.stack([-(x - m) ** 2 / 2 for m in means], 1)
    return logits.softmax(1).double(), y


def test_adjust_with_the_same_priors_changes_nothing_and_follows_bayes():
    p = torch.tensor([[0.5, 0.5], [0.9, 0.1]], dtype=torch.float64)
    assert torch.allclose(priors.adjust(p, torch.tensor([0.5, 0.5]), torch.tensor([0.5, 0.5])), p)
    q = priors.adjust(p, torch.tensor([0.5, 0.5]), torch.tensor([0.2, 0.8]))
    assert torch.allclose(q[0], torch.tensor([0.2, 0.8], dtype=torch.float64))
    assert torch.allclose(q.sum(1), torch.ones(2, dtype=torch.float64))


def test_em_recovers_known_priors_from_calibrated_probabilities():
    probs, _ = _calibrated([2000, 8000], [-1.0, 1.0])  # trained at 50/50, deployed at 20/80
    estimate = priors.em_priors(probs, torch.tensor([0.5, 0.5]))
    assert abs(estimate[0].item() - 0.2) < 0.03 and torch.isclose(estimate.sum(), torch.tensor(1.0, dtype=torch.float64))


def test_bbse_inverts_a_known_confusion_matrix_exactly():
    joint = torch.tensor([[0.4, 0.1], [0.1, 0.4]], dtype=torch.float64)  # source priors 0.5/0.5, 80% recall
    # target priors 0.2/0.8: predicted class 0 with probability 0.2*0.8 + 0.8*0.2 = 0.32
    predicted = torch.tensor([0] * 32 + [1] * 68)
    assert torch.allclose(priors.bbse_priors(joint, predicted), torch.tensor([0.2, 0.8], dtype=torch.float64))


def test_confusion_is_the_joint_distribution_of_predicted_and_true():
    c = priors.confusion(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 1, 1]), 2)
    assert c.tolist() == [[0.25, 0.25], [0.0, 0.5]] and c.sum().item() == 1.0


def test_bbse_on_a_sample_comes_close_to_the_truth():
    val_probs, val_y = _calibrated([5000, 5000], [-1.5, 1.5], seed=1)
    joint = priors.confusion(val_probs.argmax(1), val_y, 2)
    target_probs, _ = _calibrated([3000, 7000], [-1.5, 1.5], seed=2)
    assert abs(priors.bbse_priors(joint, target_probs.argmax(1))[0].item() - 0.3) < 0.03


def test_bad_inputs_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="singular"):
        priors.bbse_priors(torch.tensor([[0.5, 0.5], [0.0, 0.0]]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="summing to 1"):
        priors.adjust(torch.tensor([[0.5, 0.5]]), torch.tensor([0.5, 0.6]), torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="rows sum to 1"):
        priors.em_priors(torch.tensor([[2.0, -1.0]]), torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="classes 0 to 1"):
        priors.bbse_priors(torch.tensor([[0.4, 0.1], [0.1, 0.4]]), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="non-empty"):
        priors.bbse_priors(torch.tensor([[0.4, 0.1], [0.1, 0.4]]), torch.tensor([], dtype=torch.long))
    with pytest.raises(ValueError, match="same, non-zero length"):
        priors.confusion(torch.tensor([0, 1]), torch.tensor([0]), 2)
