"""The one k-nearest-neighbour vote (tl_utils.knn), checked against votes counted by hand."""

import pytest
import torch

from tl_utils import features, knn


def _features(x, y) -> features.Features:
    return features.Features(torch.tensor(x, dtype=torch.float32), torch.tensor(y), ["a", "b", "c"], None, False, 0.0)


# Directions on the unit circle: cosine similarity orders the bank by angle from the query.
BANK = _features([[1, 0], [0.9, 0.1], [0.8, 0.3], [0, 1], [-1, 0]], [0, 1, 1, 2, 2])


def test_the_majority_of_the_k_most_similar_wins():
    head = knn.KNNHead(BANK.x, BANK.y, 3, k=3)
    probs = head(torch.tensor([[1.0, 0.05]]))
    assert probs.argmax(1).item() == 1  # two of the three nearest say b
    assert probs.sum().item() == pytest.approx(1.0)


def test_a_tie_goes_to_the_nearest():
    head = knn.KNNHead(BANK.x, BANK.y, 3, k=2)  # the two nearest: a (nearest) and b
    assert head(torch.tensor([[1.0, 0.0]])).argmax(1).item() == 0


def test_accuracy_scores_the_same_vote_and_caps_k():
    queries = _features([[1, 0.05], [-0.3, 1], [-1, 0.1]], [1, 2, 2])
    assert knn.accuracy(BANK, queries, k=3) == 1.0
    assert knn.accuracy(BANK, queries, k=50) == knn.accuracy(BANK, queries, k=5)  # k capped at the 5 examples
    with pytest.raises(ValueError, match="between 1 and"):
        knn.KNNHead(BANK.x, BANK.y, 3, k=6)
