"""Data-parallel training on several processes with PyTorch's own engine (the appendix).

Launch any script that calls `tl_utils.train.fit` with `torchrun --nproc_per_node=N script.py`
and `fit` trains on N processes without changes to the script: torchrun sets RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT; `fit` joins the process group they describe (NCCL when
each process has a GPU of its own, gloo on CPUs), wraps the model in DistributedDataParallel,
and gives each process its own share of every batch. `batch_size` is then per process: N
processes with batch b train on the same batches of N*b examples, in the same order, as one
process with batch N*b, and end with the same weights up to rounding (tests/test_distributed.py)
as long as nothing depends on how the batch is split: BatchNorm statistics kept (bn_mode="eval"),
no dropout, no random augmentation. Only process 0 writes checkpoints, the feature cache and
progress bars; every process reads them.

Without torchrun (WORLD_SIZE unset or 1) nothing here does anything, and `fit` is the plain loop.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist
from torch import nn

from .runtime import has_own_gpu

_RENDEZVOUS = ("MASTER_ADDR", "MASTER_PORT", "RANK")


def world_size() -> int:
    """How many processes train together: WORLD_SIZE from the launcher, 1 without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    value = os.environ.get("WORLD_SIZE", "1")
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"WORLD_SIZE={value!r} is not a number of processes: unset it, or launch with "
                         f"torchrun --nproc_per_node=N, which sets it")
    return int(value)


def rank() -> int:
    """This process's number, 0 to world_size() - 1 (0 without a launcher)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """True in the one process that writes files and prints (process 0)."""
    return rank() == 0


def setup() -> bool:
    """Join the process group the launcher describes, once; return whether training is distributed.

    NCCL (with gloo for CPU tensors) when each process has a GPU of its own (`runtime.has_own_gpu`), gloo
    otherwise. Raises a ValueError that names the missing variables
    when WORLD_SIZE says several processes but the rendezvous (address, port, rank) is not set.
    """
    if world_size() == 1:
        return False
    if dist.is_initialized():
        return True
    missing = [name for name in _RENDEZVOUS if name not in os.environ]
    if missing:
        raise ValueError(
            f"WORLD_SIZE={os.environ['WORLD_SIZE']} asks for several processes, but {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set, so they cannot find each other. Launch the "
            f"script with torchrun (e.g. torchrun --nproc_per_node=2 train.py), which sets them all, or unset "
            f"WORLD_SIZE to train in one process."
        )
    if has_own_gpu():  # NCCL for GPU tensors; gloo still serves CPU tensors (a model kept on the CPU, all_sum)
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("cpu:gloo,cuda:nccl")
    else:
        dist.init_process_group("gloo")
    return True


def launch(script: str | os.PathLike, *args: str, processes: int = 2,
           timeout: float | None = 1800) -> subprocess.CompletedProcess:
    """Run `torchrun --standalone --nproc_per_node=processes script args...` and wait for it.

    What a terminal would run, from Python (a notebook, a test). Returns the finished process
    (its output in .stdout); raises a RuntimeError with the end of its error output if it failed,
    and subprocess.TimeoutExpired after `timeout` seconds (a process waiting for another forever).
    """
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               str(script), *map(str, args)]
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"torchrun exited with status {done.returncode}; the end of its output:\n"
                           f"{(done.stdout + done.stderr)[-3000:]}")
    return done


def shard(batch: torch.Tensor, processes: int, me: int) -> tuple[torch.Tensor, float]:
    """This process's share of a batch of example indices, and its weight in the batch's mean loss.

    The shares are as equal as possible (torch.tensor_split). The weight is the share's size
    times `processes` over the batch's size: DistributedDataParallel averages the processes'
    gradients, so weighted this way their average is exactly the gradient of the whole batch's
    mean loss, even when the last batch does not split evenly. A process whose share is empty
    (a batch with fewer examples than processes) gets the batch's first example with weight 0:
    every process must take part in every gradient exchange.
    """
    mine = torch.tensor_split(batch, processes)[me]
    if len(mine) == 0:
        return batch[:1], 0.0
    return mine, len(mine) * processes / len(batch)


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """`model` in DistributedDataParallel (gradients averaged over the processes in backward)."""
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def all_sum(*values: float) -> list[float]:
    """The sums over every process of each value (the values themselves without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    total = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(total)
    return total.tolist()


def barrier() -> None:
    """Wait until every process gets here (nothing without a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


@contextmanager
def main_first() -> Iterator[bool]:
    """Process 0 runs the block first (e.g. computes and caches features); the others wait, then run
    it (and find the result cached). Yields whether this is process 0."""
    setup()
    if not is_main():
        barrier()
    try:
        yield is_main()
    finally:
        if is_main():
            barrier()
