import math

import pytest
import torch

from tl_utils import data, models
from tl_utils import schedules as S


def test_simple_schedules():
    assert S.curve(S.constant(), 3) == [1.0, 1.0, 1.0]
    assert S.curve(S.step_decay(2, gamma=0.5), 5) == [1, 1, 0.5, 0.5, 0.25]
    cos = S.curve(S.cosine(10, min_factor=0.1), 11)
    assert cos[0] == 1 and cos[10] == pytest.approx(0.1) and cos[5] == pytest.approx(0.55)


def test_warmup_then_decay():
    lin = S.curve(S.warmup_linear(10, 4), 10)
    assert lin[:4] == [0.25, 0.5, 0.75, 1.0] and lin[9] == pytest.approx(1 / 6)
    cos = S.curve(S.warmup_cosine(10, 2), 12)
    assert cos[:2] == [0.5, 1.0] and cos[2] == 1.0 and cos[10] == pytest.approx(0) and cos[11] == pytest.approx(0)
    with pytest.raises(ValueError, match="smaller than total_steps"):
        S.warmup_cosine(10, 10)


def test_slanted_triangular_follows_ulmfit():
    curve = S.curve(S.slanted_triangular(100, cut_frac=0.1, ratio=32), 100)
    assert curve[0] == pytest.approx(1 / 32) and max(curve) == curve[10] == 1.0
    assert all(a < b for a, b in zip(curve[:10], curve[1:11])) and all(a > b for a, b in zip(curve[10:], curve[11:]))
    with pytest.raises(ValueError):
        S.slanted_triangular(100, cut_frac=1.5)


def test_one_cycle_rises_then_anneals():
    curve = S.curve(S.one_cycle(100, pct_start=0.3, div_factor=25), 100)
    assert curve[0] == pytest.approx(1 / 25) and max(curve) == curve[30] == 1.0 and curve[-1] < 1e-3


def test_no_bias_correction_is_adams_missing_factor():
    factor = S.no_bias_correction(0.9, 0.999)
    assert factor(0) == pytest.approx(0.1 / math.sqrt(0.001))  # about 3.16 at the first step
    assert factor(50_000) == pytest.approx(1.0, abs=1e-3)
    # one step of bias-corrected Adam scaled by the factor equals one step without bias correction
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = torch.optim.Adam([w], lr=0.1, eps=0)
    sched = S.scheduler(opt, factor)
    (w * 3).sum().backward()
    opt.step()
    sched.step()
    m, v = 0.1 * 3, 0.001 * 9
    assert w.item() == pytest.approx(1 - 0.1 * m / math.sqrt(v))


def test_product_multiplies_and_scheduler_drives_an_optimizer():
    both = S.product(S.constant(), S.step_decay(1, 0.5))
    assert S.curve(both, 3) == [1, 0.5, 0.25]
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.2)
    sched = S.scheduler(opt, S.step_decay(1, 0.5))
    for _ in range(2):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)


def test_bad_step_counts_are_refused():
    for bad in [0, -3, 2.5]:
        with pytest.raises(ValueError, match="positive number of steps"):
            S.cosine(bad)


def test_layerwise_groups_decay_from_the_head_down():
    model = models.load_backbone(num_classes=3)
    groups = S.layerwise_groups(model, 1e-3, decay=2.0)
    rates = {g["name"]: g["lr"] for g in groups}
    assert rates["head and the rest"] == 1e-3 and rates["stage 8"] == 5e-4 and rates["stage 0"] == pytest.approx(1e-3 / 2**9)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))  # every weight, once
    optimizer = torch.optim.AdamW(groups)
    assert S.group_rates(optimizer)["stage 8"] == 5e-4
    with pytest.raises(ValueError, match="at least 1"):
        S.layerwise_groups(model, 1e-3, decay=0.5)


def test_layerwise_groups_work_for_a_text_encoder():
    _, bert = models.load_text_encoder("minilm-l6", num_labels=2)
    rates = {g["name"]: g["lr"] for g in S.layerwise_groups(bert, 1e-4, decay=2.6)}
    assert rates["stage 6"] == pytest.approx(1e-4 / 2.6) and rates["stage 0"] == pytest.approx(1e-4 / 2.6**7)


def test_lr_range_test_finds_a_rate_and_restores_the_weights():
    split = data.load("mnist-5k", "train", n_per_class=20)
    x = split.x.flatten(1).float() / 255
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    before = [p.detach().clone() for p in model.parameters()]
    model.eval()
    found = S.lr_range_test(model, (x, split.y), start_lr=1e-5, end_lr=10, steps=60)
    assert not model.training
    assert 1e-4 < found["suggested"] < 1 and len(found["lrs"]) == len(found["losses"]) <= 60
    assert found["lrs"][1] / found["lrs"][0] == pytest.approx((10 / 1e-5) ** (1 / 59))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_lr_range_test_trains_with_the_batchnorm_mode_asked_for_and_restores_modes():
    split = data.load("mnist-5k", "train", n_per_class=10)
    x = split.x.flatten(1).float() / 255
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 32), torch.nn.BatchNorm1d(32), torch.nn.ReLU(),
                                torch.nn.Linear(32, 10))
    seen = []
    model[1].register_forward_pre_hook(lambda module, args: seen.append(module.training))
    model.train()
    S.lr_range_test(model, (x, split.y), steps=5, batch_size=8, bn_mode="eval")
    assert seen and not any(seen)  # the pretrained statistics are kept throughout the test
    assert model.training and model[1].training  # the caller's modes, as they were
    seen.clear()
    S.lr_range_test(model, (x, split.y), steps=5, batch_size=8, bn_mode="train")
    assert all(seen)


def test_steepest_fall_skips_the_smoothings_start_and_finds_a_known_steepest_rate():
    lrs = [1e-6 * 10 ** (i / 10) for i in range(70)]  # 1e-6 .. ~8e0, ten steps a decade
    # a loss whose fastest fall (per log rate) is at 1e-3 (step 30), a sharp drop in the first
    # steps as a running mean's start-up makes, and a rise after 1e-1
    losses = [2.0 - math.tanh((math.log10(lr) + 3) * 1.5) + (1.5 if i < 3 else 0) - 0.4 * i / 3 * (i < 3)
              + (0.0 if lr < 0.1 else 5 * (math.log10(lr) + 1)) for i, lr in enumerate(lrs)]
    assert S.steepest_fall(lrs, losses) == pytest.approx(1e-3, rel=0.01)
    assert S.steepest_fall(lrs, losses, skip_start=0) < lrs[3]  # the artefact the skip avoids
    assert S.steepest_fall(lrs[:2], losses[:2]) == lrs[0]  # too few steps: the first rate
    assert S.steepest_fall(lrs, losses[:-1] + [float("nan")]) == pytest.approx(1e-3, rel=0.01)  # a blown-up last step
