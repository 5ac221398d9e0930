"""Seeds, devices and the environment a notebook runs in (every chapter's setup cell)."""

from __future__ import annotations

import os
import platform
import random
from pathlib import Path

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) so a run can be repeated.

    On a CPU the same seed gives the same numbers. On a GPU some kernels are
    non-deterministic, so expect small differences there.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.benchmark = False


def get_device(prefer: str | None = None) -> torch.device:
    """The device to train on: CUDA, then Apple MPS, then CPU.

    `prefer` (or the environment variable TL_DEVICE) forces one, e.g. "cpu".
    """
    choice = prefer or os.environ.get("TL_DEVICE")
    if choice:
        device = torch.device(choice)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                f"Device {choice!r} was requested but CUDA is not available here. "
                "Use 'cpu', or unset TL_DEVICE to choose automatically."
            )
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_environment() -> dict[str, str]:
    """Versions and hardware, for the versions cell at the top of each chapter."""
    import timm
    import transformers

    device = get_device()
    if device.type == "cuda":
        hardware = torch.cuda.get_device_name(device)
    else:
        hardware = f"{os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads"
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "transformers": transformers.__version__,
        "device": str(device),
        "hardware": hardware,
    }


def cache_dir() -> Path:
    """Where downloads, decoded images and cached features go: $TL_CACHE_DIR or ~/.cache/tl-course."""
    path = Path(os.environ.get("TL_CACHE_DIR") or Path.home() / ".cache" / "tl-course")
    return path.expanduser()


def checkpoint_path(base: str | Path | None, name: str) -> Path | None:
    """The folder for one training run's checkpoints under `base` (None: no checkpoints).

    Each chapter's long runs pass checkpoint_dir=checkpoint_path(CHECKPOINT_DIR, "<run>") to
    tl_utils.train.fit: after a disconnect, re-running the notebook reads finished runs back
    and continues interrupted ones from their last finished epoch.
    """
    if base is None:
        return None
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"a run name must be a plain folder name, got {name!r}")
    return Path(base).expanduser() / name
