"""Saving a training run after every epoch, and resuming it exactly where it stopped (`train.fit`).

A run's checkpoint is named by the digest of everything its result depends on (`run_settings`),
so a run with other settings trains afresh beside it instead of resuming the wrong one. It holds
the model, optimizer, schedule and gradient scaler, the random-number state and the history, so
a resumed run ends with exactly the weights of an uninterrupted one (on a CPU).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from . import distributed, files, keys

__all__ = ["run_settings", "checkpoint_file", "resume", "save"]


def run_settings(model: nn.Module, train: tuple, val: tuple | None, optimizer, scheduler, **settings) -> dict[str, str]:
    """One digest per setting a training run's result depends on (its checkpoint fingerprint).

    The data (train and val, each a pair of inputs and labels), the starting weights and architecture and
    which weights train, the optimizer and its settings, the schedule, and every other
    argument of `fit` that changes the result (transform, augment, loss_fn, penalty, epochs,
    batch size, seed, BatchNorm mode, frozen stages, early stopping). The device is not among them: a run
    started on a CPU may be resumed on a GPU.
    """
    return {
        "data": keys.digest(train),
        "val": keys.digest(val),
        "model": keys.digest(model, [p.requires_grad for p in model.parameters()]),
        "optimizer": keys.digest(type(optimizer), optimizer),
        "scheduler": keys.digest(scheduler),
        **{name: keys.digest(value) for name, value in settings.items()},
    }


def checkpoint_file(folder: Path, settings: dict[str, str]) -> Path:
    """The checkpoint of the run with these settings; says which settings differ from others there."""
    path = folder / f"run-{keys.digest(settings)[:16]}.pt"
    others = sorted(folder.glob("run-*.pt"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
    if not path.is_file() and others:
        before = torch.load(others[-1], map_location="cpu", weights_only=True).get("settings", {})
        changed = [name for name, value in settings.items() if before.get(name) != value]
        if distributed.is_main():
            print(f"{folder}: the settings changed since the run saved there ({', '.join(changed)}); "
                  f"training afresh and keeping both. Delete the old run-*.pt files to free the space.")
    return path


def resume(path: Path, model, optimizer, scheduler, scaler, device, processes: int) -> tuple[list[dict], int, dict]:
    """Load a checkpoint into the run's objects; return (history, epochs done, early-stopping best)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    saved_by = state.get("processes", 1)
    if saved_by != processes:
        raise ValueError(
            f"{path} was written by a run on {saved_by} process(es), and this run has {processes}: each "
            f"step would see {processes}/{saved_by} of the examples it saw before, so resuming would not "
            f"continue the same run. Launch it with torchrun --nproc_per_node={saved_by} (1: without torchrun), "
            f"or give this run another checkpoint folder."
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
    return state["history"], state["epoch"], state.get("best") or {}


def save(path: Path, settings, model, optimizer, scheduler, scaler, epoch, history, device, best,
         processes: int):
    """Everything needed to continue exactly where this epoch ended; written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "settings": settings,
        "epoch": epoch,
        "history": history,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state() if device.type == "cuda" else None,
        "best": best or None,
        "processes": processes,
    }
    with files.atomic_path(path) as tmp:
        torch.save(state, tmp)
