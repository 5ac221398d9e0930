"""Learning-rate schedules, layer-wise rates and the LR range test (chapters 4 and 5).

Every schedule is a plain function from the step number (0, 1, 2, ...) to a multiplier of
the optimizer's base rate, so it can be plotted, multiplied with another, and used with any
`torch.optim` optimizer through `scheduler(optimizer, schedule)`, a standard `LambdaLR`
stepped once per batch. Copy this file into your own project: it needs only PyTorch.

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = scheduler(optimizer, warmup_cosine(total_steps=1000, warmup_steps=100))
    # in the training loop, after optimizer.step():  sched.step()
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn

from . import train as train_mod
from .freezing import same_modes, set_bn_mode
from .runtime import on_device, to_device

Schedule = Callable[[int], float]


def _positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive number of steps, got {value!r}")


def constant() -> Schedule:
    """The base rate at every step."""
    return lambda step: 1.0


def step_decay(step_size: int, gamma: float = 0.1) -> Schedule:
    """Multiply the rate by `gamma` every `step_size` steps."""
    _positive(step_size=step_size)
    return lambda step: gamma ** (step // step_size)


def cosine(total_steps: int, min_factor: float = 0.0) -> Schedule:
    """Cosine annealing from the base rate down to `min_factor` times it over `total_steps`."""
    _positive(total_steps=total_steps)
    return lambda step: min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))


def warmup_linear(total_steps: int, warmup_steps: int) -> Schedule:
    """Linear warm-up from 0 over `warmup_steps`, then linear decay to 0 at `total_steps`."""
    _positive(total_steps=total_steps, warmup_steps=warmup_steps)
    if warmup_steps >= total_steps:
        raise ValueError("warmup_steps must be smaller than total_steps")

    def schedule(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / (total_steps - warmup_steps))
    return schedule


def warmup_cosine(total_steps: int, warmup_steps: int, min_factor: float = 0.0) -> Schedule:
    """Linear warm-up over `warmup_steps`, then cosine annealing to `min_factor` at `total_steps`."""
    _positive(total_steps=total_steps, warmup_steps=warmup_steps)
    if warmup_steps >= total_steps:
        raise ValueError("warmup_steps must be smaller than total_steps")
    decay = cosine(total_steps - warmup_steps, min_factor)
    return lambda step: (step + 1) / warmup_steps if step < warmup_steps else decay(step - warmup_steps)


def slanted_triangular(total_steps: int, cut_frac: float = 0.1, ratio: float = 32) -> Schedule:
    """ULMFiT's slanted triangular rate (Howard & Ruder 2018): a short linear rise for the first
    `cut_frac` of the steps, then a long linear fall; the lowest rate is 1/`ratio` of the peak."""
    _positive(total_steps=total_steps)
    if not 0 < cut_frac < 1 or ratio < 1:
        raise ValueError("cut_frac must be in (0, 1) and ratio at least 1")
    cut = max(1, math.floor(total_steps * cut_frac))

    def schedule(step: int) -> float:
        p = step / cut if step < cut else 1 - (step - cut) / (cut * (1 / cut_frac - 1))
        return (1 + max(p, 0.0) * (ratio - 1)) / ratio
    return schedule


def one_cycle(total_steps: int, pct_start: float = 0.3, div_factor: float = 25, final_div_factor: float = 1e4) -> Schedule:
    """One-cycle (Smith): cosine rise from peak/`div_factor` to the peak over `pct_start` of the
    steps, then cosine fall to peak/(`div_factor` * `final_div_factor`)."""
    _positive(total_steps=total_steps)
    up = max(1, round(total_steps * pct_start))
    start, end = 1 / div_factor, 1 / (div_factor * final_div_factor)

    def schedule(step: int) -> float:
        if step < up:
            return start + (1 - start) * 0.5 * (1 - math.cos(math.pi * step / up))
        t = min(step - up, total_steps - up) / max(1, total_steps - up)
        return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * t))
    return schedule


def no_bias_correction(beta1: float = 0.9, beta2: float = 0.999) -> Schedule:
    """What leaving out Adam's bias correction does, as a rate multiplier (chapter 4).

    Adam without bias correction (as in the original BERT optimizer) takes steps
    (1 - beta1^t) / sqrt(1 - beta2^t) times those of ordinary Adam: about 3x at the first
    step, back to 1x after a few thousand. Multiply it into a schedule to reproduce it.
    """
    return lambda step: (1 - beta1 ** (step + 1)) / math.sqrt(1 - beta2 ** (step + 1))


def product(*schedules: Schedule) -> Schedule:
    """The step-by-step product of schedules, e.g. product(warmup_cosine(...), no_bias_correction())."""
    return lambda step: math.prod(s(step) for s in schedules)


def scheduler(optimizer: torch.optim.Optimizer, schedule: Schedule) -> torch.optim.lr_scheduler.LambdaLR:
    """A standard PyTorch scheduler following `schedule`; call .step() after every batch."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def curve(schedule: Schedule, steps: int) -> list[float]:
    """The multiplier at steps 0 .. steps-1, for plotting."""
    return [schedule(step) for step in range(steps)]


