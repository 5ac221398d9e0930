"""Launched by tests/test_distributed.py with torchrun: the same small training run as the test's
single-process references, on each process's share of every batch (tl_utils.distributed).

    torchrun --standalone --nproc_per_node=2 tests/distributed_worker.py OUT_DIR [no-averaging]

Process 0 saves the trained weights to OUT_DIR/weights.pt; every process writes
OUT_DIR/rank-R.json with what it saw (whether the features it got were read from the cache).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from tl_utils import checkpoints, data, distributed, features, models, train

N_EXAMPLES, BATCH, EPOCHS = 21, 4, 2  # 21: the last batch of each epoch splits 3 / 2 between two processes


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    split = data.load("mnist-5k", "train", n_per_class=3, seed=0)
    return split.x[:N_EXAMPLES], split.y[:N_EXAMPLES]


def scale(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 255


def small_model() -> torch.nn.Module:
    """The small CNN without dropout (each process would draw its own masks: no longer one batch)."""
    torch.manual_seed(0)
    model = models.small_cnn(10, in_channels=1, width=8)
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model


def run(model: torch.nn.Module, batch_size: int, accumulate: int = 1, checkpoint_dir=None) -> list[dict]:
    """The run every process, and the references, make. BatchNorm keeps its statistics ("eval"): in
    training mode each process would normalise by its own share's statistics, not the batch's.
    SGD, whose step is the gradient times the rate: AdamW divides by the gradient's size, which
    turns the rounding of a gradient that nearly cancels into a visible difference."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return train.fit(model, digits(), epochs=EPOCHS, optimizer=optimizer, batch_size=batch_size, accumulate=accumulate,
                     transform=scale, bn_mode="eval", seed=0, device="cpu", checkpoint_dir=checkpoint_dir)


def main(out: Path, mode: str) -> None:
    if mode == "no-averaging":  # breaks data parallelism on purpose: each process keeps its own gradients
        distributed.wrap = lambda model, device: model
    save = checkpoints.save

    def recorded(*args, **kwargs):  # which processes write checkpoints
        with open(out / "writers.txt", "a") as f:
            f.write(f"{distributed.rank()}\n")
        save(*args, **kwargs)

    checkpoints.save = recorded
    model = small_model()
    history = run(model, BATCH, checkpoint_dir=out / "checkpoints")
    split = data.load("mnist-5k", "test", n_per_class=1, seed=0)
    got = features.extract(models.load_backbone(), split, models.preprocessing(size=32), cache=out / "cache")
    (out / f"rank-{distributed.rank()}.json").write_text(json.dumps(
        {"world_size": distributed.world_size(), "features_cached": got.cached, "history": history}))
    if distributed.is_main():
        torch.save(model.state_dict(), out / "weights.pt")


if __name__ == "__main__":  # through the module, so the run's settings match the test's references
    import distributed_worker

    distributed_worker.main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "")
