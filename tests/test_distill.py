"""Distillation: soft targets, the T**2-scaled loss, and fit training on target probabilities."""

import pytest
import torch
from torch import nn

from tl_utils import distill, train


def test_soft_targets_soften_with_temperature_and_keep_the_order():
    logits = torch.tensor([[4.0, 1.0, 0.0]])
    cold, warm = distill.soft_targets(logits, 1), distill.soft_targets(logits, 4)
    assert torch.allclose(cold.sum(1), torch.ones(1)) and torch.allclose(warm.sum(1), torch.ones(1))
    assert torch.allclose(cold, logits.softmax(1))
    assert warm[0, 0] < cold[0, 0] and warm[0, 2] > cold[0, 2]  # flatter, most likely class unchanged
    assert warm.argmax(1).item() == 0 and distill.hard_targets(logits).tolist() == [0]


@pytest.mark.parametrize("temperature", [0, -1])
def test_a_temperature_must_be_positive(temperature):
    with pytest.raises(ValueError, match="positive"):
        distill.soft_targets(torch.zeros(1, 2), temperature)
    with pytest.raises(ValueError, match="positive"):
        distill.loss(temperature)


def test_the_loss_is_smallest_when_the_student_matches_the_teacher():
    teacher = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    loss = distill.loss(4)
    targets = distill.soft_targets(teacher, 4)
    matched, other = loss(teacher, targets), loss(teacher.flip(1), targets)
    assert matched < other
    # scaled by T**2: the cross-entropy of the softened distributions, times 16
    expected = 16 * -(targets * (teacher / 4).log_softmax(1)).sum(1).mean()
    assert torch.isclose(matched, expected)


def test_fit_trains_a_student_on_target_probabilities():
    torch.manual_seed(0)
    x = torch.randn(64, 5)
    teacher = nn.Linear(5, 3)
    with torch.no_grad():
        targets = distill.soft_targets(teacher(x), 2)
    student = nn.Linear(5, 3)
    history = train.fit(student, (x, targets), epochs=60, lr=0.05, batch_size=16, loss_fn=distill.loss(2))
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["train_acc"] > 0.9  # agreement with the teacher's top class
    with torch.no_grad():
        assert (student(x).argmax(1) == targets.argmax(1)).float().mean() > 0.9


def test_target_probabilities_need_one_column_per_output():
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        train.fit(nn.Linear(5, 3), (torch.randn(8, 5), torch.full((8, 2), 0.5)), epochs=1)
