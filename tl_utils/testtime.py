"""Adapting a trained model to unlabelled target images at test time: BatchNorm statistics and TENT (chapter 12).

Two answers to a shift that arrives without labels. `reestimate_batchnorm` (AdaBN, Li et al.
2016; Schneider et al. 2020) replaces every BatchNorm layer's running mean and variance by the
target's: no labels, no gradients, no weight changes. `Tent` (Wang et al. 2021) normalises with
each target batch's own statistics and moves BatchNorm's scale and shift by gradient steps that
lower the entropy of the model's predictions; `Tent.reset` returns the model to where it started,
and its guard does so by itself when the predictions collapse toward a few classes. Whatever
either changes can be put back: `batchnorm_state` before, `load_batchnorm_state` after.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn

from .freezing import same_modes

Transform = Callable[[torch.Tensor], torch.Tensor] | None


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The model's BatchNorm layers, input side first."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def batchnorm_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every BatchNorm layer's statistics, scale and shift, to restore later."""
    names = {id(m): name for name, m in model.named_modules()}
    return {f"{names[id(m)]}.{key}": value.detach().clone() for m in batchnorm_layers(model)
            for key, value in m.state_dict().items()}


def load_batchnorm_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Put back what `batchnorm_state` copied (in place, so an optimiser's parameters stay its own)."""
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                for key, value in m.state_dict().items():
                    value.copy_(state[f"{name}.{key}"])


def _require_batchnorm(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    layers = batchnorm_layers(model)
    if not layers:
        raise ValueError("the model has no BatchNorm layers, so there are no statistics to adapt")
    return layers


def batches(images: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """`images` in batches of `batch_size`, a last batch of one image joined to the one before
    (BatchNorm cannot measure a variance on one image)."""
    if batch_size < 2:
        raise ValueError(f"BatchNorm needs batches of at least 2 images to measure a variance, got {batch_size}")
    if len(images) < 2:
        raise ValueError(f"adapting BatchNorm needs at least 2 target images, got {len(images)}")
    parts = list(images.split(batch_size))
    if len(parts[-1]) < 2:
        parts[-2:] = [torch.cat(parts[-2:])]
    return parts


@torch.no_grad()
def reestimate_batchnorm(model: nn.Module, images: torch.Tensor, *, batch_size: int = 64,
                         transform: Transform = None) -> dict[str, torch.Tensor]:
    """AdaBN: every BatchNorm's running mean and variance become the average, over `images` in
    batches of `batch_size`, of each batch's own, weighted by its number of images (no labels, no
    gradients, nothing else moves).

    Returns the state before, for `load_batchnorm_state`; if anything fails on the way, that state
    is put back. The model is left in eval mode.
    """
    layers = _require_batchnorm(model)
    parts = batches(images, batch_size)
    before = batchnorm_state(model)
    momenta = [m.momentum for m in layers]
    model.eval()
    for m in layers:
        m.reset_running_stats()
        m.train()
    seen = 0
    try:
        for part in parts:
            seen += len(part)
            for m in layers:
                m.momentum = len(part) / seen  # running = the image-weighted mean of the batches so far
            model(transform(part) if transform else part)
    except BaseException:
        load_batchnorm_state(model, before)
        raise
    finally:
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum
        model.eval()
    return before


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Each row's prediction entropy in nats (0: certain; log K: uniform over K classes)."""
    logp = logits.log_softmax(1)
    return -(logp.exp() * logp).sum(1)


class Tent:
    """Test-time entropy minimisation on a stream of unlabelled batches (Wang et al. 2021).

    Only BatchNorm's scale and shift train (SGD with momentum 0.9, `steps` per batch, rate `lr`);
    BatchNorm normalises each batch with its own statistics and leaves its running ones as they
    were. `adapt` returns a batch's logits before that batch's update, as the paper predicts.

    guard: what resets the model to its starting point (counted in `resets`; that batch is then
    predicted from the start), or None for no guard:
      "classes": the entropy of the batch's mean prediction fell below `guard_at` times that of
          a uniform one (log K): the predictions collapse toward a few classes;
      "agreement": under `guard_at` of the batch's predictions agree with the starting model's
          (normalising with the same batch's statistics): the adapted model has drifted away from
          what it knew, whichever classes it now spreads its answers over.
    """

    def __init__(self, model: nn.Module, *, lr: float = 1e-3, steps: int = 1, guard: str | None = None,
                 guard_at: float = 0.5, transform: Transform = None):
        if steps < 1 or lr <= 0:
            raise ValueError(f"TENT needs steps >= 1 and a positive rate, got steps={steps}, lr={lr}")
        if guard not in (None, "classes", "agreement"):
            raise ValueError(f"guard must be None, 'classes' or 'agreement', got {guard!r}")
        if not 0 < guard_at < 1:
            raise ValueError(f"guard_at is a share, in (0, 1); got {guard_at}")
        self.model, self.steps, self.guard, self.guard_at = model, steps, guard, guard_at
        self.transform, self.resets = transform, 0
        self.layers = _require_batchnorm(model)
        params = [p for m in self.layers for p in (m.weight, m.bias) if p is not None]
        if not params:
            raise ValueError("the BatchNorm layers have no scale and shift (affine=False): TENT has nothing to train")
        self.anchor = copy.deepcopy(model) if guard == "agreement" else None  # the model as it started
        self.trainable = {p: p.requires_grad for p in model.parameters()}
        for p in model.parameters():
            p.requires_grad_(False)
        for p in params:
            p.requires_grad_(True)
        self.optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9)
        self.start = batchnorm_state(model)

    def reset(self) -> None:
        """Back to the model and optimiser as they were when TENT was created."""
        load_batchnorm_state(self.model, self.start)
        self.optimizer.zero_grad(set_to_none=True)
        self.optimizer.state.clear()

    def close(self) -> None:
        """Reset, and give every parameter back the requires_grad it had before."""
        self.reset()
        for p, flag in self.trainable.items():
            p.requires_grad_(flag)

    def _forward(self, batch: torch.Tensor, model: nn.Module | None = None) -> torch.Tensor:
        model = self.model if model is None else model
        layers = batchnorm_layers(model)
        momenta = [m.momentum for m in layers]
        with same_modes(model):
            model.eval()
            for m in layers:
                m.train()  # normalise with this batch's own statistics,
                m.momentum = 0.0  # and leave the running ones as they are
            try:
                return model(batch)
            finally:
                for m, momentum in zip(layers, momenta):
                    m.momentum = momentum

    def tripped(self, batch: torch.Tensor, logits: torch.Tensor) -> bool:
        """Whether the guard resets the model on this (transformed) batch and its logits."""
        if self.guard == "classes":
            mean = logits.detach().softmax(1).mean(0, keepdim=True)
            return entropy(mean.log()).item() < self.guard_at * math.log(logits.shape[1])
        if self.guard == "agreement":
            with torch.no_grad():
                start = self._forward(batch, self.anchor)
            return (start.argmax(1) == logits.argmax(1)).float().mean().item() < self.guard_at
        return False

    def adapt(self, batch: torch.Tensor) -> torch.Tensor:
        """Predict one batch of target images, then take the steps on its prediction entropy."""
        if len(batch) < 2:
            raise ValueError("TENT needs batches of at least 2 images")
        x = self.transform(batch) if self.transform else batch
        logits = self._forward(x)
        if self.tripped(x, logits):
            self.reset()
            self.resets += 1
            with torch.no_grad():
                return self._forward(x)
        answer = logits.detach()
        with torch.enable_grad():  # the steps train, even when called under torch.no_grad()
            for step in range(self.steps):
                if step or not logits.requires_grad:
                    logits = self._forward(x)
                self.optimizer.zero_grad(set_to_none=True)
                entropy(logits).mean().backward()
                self.optimizer.step()
        return answer

    def predict(self, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Logits for `images` streamed in batches of `batch_size` in their order, adapting as it goes."""
        return torch.cat([self.adapt(part) for part in batches(images, batch_size)])
