"""Data-parallel supernet training over ``torch.distributed`` (gloo on CPU, nccl on CUDA).

The supernet changes shape every step, so instead of wrapping it in
``DistributedDataParallel`` (which expects a fixed set of used parameters), the trainer
all-reduces gradients itself after the step's subnets have accumulated theirs, and broadcasts
BatchNorm statistics from rank 0, as DDP's ``broadcast_buffers`` does. All ranks must train the
same subnets: build every rank's sampler from the same seed and feed it rank-averaged losses
(:func:`all_reduce_mean`), so its RNG and banks stay identical.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from collections.abc import Iterable
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

__all__ = [
    "all_reduce_gradients",
    "all_reduce_mean",
    "broadcast_buffers",
    "is_distributed",
    "launch",
    "rank_and_world",
]


def is_distributed() -> bool:
    """Whether a ``torch.distributed`` process group with more than one rank is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank_and_world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process (``(0, 1)`` without a process group)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_reduce_gradients(grads: Iterable[torch.Tensor]) -> None:
    """Average gradient tensors over ranks, in place (every rank trained the same subnets, so
    every rank has the same gradients in the same order and shapes)."""
    if not is_distributed():
        return
    world = dist.get_world_size()
    for g in grads:
        dist.all_reduce(g, op=dist.ReduceOp.SUM)
        g.div_(world)


def all_reduce_mean(value: float) -> float:
    """The mean of a scalar over ranks (the scalar itself without a process group)."""
    if not is_distributed():
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item()) / dist.get_world_size()


def broadcast_buffers(model: torch.nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm statistics) to every rank."""
    if not is_distributed():
        return
    for b in model.buffers():
        dist.broadcast(b, src=0)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world_size: int, port: int, backend: str,
            fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group(backend, rank=rank, world_size=world_size)
    try:
        fn(rank, world_size, *args)
    finally:
        dist.destroy_process_group()


def launch(fn: Callable[..., Any], world_size: int, *args: Any, backend: str = "gloo") -> None:
    """Run ``fn(rank, world_size, *args)`` in ``world_size`` local processes with a process group.

    For clusters use ``torchrun`` instead: it sets the environment that
    ``torch.distributed.init_process_group`` reads, and the trainer picks the group up.

    Args:
        fn: a picklable top-level function.
        world_size: number of processes.
        *args: extra arguments of ``fn``.
        backend: ``gloo`` (CPU) or ``nccl`` (CUDA).
    """
    mp.spawn(_worker, args=(world_size, _free_port(), backend, fn, args), nprocs=world_size,
             join=True)
