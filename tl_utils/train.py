"""One training loop for vision and text (every chapter that trains).

`fit(model, train, val=...)` trains in place and returns the history: one dict per epoch.
Data is a pair (inputs, labels) held in memory: inputs a tensor, or a dict of tensors for
a tokenised text batch. With `checkpoint_dir`, the loop saves everything it needs after
every epoch and, when started again, resumes from the last epoch it finished. Because the
batch order of each epoch is drawn from (seed, epoch) and the random-number state is saved,
a resumed run ends with exactly the weights and history of an uninterrupted one (on a CPU).
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from .models import freeze_stages, set_bn_mode
from .runtime import get_device

Inputs = torch.Tensor | Mapping[str, torch.Tensor]


def progress(iterable=None, **kwargs):
    """A tqdm progress bar (off when the environment variable TL_PROGRESS is 0, as in CI)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=os.environ.get("TL_PROGRESS", "1") == "0", leave=False, **kwargs)


def _as_pair(data) -> tuple[Inputs, torch.Tensor]:
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


def _take(inputs: Inputs, index: torch.Tensor, device: torch.device) -> Inputs:
    if isinstance(inputs, Mapping):
        return {k: v[index].to(device, non_blocking=True) for k, v in inputs.items()}
    return inputs[index].to(device, non_blocking=True)


def _forward(model: nn.Module, inputs: Inputs) -> torch.Tensor:
    """Logits from a plain module or a Hugging Face model."""
    out = model(**inputs) if isinstance(inputs, Mapping) else model(inputs)
    return out.logits if hasattr(out, "logits") else out


def _check_labels(labels: torch.Tensor, logits: torch.Tensor) -> None:
    n_out = logits.shape[-1]
    top = int(labels.max())
    if top >= n_out or int(labels.min()) < 0:
        raise ValueError(
            f"labels go up to {top} but the model has {n_out} outputs: give it a head with one "
            f"output per class, e.g. load_backbone(..., num_classes=len(data.classes))."
        )


def _autocast(device: torch.device):
    """Mixed precision on CUDA (bfloat16 where supported); full precision elsewhere."""
    if device.type != "cuda":
        return torch.autocast("cpu", enabled=False), None
    bf16 = torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else torch.float16
    scaler = None if bf16 else torch.amp.GradScaler("cuda")
    return torch.autocast("cuda", dtype=dtype), scaler


@torch.no_grad()
def predict(model: nn.Module, inputs: Inputs, *, batch_size: int = 256, transform: Callable | None = None,
            device: torch.device | str | None = None) -> torch.Tensor:
    """Logits (N, K) on the CPU, in batches, in eval mode."""
    device = torch.device(device) if device else get_device()
    model.to(device).eval()
    n = len(next(iter(inputs.values()))) if isinstance(inputs, Mapping) else len(inputs)
    out = []
    for start in range(0, n, batch_size):
        batch = _take(inputs, torch.arange(start, min(start + batch_size, n)), device)
        autocast, _ = _autocast(device)
        with autocast:
            out.append(_forward(model, transform(batch) if transform else batch).float().cpu())
    return torch.cat(out)


def evaluate(model: nn.Module, data, *, batch_size: int = 256, transform: Callable | None = None,
             device: torch.device | str | None = None) -> dict[str, float]:
    """Mean cross-entropy and accuracy of `model` on `data` ((inputs, labels) or a DataSplit)."""
    inputs, labels = _as_pair(data)
    logits = predict(model, inputs, batch_size=batch_size, transform=transform, device=device)
    _check_labels(labels, logits)
    return {"loss": nn.functional.cross_entropy(logits, labels).item(),
            "acc": (logits.argmax(1) == labels).float().mean().item()}


def _fingerprint(**config) -> str:
    return hashlib.sha256(repr(sorted(config.items())).encode()).hexdigest()[:16]


