"""Learning a new task without forgetting the old one (chapter 7).

Each method is a small piece that plugs into tl_utils.train.fit:

- `task_loss(sizes)`: a loss with one softmax per task, for a model with one head per task
  whose outputs are concatenated (task 0's classes first, then task 1's, ...);
- `l2_sp(model, strength)`: a penalty pulling the weights back to where training started;
- `ewc(model, fisher, strength)`: the same pull, weighted by how much each weight mattered for
  the old task (elastic weight consolidation, Kirkpatrick et al. 2017);
- `lwf(old_model, outputs, strength)`: keep the old head's answers on the new data (learning
  without forgetting, Li & Hoiem 2018);
- `replay(new, old, fraction)`: mix a fraction of the old task's data into the new one's.

The penalties have the signature fit expects: penalty(model, inputs, logits) -> a scalar.
They follow the device rule (tl_utils.runtime): a penalty computes where the parameters and
inputs it is given are, moving its own reference values there on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from .freezing import same_modes
from .runtime import module_device, on_device

Penalty = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def task_loss(sizes: Sequence[int]) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Cross-entropy with a separate softmax per task.

    Labels are numbered across tasks (task 1's first class is sizes[0]); each example is
    scored only against its own task's outputs, as if each task had its own head.
    """
    bounds = torch.tensor([0, *torch.tensor(list(sizes)).cumsum(0).tolist()])
    total = int(bounds[-1])

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if logits.shape[1] != total or int(labels.min()) < 0 or int(labels.max()) >= total:
            raise ValueError(
                f"task_loss({list(sizes)}) covers {total} classes, but got {logits.shape[1]} outputs and labels "
                f"from {int(labels.min())} to {int(labels.max())}. Number the labels across tasks (task 1's "
                f"first class is {sizes[0]}) and give the model one output per class of every task."
            )
        task = torch.bucketize(labels, bounds[1:].to(labels.device), right=True)  # which task each label is in
        columns = torch.arange(logits.shape[1], device=logits.device)
        start, end = bounds.to(logits.device)[task], bounds.to(logits.device)[task + 1]
        own = (columns >= start[:, None]) & (columns < end[:, None])  # (B, total) mask of each example's task
        return nn.functional.cross_entropy(logits.masked_fill(~own, float("-inf")), labels)
    return loss


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def _beside(store: dict[str, torch.Tensor], name: str, param: torch.Tensor) -> torch.Tensor:
    """store[name], moved (once, in place in `store`) to the device of `param`."""
    if store[name].device != param.device:
        store[name] = store[name].to(param.device)
    return store[name]


def l2_sp(model: nn.Module, strength: float) -> Penalty:
    """strength/2 * the squared distance of the trainable weights from their current values (L2-SP)."""
    start = _snapshot(model)

    def penalty(model: nn.Module, inputs, logits) -> torch.Tensor:
        params = dict(model.named_parameters())
        return strength / 2 * sum(((params[n] - _beside(start, n, params[n])) ** 2).sum() for n in start)
    return penalty


def fisher_diagonal(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor,
                    loss_fn: Callable | None = None, transform: Callable | None = None,
                    device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """The diagonal of the empirical Fisher information: each trainable weight's mean squared
    gradient of the old task's loss, one example at a time (call it after training the old task).
    Computed on the work device; returned on the CPU."""
    loss_fn = loss_fn or nn.functional.cross_entropy
    with on_device(model, device) as device, same_modes(model):
        fisher = {name: torch.zeros_like(p) for name, p in model.named_parameters() if p.requires_grad}
        model.eval()
        for i in range(len(labels)):
            model.zero_grad(set_to_none=True)
            x = inputs[i : i + 1].to(device)
            loss_fn(model(transform(x) if transform else x), labels[i : i + 1].to(device)).backward()
            for name, p in model.named_parameters():
                if p.requires_grad and p.grad is not None:
                    fisher[name] += p.grad.detach() ** 2 / len(labels)
        model.zero_grad(set_to_none=True)
    return {name: value.cpu() for name, value in fisher.items()}


def ewc(model: nn.Module, fisher: dict[str, torch.Tensor], strength: float) -> Penalty:
    """strength/2 * sum of fisher * (weight - its value now)^2: elastic weight consolidation."""
    start, weights = _snapshot(model), dict(fisher)

    def penalty(model: nn.Module, inputs, logits) -> torch.Tensor:
        params = dict(model.named_parameters())
        return strength / 2 * sum((_beside(weights, n, params[n]) * (params[n] - _beside(start, n, params[n])) ** 2).sum()
                                  for n in start)
    return penalty


def lwf(old_model: nn.Module, outputs: slice, strength: float = 1.0, temperature: float = 2.0,
        transform: Callable | None = None) -> Penalty:
    """Learning without forgetting: keep the old task's outputs (`outputs`, a slice of the
    logits) close to what `old_model` (a frozen copy taken before training) says on the same
    new inputs, by distillation at `temperature`. The old model is the penalty's own: it moves
    to the device of the inputs it is given."""
    old_model.eval()
    for p in old_model.parameters():
        p.requires_grad_(False)

    def penalty(model: nn.Module, inputs, logits) -> torch.Tensor:
        if module_device(old_model) != inputs.device:
            old_model.to(inputs.device)
        with torch.no_grad():
            target = old_model(transform(inputs) if transform else inputs)[:, outputs]
        log_p = nn.functional.log_softmax(logits[:, outputs] / temperature, dim=1)
        q = nn.functional.softmax(target / temperature, dim=1)
        return strength * temperature**2 * nn.functional.kl_div(log_p, q, reduction="batchmean")
    return penalty


def replay(new: tuple[torch.Tensor, torch.Tensor], old: tuple[torch.Tensor, torch.Tensor],
           fraction: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The new task's data plus `fraction` (of the old task's size) of the old task's examples."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
    n = round(fraction * len(old[1]))
    keep = torch.randperm(len(old[1]), generator=torch.Generator().manual_seed(seed))[:n]
    return torch.cat([new[0], old[0][keep]]), torch.cat([new[1], old[1][keep]])
