import copy

import pytest
import torch
from torch import nn

from tl_utils import data, freezing, models, shifts, train
from tl_utils import forgetting as F


def test_task_loss_scores_each_example_against_its_own_head():
    logits = torch.tensor([[5.0, 0.0, 9.0, 9.0], [9.0, 9.0, 0.0, 5.0]], requires_grad=True)
    labels = torch.tensor([0, 3])  # task 0 owns outputs 0-1, task 1 owns 2-3
    expected = (nn.functional.cross_entropy(logits[:1, :2], labels[:1]) +
                nn.functional.cross_entropy(logits[1:, 2:], labels[1:] - 2)) / 2
    loss = F.task_loss([2, 2])(logits, labels)
    assert loss.item() == pytest.approx(expected.item())
    loss.backward()
    assert logits.grad[0, 2:].abs().sum() == 0 and logits.grad[1, :2].abs().sum() == 0  # other heads untouched


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def test_l2_sp_is_zero_at_the_start_and_grows_with_distance():
    net = _net()
    penalty = F.l2_sp(net, strength=2.0)
    assert penalty(net, None, None).item() == 0
    with torch.no_grad():
        net[0].weight += 0.5
    assert penalty(net, None, None).item() == pytest.approx(2.0 / 2 * 32 * 0.25)


def test_fisher_is_larger_for_weights_the_loss_depends_on():
    net = _net()
    x, y = torch.randn(50, 4), torch.randint(0, 3, (50,))
    with torch.no_grad():
        x[:, 3] = 0  # the last input never varies: its weights get no gradient
    fisher = F.fisher_diagonal(net, x, y)
    assert set(fisher) == {n for n, _ in net.named_parameters()}
    assert fisher["0.weight"][:, 3].abs().sum() == 0 and fisher["0.weight"][:, :3].sum() > 0


def test_ewc_weights_the_pull_by_the_fisher():
    net = _net()
    fisher = {n: torch.zeros_like(p) for n, p in net.named_parameters()}
    fisher["2.bias"] = torch.ones(3)
    penalty = F.ewc(net, fisher, strength=4.0)
    with torch.no_grad():
        net[0].weight += 1.0  # unimportant: no penalty
        net[2].bias += 0.5
    assert penalty(net, None, None).item() == pytest.approx(4.0 / 2 * 3 * 0.25)


def test_lwf_is_the_distillation_loss_on_the_old_outputs():
    net = _net()
    penalty = F.lwf(copy.deepcopy(net), slice(0, 2), strength=0.5, temperature=2.0)
    x = torch.randn(6, 4)
    assert penalty(net, x, net(x)).item() == pytest.approx(0, abs=1e-6)  # still agrees with its old self
    new = torch.randn(6, 3)
    old = net(x)[:, :2].detach()
    q, log_p = (old / 2).softmax(dim=1), (new[:, :2] / 2).log_softmax(dim=1)
    expected = 0.5 * 4 * (q * (q.log() - log_p)).sum(dim=1).mean()
    assert penalty(net, x, new).item() == pytest.approx(expected.item(), rel=1e-5)


def test_replay_adds_a_fraction_of_the_old_data():
    new = (torch.zeros(100, 2), torch.zeros(100, dtype=torch.long))
    old = (torch.ones(50, 2), torch.ones(50, dtype=torch.long))
    x, y = F.replay(new, old, 0.2, seed=1)
    assert len(y) == 110 and y.sum() == 10 and torch.equal(x[:100], new[0])
    with pytest.raises(ValueError):
        F.replay(new, old, 1.5)


def test_a_penalty_keeps_a_small_net_near_its_start_during_fit():
    split = data.load("mnist-5k", "train", n_per_class=10)
    x, y = split.x.flatten(1).float() / 255, split.y
    torch.manual_seed(0)
    free, held = nn.Linear(784, 10), nn.Linear(784, 10)
    held.load_state_dict(free.state_dict())
    start = copy.deepcopy(free.state_dict())
    train.fit(free, (x, y), epochs=5, lr=1e-2)
    train.fit(held, (x, y), epochs=5, lr=1e-2, penalty=F.l2_sp(held, 100.0))
    moved = lambda m: (m.weight - start["weight"]).norm().item()  # noqa: E731
    assert moved(held) < 0.5 * moved(free)


def test_select_classes_relabels_and_permute_pixels_keeps_the_pixels():
    split = data.load("fashion-mnist", "val", n_per_class=3)
    half = data.select_classes(split, [2, 7])
    assert half.classes == ["Pullover", "Sneaker"] and sorted(set(half.y.tolist())) == [0, 1] and len(half) == 6
    with pytest.raises(ValueError):
        data.select_classes(split, [12])
    shuffled = shifts.permute_pixels(split.x, seed=0)
    assert torch.equal(shuffled.flatten(1).sort(dim=1).values, split.x.flatten(1).sort(dim=1).values)
    assert not torch.equal(shuffled, split.x) and torch.equal(shifts.permute_pixels(split.x, seed=0), shuffled)


def test_transfer_small_cnn_copies_only_the_kept_stages():
    source = models.small_cnn(10, in_channels=1)
    target = models.transfer_small_cnn(source, 5, keep=2)
    assert freezing.head(target).out_features == 5 and len(freezing.stages(target)) == 3
    assert torch.equal(target.body.conv1[0].weight, source.body.conv1[0].weight)
    assert torch.equal(target.body.conv2[0].weight, source.body.conv2[0].weight)
    assert not torch.equal(target.body.fc[2].weight, source.body.fc[2].weight)  # the fully connected stage is new
    freezing.freeze_stages(target, 2)
    assert freezing.count_parameters(target, trainable_only=True) == 64 * 49 * 128 + 128 + 128 * 5 + 5
    assert target.body(torch.zeros(2, 1, 28, 28)).shape == (2, 128)


def test_task_loss_explains_labels_outside_the_tasks():
    loss = F.task_loss([2, 2])
    with pytest.raises(ValueError, match=r"covers 4 classes.*labels from 0 to 7.*Number the labels across tasks"):
        loss(torch.zeros(3, 4), torch.tensor([0, 3, 7]))
    with pytest.raises(ValueError, match="got 5 outputs"):
        loss(torch.zeros(3, 5), torch.tensor([0, 1, 2]))


def test_small_cnn_initialises_its_layers_input_side_first():
    # the same seed gives the same starting weights as a plain Sequential of the same layers
    torch.manual_seed(0)
    cnn = models.small_cnn(5, in_channels=1, width=8)
    torch.manual_seed(0)
    first = nn.Conv2d(1, 8, 3, padding=1, bias=False)
    assert torch.equal(cnn.body.conv1[0].weight, first.weight)