# ---------------------------------------------------------------- layer-wise rates


def layerwise_groups(model: nn.Module, lr: float, decay: float = 2.6, weight_decay: float = 0.0) -> list[dict]:
    """Discriminative learning rates (ULMFiT): parameter groups for a torch optimizer.

    The head and anything outside the trunk get `lr`; the trunk's last stage lr / decay, the
    one below lr / decay^2, and so on down to the input. Works for the course's EfficientNet
    and BERT-family encoders (their stages are tl_utils.freezing.stages).
    """
    from .freezing import stages

    if decay < 1:
        raise ValueError(f"decay must be at least 1 (1 = the same rate everywhere), got {decay}")
    trunk = stages(model)
    groups, seen = [], set()
    for depth, stage in enumerate(reversed(trunk), start=1):  # top stage first
        params = [p for p in stage.parameters() if id(p) not in seen]
        seen.update(id(p) for p in params)
        groups.append({"params": params, "lr": lr / decay**depth, "weight_decay": weight_decay,
                       "name": f"stage {len(trunk) - depth}"})
    rest = [p for p in model.parameters() if id(p) not in seen]
    groups.append({"params": rest, "lr": lr, "weight_decay": weight_decay, "name": "head and the rest"})
    return [g for g in reversed(groups) if g["params"]]


# ---------------------------------------------------------------- LR range test


def lr_range_test(
    model: nn.Module,
    train,
    *,
    start_lr: float = 1e-6,
    end_lr: float = 1.0,
    steps: int = 100,
    batch_size: int = 32,
    transform: Callable | None = None,
    optimizer_class: type[torch.optim.Optimizer] = torch.optim.AdamW,
    bn_mode: str = "frozen",
    device: torch.device | str | None = None,
    seed: int = 0,
) -> dict:
    """Smith's LR range test: train for `steps` batches with the rate rising exponentially
    from `start_lr` to `end_lr`, record the loss, stop once it explodes.

    Returns {"lrs", "losses" (smoothed), "suggested"}: the suggested rate is where the smoothed
    loss falls fastest (`steepest_fall`). The test trains as tl_utils.train.fit does: training mode, with
    BatchNorm layers as `bn_mode` says (tl_utils.freezing.set_bn_mode; "eval" keeps every
    pretrained statistic). Afterwards the model is as it was: its weights, its place (the
    device rule, tl_utils.runtime) and the mode of every module.
    """
    inputs, labels = train_mod.as_pair(train)
    saved = copy.deepcopy(model.state_dict())
    lrs, losses, smooth, best = [], [], 0.0, float("inf")
    with on_device(model, device) as device, same_modes(model):
        model.train()
        set_bn_mode(model, bn_mode)
        optimizer = optimizer_class([p for p in model.parameters() if p.requires_grad], lr=start_lr)
        factor = (end_lr / start_lr) ** (1 / max(1, steps - 1))
        generator = torch.Generator().manual_seed(seed)
        for step in range(steps):
            lr = start_lr * factor**step
            for group in optimizer.param_groups:
                group["lr"] = lr
            index = torch.randint(len(labels), (batch_size,), generator=generator)
            x, y = to_device(train_mod.take(inputs, index), device), labels[index].to(device)
            loss = nn.functional.cross_entropy(train_mod.forward(model, transform(x) if transform else x).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            smooth = 0.9 * smooth + 0.1 * loss.item()
            value = smooth / (1 - 0.9 ** (step + 1))  # debiased running mean
            lrs.append(lr)
            losses.append(value)
            best = min(best, value)
            if not math.isfinite(value) or value > 4 * best:
                break
        model.load_state_dict(saved)
    return {"lrs": lrs, "losses": losses, "suggested": steepest_fall(lrs, losses)}


def steepest_fall(lrs: list[float], losses: list[float], skip_start: int = 10) -> float:
    """The rate at which the smoothed loss falls fastest per unit of log rate, before its lowest point.

    The first `skip_start` steps (a quarter of a shorter run) are skipped, as the usual
    implementations do: there the running mean is still settling from its start, and its moves say
    nothing about the rate. Past the lowest loss the rate is already too high. With too few steps
    left, the first rate is returned.
    """
    losses = [x if math.isfinite(x) else math.inf for x in losses]  # a loss that blew up is never the lowest
    low = min(range(len(losses)), key=losses.__getitem__)
    window = range(max(1, min(skip_start, len(losses) // 4)), min(low, len(lrs) - 2) + 1)
    if not window:
        return lrs[0]
    slope = {i: (losses[i + 1] - losses[i - 1]) / (math.log(lrs[i + 1]) - math.log(lrs[i - 1])) for i in window}
    return lrs[min(slope, key=slope.__getitem__)]


def group_rates(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """The current rate of each parameter group, by name where groups have one."""
    return {g.get("name", str(i)): g["lr"] for i, g in enumerate(optimizer.param_groups)}
