"""The k-nearest-neighbour vote on frozen features: a classifier with no training (chapters 2 and 10).

`KNNHead` is the vote as a module (so it can be saved and exported like any head);
`BackboneWithKNN` puts it on a backbone's pooled features; `accuracy` scores the vote.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["KNNHead", "BackboneWithKNN", "accuracy"]


class KNNHead(nn.Module):
    """A k-nearest-neighbour vote on pooled features, as a module: probabilities of each class.

    The neighbours are the training features (normalised, kept as a buffer); the vote is the
    share of the k most similar (cosine) that have each label, the nearest breaking ties.
    """

    def __init__(self, bank: torch.Tensor, labels: torch.Tensor, n_classes: int, k: int):
        super().__init__()
        if not 1 <= k <= len(bank):
            raise ValueError(f"k must be between 1 and the {len(bank)} stored examples, got {k}")
        self.k, self.n_classes = k, n_classes
        self.register_buffer("bank", nn.functional.normalize(bank.float(), dim=1))
        self.register_buffer("votes", nn.functional.one_hot(labels.long(), n_classes).float())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        similarity = nn.functional.normalize(features, dim=1) @ self.bank.T
        nearest = similarity.topk(self.k, dim=1).indices  # (N, k), the most similar first
        votes = self.votes[nearest].sum(dim=1) + 1e-3 * self.votes[nearest[:, 0]]
        return votes / votes.sum(dim=1, keepdim=True)


class BackboneWithKNN(nn.Module):
    """A backbone without its head (`num_classes=0`), then a KNNHead on its pooled features."""

    def __init__(self, backbone: nn.Module, head: KNNHead):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone.forward_head(self.backbone.forward_features(x), pre_logits=True))


def accuracy(train, test, k: int = 5) -> float:
    """Accuracy of a k-nearest-neighbour vote by cosine similarity: a probe with no training.

    train, test: Features, or a DataSplit of images (then the raw pixels are compared); k is
    capped at the number of training examples.
    """
    if len(train.y) == 0:
        raise ValueError("train has no examples")
    head = KNNHead(train.x.flatten(1), train.y, len(train.classes), min(k, len(train.y)))
    return (head(test.x.flatten(1).float()).argmax(dim=1) == test.y).float().mean().item()