def fit(
    model: nn.Module,
    train,
    *,
    val=None,
    epochs: int = 1,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    batch_size: int = 64,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    penalty: Callable[[nn.Module, Inputs, torch.Tensor], torch.Tensor] | None = None,
    bn_mode: str = "frozen",
    frozen_stages: Sequence[int] | None = None,
    checkpoint_dir: Path | str | None = None,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> list[dict]:
    """Train `model` in place; return one dict per epoch (losses, accuracies, lr, seconds).

    train / val: (inputs, labels), a DataSplit of images, or Features.
    optimizer: default AdamW(lr, weight_decay) over the parameters that require grad.
    scheduler: stepped after every batch (so schedules are written in steps).
    transform: applied to every batch on the device (e.g. the backbone's preprocessing);
    augment: applied before it, to training batches only.
    loss_fn(logits, labels): the loss (default: cross-entropy), e.g. one softmax per task (chapter 7).
    penalty(model, inputs, logits): added to the loss (EWC, L2-SP, LwF: tl_utils.forgetting).
    bn_mode: how BatchNorm behaves during training, see tl_utils.models.set_bn_mode.
    frozen_stages: for gradual unfreezing, the number of frozen stages in each epoch (see
        tl_utils.models.unfreezing_schedule); the default optimizer then covers every parameter.
    checkpoint_dir: save after every epoch and resume from there when run again.
    """
    device = torch.device(device) if device else get_device()
    inputs, labels = _as_pair(train)
    model.to(device)
    if frozen_stages is not None and len(frozen_stages) != epochs:
        raise ValueError(f"frozen_stages has {len(frozen_stages)} entries for {epochs} epochs: give one per epoch")
    params = [p for p in model.parameters() if p.requires_grad or frozen_stages is not None]
    if not any(p.requires_grad for p in model.parameters()) and frozen_stages is None:
        raise ValueError("every parameter of the model is frozen: there is nothing to train")
    if optimizer is None:
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    autocast, scaler = _autocast(device)
    n = len(labels)
    steps_per_epoch = math.ceil(n / batch_size)
    history: list[dict] = []
    start_epoch = 0

    ckpt = Path(checkpoint_dir) / "last.pt" if checkpoint_dir else None
    settings = [{k: v for k, v in g.items() if k != "params"} | {"size": sum(p.numel() for p in g["params"])}
                for g in optimizer.param_groups]
    run_id = _fingerprint(epochs=epochs, batch_size=batch_size, n=n, seed=seed, frozen=frozen_stages,
                          optimizer=type(optimizer).__name__, groups=settings, bn=bn_mode,
                          scheduler=type(scheduler).__name__, model=sum(p.numel() for p in model.parameters()))
    if ckpt and ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        if state["run_id"] != run_id:
            raise ValueError(
                f"{ckpt} was written by a different run (other model, data size, epochs, batch size, seed "
                f"or optimizer settings). Delete it, or pass another checkpoint_dir."
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng_cpu"])
        if device.type == "cuda" and state.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(state["rng_cuda"])
        history, start_epoch = state["history"], state["epoch"]

    bar = progress(total=epochs * steps_per_epoch, initial=start_epoch * steps_per_epoch, desc="training")
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        if frozen_stages is not None:
            freeze_stages(model, frozen_stages[epoch])
        model.train()
        set_bn_mode(model, bn_mode)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 10_007 + epoch))
        total_loss, correct = 0.0, 0
        for step in range(steps_per_epoch):
            index = order[step * batch_size : (step + 1) * batch_size]
            x, y = _take(inputs, index, device), labels[index].to(device)
            if augment is not None:
                x = augment(x)
            with autocast:
                logits = _forward(model, transform(x) if transform else x)
                if epoch == start_epoch and step == 0:
                    _check_labels(labels, logits)
                loss = (loss_fn or nn.functional.cross_entropy)(logits.float(), y)
                if penalty is not None:
                    loss = loss + penalty(model, x, logits)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"the loss became {loss.item()} at epoch {epoch + 1}, step {step + 1} "
                    f"(learning rate {optimizer.param_groups[0]['lr']:.3g}). The rate is probably "
                    f"too high for this model: try a tenth of it. Also check the inputs for NaN/inf."
                )
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total_loss += loss.item() * len(index)
            correct += (logits.argmax(1) == y).sum().item()
            bar.update()
        row = {"epoch": epoch + 1, "train_loss": total_loss / n, "train_acc": correct / n,
               "lr": optimizer.param_groups[0]["lr"]}
        if val is not None:
            scores = evaluate(model, val, transform=transform, device=device)
            row.update(val_loss=scores["loss"], val_acc=scores["acc"])
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        bar.set_postfix({k: round(v, 4) for k, v in row.items() if k in ("epoch", "train_loss", "val_acc")})
        if ckpt:
            _save_checkpoint(ckpt, run_id, model, optimizer, scheduler, scaler, epoch + 1, history, device)
    bar.close()
    model.eval()
    return history


def _save_checkpoint(path: Path, run_id: str, model, optimizer, scheduler, scaler, epoch, history, device):
    """Everything needed to continue exactly where this epoch ended; written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "run_id": run_id,
        "epoch": epoch,
        "history": history,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state() if device.type == "cuda" else None,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def memory_footprint(model: nn.Module, inputs: torch.Tensor, *, transform: Callable | None = None,
                     optimizer_states: int = 2) -> dict[str, float]:
    """Megabytes a training step needs, measured on one batch (chapter 3).

    parameters: all weights; gradients: one per trainable weight; optimizer: `optimizer_states`
    per trainable weight (2 for Adam/AdamW); activations: every tensor autograd keeps from the
    forward pass for the backward pass, the part that grows with batch size and image size.
    The model is left as it was: its mode, and its BatchNorm statistics, which the measuring
    forward pass in training mode would otherwise move towards `inputs`.
    """
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor):
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:  # weights are counted once, as parameters
            saved[storage.data_ptr()] = storage.nbytes()  # each storage once
        return t

    was_training, buffers = model.training, [b.clone() for b in model.buffers()]
    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = _forward(model, transform(inputs) if transform else inputs)
    del out
    with torch.no_grad():
        for buffer, before in zip(model.buffers(), buffers):
            buffer.copy_(before)
    model.train(was_training)
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    mb = 1 / 2**20
    return {"parameters": sum(p.numel() * p.element_size() for p in model.parameters()) * mb,
            "gradients": trainable * mb, "optimizer": optimizer_states * trainable * mb,
            "activations": sum(saved.values()) * mb}
