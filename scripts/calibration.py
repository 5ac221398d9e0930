"""A small fixed workload that says how fast this machine is for the course's kind of work.

The chapters' time budget is a multiple of this workload's time, measured in the same run,
so the same test passes on a slow laptop and catches a regression on a fast one. The
workload is what the chapters spend their time on, at the size they do it: EfficientNet-Lite0
extracting features of a batch of 64-px images, then a few full fine-tuning steps. It needs
only torch and timm (random weights: the arithmetic is the same as with pretrained ones).

    python scripts/calibration.py     # prints the seconds
"""

from __future__ import annotations

import statistics
import time

import torch

N_EXTRACT = 256  # images pushed through the frozen backbone, in batches of 128
N_STEPS = 8  # training steps of 32 images each
SIZE = 64  # pixels, the chapters' default


def _workload(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> None:
    model.eval()
    with torch.inference_mode():
        for start in range(0, N_EXTRACT, 128):
            model.forward_features(images[start : start + 128])
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for step in range(N_STEPS):
        batch = slice(32 * step, 32 * (step + 1))
        loss = torch.nn.functional.cross_entropy(model(images[batch]), labels[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


_READY: tuple | None = None  # (model, images, labels), built and warmed up on first use


def calibration_seconds(repeats: int = 3) -> float:
    """The median time of the workload over `repeats` runs (after a warm-up run, the first time).

    Machines that share their host slow down and speed up over minutes, so time it right
    before what it is compared with (the test suite does, before every chapter).
    """
    global _READY
    if _READY is None:
        import timm

        generator = torch.Generator().manual_seed(0)
        torch.manual_seed(0)
        model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=10)
        images = torch.randn(N_EXTRACT, 3, SIZE, SIZE, generator=generator)
        labels = torch.randint(10, (N_EXTRACT,), generator=generator)
        _workload(model, images, labels)  # warm-up: first calls allocate and pick kernels
        _READY = (model, images, labels)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _workload(*_READY)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    print(f"{calibration_seconds():.2f} s")
