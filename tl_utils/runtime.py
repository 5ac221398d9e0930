"""Seeds, devices, progress bars and the environment a notebook runs in (every chapter).

The device rule, the same on CPU, CUDA and Apple MPS:

    Models and data live on the CPU between calls. A tl_utils helper that computes
    (fit, predict, evaluate, extract, embed_texts, lr_range_test, fisher_diagonal, ...)
    takes the model to the device for its work (`on_device`) and puts it back where it
    found it before returning; what it returns (logits, features, histories) is on the CPU.
    Penalties (l2_sp, ewc, lwf) follow the device of the parameters and inputs they are given.

So a learner's cell that calls a model directly, `model(x)` with a CPU tensor `x`, works on
every device, before and after any helper ran, and after a resume from a checkpoint. Passing
`device=` to a helper, or setting TL_DEVICE, chooses where the work runs (book/setup.md).
"""

from __future__ import annotations

import itertools
import os
import platform
import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn


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


def has_own_gpu() -> bool:
    """Whether this process has a GPU to itself: CUDA, and at least as many GPUs on this machine as
    processes on it (LOCAL_WORLD_SIZE). Otherwise, e.g. two processes on Colab's one GPU, every
    process trains on the CPU (get_device) and they talk through gloo. (A launcher that
    shows each process only its own GPU, through CUDA_VISIBLE_DEVICES, is not handled: pass
    device= to fit there.) Apple's MPS is not used under torchrun."""
    local = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
    return torch.cuda.is_available() and torch.cuda.device_count() >= local


def get_device(prefer: str | None = None) -> torch.device:
    """The device to compute on: CUDA, then Apple MPS, then CPU.

    `prefer` (or the environment variable TL_DEVICE) forces one, e.g. "cpu". Under torchrun
    each process takes the GPU of its local rank, or the CPU when the machine has fewer GPUs
    than processes (tl_utils.distributed).
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
    if "LOCAL_RANK" in os.environ:  # under torchrun: each process its own GPU, else the CPU
        return torch.device("cuda", int(os.environ["LOCAL_RANK"])) if has_own_gpu() else torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def work_device(device: torch.device | str | None = None) -> torch.device:
    """`device` as a torch.device, or the automatic choice (get_device) when it is None."""
    return torch.device(device) if device is not None else get_device()


def module_device(module: nn.Module) -> torch.device:
    """Where a module's weights are (the CPU for a module without any)."""
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        return tensor.device
    return torch.device("cpu")


@contextmanager
def on_device(model: nn.Module, device: torch.device | str | None = None) -> Iterator[torch.device]:
    """Move `model` to the work device for the block, then back where it was (the device rule).

        with on_device(model) as device:
            logits = model(x.to(device))
    """
    device = work_device(device)
    home = module_device(model)
    model.to(device)
    try:
        yield device
    finally:
        model.to(home)


def to_device(inputs, device: torch.device):
    """A tensor, or a dict of tensors (a tokenised text batch), on `device`."""
    if isinstance(inputs, Mapping):
        return {k: v.to(device, non_blocking=True) for k, v in inputs.items()}
    return inputs.to(device, non_blocking=True)


def fast_layout(x):
    """An image batch (N, C, H, W) on the CPU in channels-last memory order; anything else as is.

    The values are the same; only the order they sit in memory changes. PyTorch's CPU
    convolutions are faster on it: on 2 CPU cores, a training step of EfficientNet-Lite0 at
    64 px took 1.45 times less time, of the course's small CNN 1.5 times less (measured
    2026-11-29). Not applied on CUDA or MPS, where it was not measured. Results change by
    rounding only. A model that calls `x.view(len(x), -1)` on such an input fails on the CPU:
    use `x.flatten(1)` or `reshape` there.
    """
    if isinstance(x, torch.Tensor) and x.dim() == 4 and x.is_floating_point() and x.device.type == "cpu":
        return x.contiguous(memory_format=torch.channels_last)
    return x


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The mixed-precision type for training on `device`, or None for full precision.

    CUDA: bfloat16 where the GPU computes it natively (Ampere and newer), float16 elsewhere
    (with a gradient scaler, see tl_utils.train). A T4, Colab's free GPU, reports bfloat16
    support through emulation, which is slow: `including_emulation=False` rules that out.
    CPU and MPS: full precision.
    """
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16


def quiet() -> bool:
    """True when progress bars are off: TL_PROGRESS=0 (as in CI), or a process but the first under torchrun."""
    return os.environ.get("TL_PROGRESS", "1") == "0" or os.environ.get("RANK", "0") != "0"


def progress(iterable=None, **kwargs):
    """A tqdm progress bar, unless `quiet()`."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=quiet(), leave=False, **kwargs)


def describe_environment() -> dict[str, str]:
    """Versions and hardware, for the versions cell at the top of each chapter."""
    # The versions from the installed metadata: importing timm and transformers costs seconds a chapter may not need.
    from importlib.metadata import version

    device = get_device()
    if device.type == "cuda":
        hardware = torch.cuda.get_device_name(device)
    else:
        hardware = f"{os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads"
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": version("timm"),
        "transformers": version("transformers"),
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
