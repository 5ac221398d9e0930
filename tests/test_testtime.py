"""Test-time adaptation: BatchNorm re-estimation (AdaBN) and TENT, both undoable."""

import math

import pytest
import torch
from torch import nn

from tl_utils import testtime


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.5),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).eval()


def test_reestimation_gives_the_targets_statistics_and_can_be_undone():
    net = nn.Sequential(nn.BatchNorm1d(3)).eval()
    target = torch.randn(400, 3) * 2 + 5
    before = testtime.reestimate_batchnorm(net, target, batch_size=100)
    bn = net[0]
    assert torch.allclose(bn.running_mean, target.mean(0), atol=1e-5)  # equal batches: the mean of means
    batch_vars = torch.stack([p.var(0) for p in target.split(100)]).mean(0)  # unbiased, as BatchNorm keeps it
    assert torch.allclose(bn.running_var, batch_vars, atol=1e-4)
    assert not net.training and bn.momentum == 0.1 and not any(p.grad is not None for p in net.parameters())
    testtime.load_batchnorm_state(net, before)
    assert torch.equal(bn.running_mean, torch.zeros(3)) and torch.equal(bn.running_var, torch.ones(3))


def test_reestimation_moves_only_batchnorm_statistics():
    net = _net()
    weights = {k: v.clone() for k, v in net.state_dict().items() if "running" not in k and "num_batches" not in k}
    testtime.reestimate_batchnorm(net, torch.randn(64, 3, 8, 8) + 1, batch_size=16)
    assert all(torch.equal(net.state_dict()[k], v) for k, v in weights.items())
    assert not torch.allclose(net[1].running_mean, torch.zeros(8))


def test_entropy_is_zero_when_certain_and_log_k_when_uniform():
    h = testtime.entropy(torch.tensor([[100.0, 0.0, 0.0], [1.0, 1.0, 1.0]]))
    assert h[0].item() == pytest.approx(0, abs=1e-6) and h[1].item() == pytest.approx(math.log(3))


def test_tent_trains_only_batchnorm_affine_leaves_running_stats_and_resets():
    net = _net()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    grads = {n: p.requires_grad for n, p in net.named_parameters()}
    tent = testtime.Tent(net, lr=0.05, steps=2)
    x = torch.randn(32, 3, 8, 8) * 3
    first = tent.adapt(x)
    assert first.shape == (32, 4)
    now = net.state_dict()
    moved = {k for k in state if not torch.equal(state[k], now[k])}
    assert moved and moved <= {"1.weight", "1.bias", "1.num_batches_tracked"}  # running stats untouched
    assert not net.training  # the model's modes are as they were
    assert testtime.entropy(tent.adapt(x)).mean() < testtime.entropy(first).mean()  # entropy went down
    tent.close()
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    assert {n: p.requires_grad for n, p in net.named_parameters()} == grads


def test_tent_predicts_a_stream_with_its_own_batch_statistics():
    net = _net()
    x = torch.randn(65, 3, 8, 8)  # 64 + 1: the lone last image joins the batch before
    logits = testtime.Tent(net, lr=1e-9).predict(x, batch_size=32)
    assert logits.shape == (65, 4)
    net.train()
    for m in net.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    with torch.no_grad():
        expected = net(x[:32])  # batch statistics, dropout off: what TENT's first batch saw
    assert torch.allclose(logits[:32], expected, atol=1e-5)


def test_the_class_guard_resets_when_predictions_sit_on_one_class():
    net = _net()
    with torch.no_grad():
        net[-1].bias.copy_(torch.tensor([50.0, 0.0, 0.0, 0.0]))  # every image goes to class 0
    tent = testtime.Tent(net, lr=0.01, guard="classes", guard_at=0.3)
    tent.adapt(torch.randn(16, 3, 8, 8))
    assert tent.resets == 1


def test_the_agreement_guard_resets_when_answers_drift_from_the_start():
    def varied():  # a net whose starting answers differ between images
        net = _net()
        with torch.no_grad():
            net[-1].weight.mul_(20), net[-1].bias.zero_()
        return net

    x = torch.randn(32, 3, 8, 8)
    start = testtime.Tent(varied(), lr=1e-12).adapt(x).argmax(1)
    assert len(start.unique()) > 1
    tent = testtime.Tent(varied(), lr=10.0, guard="agreement", guard_at=0.9)
    answers = [tent.adapt(x).argmax(1) for _ in range(6)]  # a rate this high moves the answers at once
    assert tent.resets >= 2
    assert all((a == start).float().mean() >= 0.9 for a in answers)  # what it answers never strays
    calm = testtime.Tent(varied(), lr=1e-6, guard="agreement", guard_at=0.9)
    for _ in range(3):
        calm.adapt(x)
    assert calm.resets == 0


@pytest.mark.parametrize("make, message", [
    (lambda: testtime.Tent(nn.Linear(2, 2)), "no BatchNorm"),
    (lambda: testtime.Tent(_net(), lr=0), "positive rate"),
    (lambda: testtime.Tent(_net(), guard="classes", guard_at=1.5), "in \\(0, 1\\)"),
    (lambda: testtime.Tent(_net(), guard="entropy"), "'classes' or 'agreement'"),
    (lambda: testtime.reestimate_batchnorm(_net(), torch.randn(4, 3, 8, 8), batch_size=1), "at least 2"),
    (lambda: testtime.Tent(nn.Sequential(nn.BatchNorm1d(2, affine=False))), "affine=False"),
])
def test_what_cannot_be_adapted_says_why(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_reestimation_weights_batches_by_their_images_and_undoes_itself_on_failure():
    net = nn.Sequential(nn.BatchNorm1d(2)).eval()
    target = torch.cat([torch.zeros(128, 2), torch.full((2, 2), 100.0)])  # a short last batch of two
    testtime.reestimate_batchnorm(net, target, batch_size=128)
    assert torch.allclose(net[0].running_mean, target.mean(0))  # not the mean of the two batches' means
    before = {k: v.clone() for k, v in net.state_dict().items()}

    def fails(batch):
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        testtime.reestimate_batchnorm(net, torch.randn(8, 2), batch_size=4, transform=fails)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items()) and net[0].momentum == 0.1


def test_a_lone_last_image_joins_the_batch_before():
    assert [len(b) for b in testtime.batches(torch.zeros(65, 1), 32)] == [32, 33]
    assert [len(b) for b in testtime.batches(torch.zeros(64, 1), 32)] == [32, 32]


def test_tent_adapts_under_no_grad_and_leaves_no_gradients_behind():
    net = _net()
    tent = testtime.Tent(net, lr=0.05)
    with torch.no_grad():
        tent.adapt(torch.randn(16, 3, 8, 8) * 3)
    assert not torch.equal(net[1].weight, tent.start["1.weight"])  # it trained
    tent.close()
    assert all(p.grad is None for p in net.parameters())


def test_a_refused_model_keeps_its_trainable_parameters():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2, affine=False))
    with pytest.raises(ValueError, match="affine=False"):
        testtime.Tent(net)
    assert all(p.requires_grad for p in net.parameters())
