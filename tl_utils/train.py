"""One training loop for vision and text (every chapter that trains).

`fit(model, train, val=...)` trains in place and returns the history: one dict per epoch.
Data is a pair (inputs, labels) held in memory: inputs a tensor, or a dict of tensors for
a tokenised text batch. With `checkpoint_dir`, the loop saves everything it needs after
every epoch and, when started again, resumes from the last epoch it finished. Because the
batch order of each epoch is drawn from (seed, epoch) and the random-number state is saved,
a resumed run ends with exactly the weights and history of an uninterrupted one (on a CPU).
With `patience`, training stops once the validation metric has not improved for that many
epochs, and the model ends with the weights of its best epoch (early stopping, chapter 8).
Launched with `torchrun --nproc_per_node=N`, the same call trains on N processes, each on its
share of every batch (tl_utils.distributed, the appendix).
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from . import checkpoints, distributed
from .freezing import freeze_stages, same_modes, set_bn_mode
from .runtime import autocast_dtype, fast_layout, module_device, on_device, progress, to_device

Inputs = torch.Tensor | Mapping[str, torch.Tensor]


def as_pair(data) -> tuple[Inputs, torch.Tensor]:
    """(inputs, labels) from a pair, a DataSplit or Features; labels as a tensor: class indices
    (a sequence of ints becomes int64), or a float tensor of target probabilities (N, K) kept as is."""
    if hasattr(data, "x") and hasattr(data, "y"):  # a DataSplit or Features
        data = (data.x, data.y)
    inputs, labels = data
    if isinstance(inputs, list):
        raise TypeError("got a list of texts: tokenise them first (see chapter 5), then pass the dict of tensors")
    if not isinstance(labels, torch.Tensor):
        try:
            labels = torch.as_tensor(list(labels), dtype=torch.long)
        except (TypeError, ValueError) as error:
            raise TypeError(f"labels must be a tensor or a sequence of ints, got {type(labels).__name__}") from error
    return inputs, labels


def _length(inputs: Inputs) -> int:
    return len(next(iter(inputs.values()))) if isinstance(inputs, Mapping) else len(inputs)


def take(inputs: Inputs, index: torch.Tensor) -> Inputs:
    """The examples at `index` of a tensor, or of every tensor of a tokenised batch."""
    if isinstance(inputs, Mapping):
        return {k: v[index] for k, v in inputs.items()}
    return inputs[index]


def forward(model: nn.Module, inputs: Inputs) -> torch.Tensor:
    """Logits from a plain module (a tensor batch) or a Hugging Face model (a dict batch)."""
    out = model(**inputs) if isinstance(inputs, Mapping) else model(fast_layout(inputs))
    return out.logits if hasattr(out, "logits") else out


def check_labels(labels: torch.Tensor, n_outputs: int) -> None:
    """Raise a ValueError when a label has no output of the model to go to (class indices), or
    when target probabilities (N, K) do not have one column per output."""
    if labels.is_floating_point():
        if labels.ndim != 2 or labels.shape[1] != n_outputs:
            raise ValueError(f"target probabilities must have shape (N, {n_outputs}), one column per output of "
                             f"the model; got {tuple(labels.shape)}. Class indices must be integers.")
        return
    top = int(labels.max())
    if top >= n_outputs or int(labels.min()) < 0:
        raise ValueError(
            f"labels go up to {top} but the model has {n_outputs} outputs: give it a head with one "
            f"output per class, e.g. load_backbone(..., num_classes=len(data.classes))."
        )


def _classes(labels: torch.Tensor) -> torch.Tensor:
    """Class indices as they are, or the most likely class of target probabilities (N, K)."""
    return labels if labels.ndim == 1 else labels.argmax(1)


def _mixed_precision(device: torch.device):
    """(autocast context, gradient scaler or None) for training on `device` (runtime.autocast_dtype)."""
    dtype = autocast_dtype(device)
    if dtype is None:
        return contextlib.nullcontext(), None
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    return torch.autocast(device.type, dtype=dtype), scaler


@torch.no_grad()
def predict(model: nn.Module, inputs: Inputs, *, batch_size: int = 256, transform: Callable | None = None,
            device: torch.device | str | None = None) -> torch.Tensor:
    """Logits (N, K) on the CPU, in batches, in eval mode; the model keeps its place and modes."""
    n = _length(inputs)
    if n == 0:
        raise ValueError("there are no examples to predict on: the split (or its subset) is empty")
    out = []
    with on_device(model, device) as device, same_modes(model):
        model.eval()
        autocast, _ = _mixed_precision(device)
        for start in range(0, n, batch_size):
            batch = to_device(take(inputs, torch.arange(start, min(start + batch_size, n))), device)
            with autocast:
                out.append(forward(model, transform(batch) if transform else batch).float().cpu())
    return torch.cat(out)


def evaluate(model: nn.Module, data, *, batch_size: int = 256, transform: Callable | None = None,
             device: torch.device | str | None = None) -> dict[str, float]:
    """Mean cross-entropy and accuracy of `model` on `data` ((inputs, labels) or a DataSplit). With
    target probabilities as labels, the cross-entropy to them at temperature 1 (not `fit`'s loss_fn),
    and agreement with their top class."""
    inputs, labels = as_pair(data)
    logits = predict(model, inputs, batch_size=batch_size, transform=transform, device=device)
    check_labels(labels, logits.shape[-1])
    return {"loss": nn.functional.cross_entropy(logits, labels).item(),
            "acc": (logits.argmax(1) == _classes(labels)).float().mean().item()}


def fit(
    model: nn.Module,
    train,
    *,
    val=None,
    epochs: int = 1,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    batch_size: int = 64,
    accumulate: int = 1,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    penalty: Callable[[nn.Module, Inputs, torch.Tensor], torch.Tensor] | None = None,
    bn_mode: str = "frozen",
    frozen_stages: Sequence[int] | None = None,
    patience: int | None = None,
    monitor: str = "val_loss",
    checkpoint_dir: Path | str | None = None,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> list[dict]:
    """Train `model` in place; return one dict per epoch (losses, accuracies, lr, seconds).

    train / val: (inputs, labels), a DataSplit of images, or Features. Training labels may also be
        target probabilities (N, K), float: a teacher's softened outputs (chapter 11); the loss
        is then the cross-entropy to them, and train_acc counts agreement with their top class.
    batch_size: examples per forward pass; under torchrun, per process (N processes: N*batch_size per step).
    accumulate: gradient accumulation: one optimizer step per `accumulate` forward passes, on their
        gradients summed and weighted so that the step equals one with accumulate*batch_size examples.
    optimizer: default AdamW(lr, weight_decay) over the parameters that require grad.
    scheduler: stepped after every batch (so schedules are written in steps).
    transform: applied to every batch on the device (e.g. the backbone's preprocessing);
    augment: applied before it, to training batches only.
    loss_fn(logits, labels): the loss (default: cross-entropy), e.g. one softmax per task (chapter 7).
    penalty(model, inputs, logits): added to the loss (EWC, L2-SP, LwF: tl_utils.forgetting).
    bn_mode: how BatchNorm behaves during training, see tl_utils.freezing.set_bn_mode.
    frozen_stages: for gradual unfreezing, the number of frozen stages in each epoch (see
        tl_utils.freezing.unfreezing_schedule); the default optimizer then covers every parameter.
    patience: early stopping: stop after this many epochs without a better `monitor` ("val_loss",
        lower is better, or "val_acc", higher is better) and restore the best epoch's weights.
        Every row then has "best_epoch"; the last row has "stopped_early" (True if it stopped).
    checkpoint_dir: save after every epoch and resume from there when run again. A run with
        other settings (see `run_settings`) trains afresh beside it, and says what changed.
    device: where to train (default: tl_utils.runtime.get_device()); the model comes back to
        where it was, with its trained weights (the device rule, tl_utils.runtime).
    """
    inputs, labels = as_pair(train)
    n = len(labels)
    _check_arguments(model, n, val, epochs, accumulate, frozen_stages, patience, monitor)
    if optimizer is None:
        params = [p for p in model.parameters() if p.requires_grad or frozen_stages is not None]
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    parallel = distributed.setup()  # True under torchrun with several processes
    processes = distributed.world_size()
    if n < processes:
        raise ValueError(f"the training split has {n} examples for {processes} processes: each process needs at "
                         f"least one. Launch fewer processes (torchrun --nproc_per_node={n}), or train in one.")
    step_size = batch_size * accumulate * processes  # examples per optimizer step
    steps_per_epoch = math.ceil(n / step_size)
    ckpt = settings = None
    if checkpoint_dir is not None:
        stopping = {} if patience is None else {"early_stopping": (patience, monitor)}  # keeps older keys valid
        settings = checkpoints.run_settings(
            model, (inputs, labels), as_pair(val) if val is not None else None, optimizer, scheduler,
            transform=transform, augment=augment, loss_fn=loss_fn, penalty=penalty, epochs=epochs,
            batch_size=batch_size, seed=seed, bn_mode=bn_mode, frozen_stages=frozen_stages, **stopping,
            **({"accumulate": accumulate} if accumulate > 1 else {}))
        ckpt = checkpoints.checkpoint_file(Path(checkpoint_dir), settings)

    with on_device(model, device) as device, _on_device(augment, device):
        autocast, scaler = _mixed_precision(device)
        history, start_epoch, best = [], 0, {}  # best: early stopping's best epoch, score and weights (CPU)
        if ckpt is not None and ckpt.is_file():
            history, start_epoch, best = checkpoints.resume(ckpt, model, optimizer, scheduler, scaler, device,
                                                            processes)
        if history and history[-1].get("stopped_early"):
            start_epoch = epochs  # a run that stopped early is finished
        bar = progress(total=epochs * steps_per_epoch, initial=start_epoch * steps_per_epoch, desc="training")
        step = functools.partial(_step, inputs=inputs, labels=labels, optimizer=optimizer, scheduler=scheduler,
                                 scaler=scaler, autocast=autocast, accumulate=accumulate, augment=augment,
                                 transform=transform, loss_fn=loss_fn, penalty=penalty, device=device, bar=bar)
        for epoch in range(start_epoch, epochs):
            t0 = time.perf_counter()
            if frozen_stages is not None:
                freeze_stages(model, frozen_stages[epoch])
            model.train()
            set_bn_mode(model, bn_mode)
            net = distributed.wrap(model, device) if parallel else model  # after freezing: DDP syncs what trains
            order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 10_007 + epoch))
            total_loss, correct = 0.0, 0
            for i in range(steps_per_epoch):
                total_loss, correct = step(net, model, order[i * step_size : (i + 1) * step_size], total_loss,
                                           correct, where=(epoch, i), first=epoch == start_epoch and i == 0)
            total_loss, correct = distributed.all_sum(total_loss, correct)
            row = {"epoch": epoch + 1, "train_loss": total_loss / n, "train_acc": correct / n,
                   "lr": optimizer.param_groups[0]["lr"]}
            if val is not None:
                scores = evaluate(model, val, transform=transform, device=device)
                row.update(val_loss=scores["loss"], val_acc=scores["acc"])
            row["seconds"] = time.perf_counter() - t0
            best, stop = _early_stopping(row, best, model, patience, monitor, last=epoch + 1 == epochs)
            history.append(row)
            bar.set_postfix({k: round(v, 4) for k, v in row.items() if k in ("epoch", "train_loss", "val_acc")})
            if ckpt is not None and distributed.is_main():
                checkpoints.save(ckpt, settings, model, optimizer, scheduler, scaler, epoch + 1, history, device,
                                 best, processes)
            if stop:
                break
        bar.close()
        if best:
            model.load_state_dict(best["weights"])
        model.eval()
    return history


def _step(net: nn.Module, model: nn.Module, batch: torch.Tensor, total_loss: float, correct: int, *,
          inputs: Inputs, labels: torch.Tensor, optimizer, scheduler, scaler, autocast, accumulate: int, augment,
          transform, loss_fn, penalty, device, bar, where: tuple[int, int], first: bool) -> tuple[float, int]:
    """One optimizer step on the examples `batch` (indices): this process's share of them (under
    torchrun) in `accumulate` forward passes. Returns the epoch's running (summed loss, correct)
    with this step's added; `first`: the run's first step, where the labels are checked."""
    optimizer.zero_grad(set_to_none=True)
    mine, share = distributed.shard(batch, distributed.world_size(), distributed.rank())
    for part in range(accumulate):
        index, weight = distributed.shard(mine, accumulate, part)
        x, y = to_device(take(inputs, index), device), labels[index].to(device)
        if augment is not None:
            x = augment(x)
        with autocast:
            logits = forward(net, transform(x) if transform else x)
            if first:
                check_labels(labels, logits.shape[-1])
            loss = (loss_fn or nn.functional.cross_entropy)(logits.float(), y)
            if penalty is not None:
                loss = loss + penalty(model, x, logits)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"the loss became {loss.item()} at epoch {where[0] + 1}, step {where[1] + 1} "
                f"(learning rate {optimizer.param_groups[0]['lr']:.3g}). The rate is probably "
                f"too high for this model: try a tenth of it. Also check the inputs for NaN/inf."
            )
        # weighted so that the step's gradient is that of the mean loss over all its examples
        scaled = loss * (share * weight / accumulate)  # loss itself in one process without accumulation
        (scaler.scale(scaled) if scaler is not None else scaled).backward()
        counted = len(index) if share * weight > 0 else 0  # a stand-in example has weight 0
        total_loss += loss.item() * counted
        correct += (logits.argmax(1) == _classes(y)).sum().item() if counted else 0
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    if scheduler is not None:
        scheduler.step()
    bar.update()
    return total_loss, correct


def _on_device(module, device):
    """`on_device` for an augmentation that is a module (one with frozen stages inside), so that
    it moves once per run rather than once per batch; nothing for a plain function."""
    return on_device(module, device) if isinstance(module, nn.Module) else contextlib.nullcontext(device)


def _check_arguments(model: nn.Module, n: int, val, epochs: int, accumulate: int, frozen_stages, patience,
                     monitor: str) -> None:
    """Refuse arguments `fit` cannot train with, saying how to fix them."""
    if n == 0:
        raise ValueError("the training split is empty: there is nothing to train on")
    if val is not None and len(as_pair(val)[1]) == 0:
        raise ValueError("the validation split is empty: pass val=None, or a split with examples")
    _check_early_stopping(patience, monitor, val)
    if frozen_stages is not None and len(frozen_stages) != epochs:
        raise ValueError(f"frozen_stages has {len(frozen_stages)} entries for {epochs} epochs: give one per epoch")
    if not any(p.requires_grad for p in model.parameters()) and frozen_stages is None:
        raise ValueError("every parameter of the model is frozen: there is nothing to train")
    if not isinstance(accumulate, int) or accumulate < 1:
        raise ValueError(f"accumulate must be a positive number of forward passes per step, got {accumulate!r}")


def _early_stopping(row: dict, best: dict, model: nn.Module, patience: int | None, monitor: str,
                    last: bool) -> tuple[dict, bool]:
    """(best, stop) after the epoch of `row`: `best` keeps the best epoch's number, score and
    weights (on the CPU); stop when `patience` epochs passed without a better score (never after
    the last epoch). Adds best_epoch and stopped_early to `row`; nothing without patience."""
    if patience is None:
        return best, False
    if math.isfinite(row[monitor]) and (not best or _better(row[monitor], best["score"], monitor)):
        best = {"epoch": row["epoch"], "score": row[monitor],
                "weights": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}}
    best_epoch = best.get("epoch", 0)  # 0 while every score so far is NaN
    stop = row["epoch"] - best_epoch >= patience and not last
    row.update(best_epoch=best_epoch, stopped_early=stop)
    return best, stop


def _check_early_stopping(patience: int | None, monitor: str, val) -> None:
    """Refuse early-stopping settings that cannot work, saying how to fix them."""
    if patience is None:
        if monitor != "val_loss":
            raise ValueError(f"monitor={monitor!r} chooses what early stopping watches: pass patience=... with it "
                             "(e.g. patience=5), or leave monitor out")
        return
    if not isinstance(patience, int) or isinstance(patience, bool) or patience < 1:
        raise ValueError(f"patience must be a positive number of epochs (e.g. patience=5, or None for no early "
                         f"stopping), got {patience!r}")
    if monitor not in ("val_loss", "val_acc"):
        raise ValueError(f"monitor must be 'val_loss' or 'val_acc', got {monitor!r}")
    if val is None:
        raise ValueError("early stopping watches the validation split: pass val=... with patience")


def _better(score: float, best: float, monitor: str) -> bool:
    """Whether `score` improves on `best`: lower for a loss, higher for an accuracy."""
    return score < best if monitor.endswith("loss") else score > best


def memory_footprint(model: nn.Module, inputs: torch.Tensor, *, transform: Callable | None = None,
                     optimizer_states: int = 2) -> dict[str, float]:
    """Mebibytes (MiB, 2**20 bytes) a training step needs, measured on one batch (chapter 3).

    parameters: all weights; gradients: one per trainable weight; optimizer: `optimizer_states`
    per trainable weight (2 for Adam/AdamW); activations: every tensor autograd keeps from the
    forward pass for the backward pass, the part that grows with batch size and image size.
    The forward pass runs where the model is. The model is left as it was: its modes, and its
    BatchNorm statistics, which the measuring forward pass in training mode would otherwise
    move towards `inputs`.
    """
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor):
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:  # weights are counted once, as parameters
            saved[storage.data_ptr()] = storage.nbytes()  # each storage once
        return t

    buffers = [b.clone() for b in model.buffers()]
    with same_modes(model):
        model.train()
        x = to_device(inputs, module_device(model))
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = forward(model, transform(x) if transform else x)
        del out
    with torch.no_grad():
        for buffer, before in zip(model.buffers(), buffers):
            buffer.copy_(before)
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    mb = 1 / 2**20
    return {"parameters": sum(p.numel() * p.element_size() for p in model.parameters()) * mb,
            "gradients": trainable * mb, "optimizer": optimizer_states * trainable * mb,
            "activations": sum(saved.values()) * mb}
