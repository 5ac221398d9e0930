"""The hand-written schedules chapter 4 teaches, checked against the libraries people use:
`torch.optim.lr_scheduler` and transformers' warm-up schedules, as lora is checked against peft.
Where a convention differs on purpose, the test states the difference exactly."""

import warnings

import pytest
import torch

from tl_utils import schedules as S

T, WARMUP = 100, 10


def _rates(make, steps: int) -> list[float]:
    """The learning rate a library scheduler gives at steps 0 .. steps-1 (base rate 1)."""
    p = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([p], lr=1.0)
    scheduler, rates = make(optimizer), []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # OneCycleLR past its last step
            scheduler.step()
    return rates


def test_step_decay_is_steplr():
    assert S.curve(S.step_decay(30, 0.5), T) == _rates(lambda o: torch.optim.lr_scheduler.StepLR(o, 30, 0.5), T)


def test_cosine_is_cosine_annealing():
    expected = _rates(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=T, eta_min=0.1), T)
    assert S.curve(S.cosine(T, min_factor=0.1), T) == pytest.approx(expected, abs=1e-12)


def test_one_cycle_is_one_cycle_lr_one_step_longer():
    """OneCycleLR peaks at step pct*T - 1 and reaches its lowest rate at the last step; ours
    peaks at round(pct*T) and reaches it one step after the last, so the rate never hits the
    floor while training. Exactly OneCycleLR over T + 1 steps with its peak moved to match."""
    up = round(T * 0.3)
    expected = _rates(lambda o: torch.optim.lr_scheduler.OneCycleLR(
        o, max_lr=1.0, total_steps=T + 1, pct_start=(up + 1) / (T + 1), div_factor=25, final_div_factor=1e4), T)
    assert S.curve(S.one_cycle(T, pct_start=0.3), T) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("ours, theirs", [
    (S.warmup_linear, "get_linear_schedule_with_warmup"),
    (S.warmup_cosine, "get_cosine_schedule_with_warmup"),
])
def test_warmups_are_transformers_with_no_zero_first_step(ours, theirs):
    """transformers' warm-up starts at rate 0 (a step that does nothing); ours starts where theirs
    is one step later, and from the end of the warm-up on the two are the same."""
    import transformers

    make = getattr(transformers, theirs)
    expected = _rates(lambda o: make(o, num_warmup_steps=WARMUP, num_training_steps=T), T + 1)
    got = S.curve(ours(T, WARMUP), T)
    assert got[:WARMUP] == pytest.approx(expected[1:WARMUP + 1], abs=1e-12)
    assert got[WARMUP:] == pytest.approx(expected[WARMUP:T], abs=1e-12)
