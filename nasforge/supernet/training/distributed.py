"""Data-parallel supernet training over ``torch.distributed`` (gloo on CPU, nccl on CUDA).

The supernet changes shape every step, so instead of wrapping it in
``DistributedDataParallel`` (which expects a fixed set of used parameters), the trainer
all-reduces gradients itself after the step's subnets have accumulated theirs. All ranks must
train the same subnets: every rank's sampler is built from the same seed and fed rank-averaged
losses (:func:`all_reduce_means`), so its RNG and banks stay identical.

Collectives:

* Every reduced tensor lives on the compute device (NCCL reduces CUDA tensors only; gloo takes
  CPU tensors), in the tensor's own dtype: scalars go as one float32 vector per step.
* Gradients (slice gradients of the store and whole ``.grad`` tensors alike) are flattened into
  buckets of at most ``bucket_mb`` MB per dtype (DDP's default is 25 MB): one all-reduce per
  bucket, not per tensor (:func:`all_reduce_gradients`).
* BatchNorm running statistics stay per rank, as AttentiveNAS / BigNAS / OFA train (DDP's
  per-step buffer broadcast would move every buffer every step for nothing): in train mode BN
  normalises with batch statistics, so the running ones never touch the gradients, and any
  subnet is BN-recalibrated before it is evaluated (:mod:`nasforge.supernet.bn`). Rank 0's
  statistics go into checkpoints. (Batch statistics are per rank too, as in DDP without
  SyncBN: a 2-rank run equals a 1-process run that splits each global batch the same way,
  ``TrainConfig.micro_batches``.)

Process groups: :func:`init_from_env` reads the ``torchrun`` environment (``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT``), pins the CUDA device of the
local rank and initialises the group; :func:`launch` spawns N local ranks without torchrun.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from nasforge.errors import InvalidInputError

__all__ = [
    "DistContext",
    "all_reduce_gradients",
    "all_reduce_mean",
    "all_reduce_means",
    "available_slots",
    "broadcast_buffers",
    "broadcast_state",
    "gradient_buckets",
    "init_from_env",
    "is_distributed",
    "join_torchrun_group",
    "launch",
    "rank_and_world",
    "shutdown",
]

logger = logging.getLogger(__name__)

#: DDP's default bucket size.
BUCKET_MB = 25.0


def is_distributed() -> bool:
    """Whether a ``torch.distributed`` process group with more than one rank is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _grouped() -> bool:
    """Whether a process group is initialised (collectives then run, even on one rank, so a
    world-size-1 group exercises the backend)."""
    return dist.is_available() and dist.is_initialized()


def rank_and_world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process (``(0, 1)`` without a process group)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gradient_buckets(grads: Sequence[torch.Tensor], bucket_mb: float = BUCKET_MB
                     ) -> list[list[torch.Tensor]]:
    """Group tensors into buckets of one dtype and device, each at most ``bucket_mb`` MB (a
    tensor larger than that gets a bucket of its own); ``bucket_mb <= 0`` gives one bucket per
    tensor. Order within a bucket follows ``grads``."""
    limit = bucket_mb * 2**20
    out: list[list[torch.Tensor]] = []
    open_: dict[tuple[torch.dtype, torch.device], tuple[list[torch.Tensor], list[int]]] = {}
    for g in grads:
        if bucket_mb <= 0:
            out.append([g])
            continue
        key = (g.dtype, g.device)
        size = g.numel() * g.element_size()
        cur = open_.get(key)
        if cur is not None and cur[1][0] + size > limit:
            out.append(cur[0])
            cur = None
        if cur is None:
            cur = open_[key] = ([], [0])
        cur[0].append(g)
        cur[1][0] += size
    out.extend(b for b, _ in open_.values() if b)
    return out


def all_reduce_gradients(grads: Iterable[torch.Tensor], bucket_mb: float = BUCKET_MB) -> int:
    """Average gradient tensors over ranks, in place, one all-reduce per bucket.

    Every rank trained the same subnets, so every rank has the same gradients in the same order
    and shapes. Each bucket is flattened into one contiguous tensor on the gradients' device,
    summed over ranks, divided by the world size and copied back.

    Args:
        grads: the gradients (any shapes; slice gradients included).
        bucket_mb: bucket size in MB (``<= 0``: one all-reduce per tensor).

    Returns:
        The number of all-reduce calls made (0 without a process group).
    """
    if not _grouped():
        return 0
    world = dist.get_world_size()
    calls = 0
    for bucket in gradient_buckets(list(grads), bucket_mb):
        if len(bucket) == 1:
            flat = bucket[0] if bucket[0].is_contiguous() else bucket[0].contiguous()
        else:
            flat = torch.cat([g.reshape(-1) for g in bucket])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat.div_(world)
        calls += 1
        if len(bucket) == 1:
            if flat is not bucket[0]:
                bucket[0].copy_(flat)
            continue
        offset = 0
        for g in bucket:
            n = g.numel()
            g.copy_(flat[offset:offset + n].view_as(g))
            offset += n
    return calls


def all_reduce_means(values: torch.Tensor) -> torch.Tensor:
    """Element-wise mean over ranks of a 1-d tensor of scalars, on its own device (one
    all-reduce; the tensor itself without a process group). Pass a float32 tensor on the
    compute device: NCCL cannot reduce CPU or float64 tensors."""
    if not _grouped():
        return values
    out = values.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / dist.get_world_size()


def all_reduce_mean(value: float, device: torch.device | str = "cpu") -> float:
    """The mean of a scalar over ranks (the scalar itself without a process group), reduced as
    a float32 tensor on ``device``."""
    if not _grouped():
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float32, device=device)
    return float(all_reduce_means(t).item())


def broadcast_state(model: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank (once, when training starts: every
    rank then begins from exactly the same weights)."""
    if not is_distributed():
        return
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            dist.broadcast(t.data, src=0)


def broadcast_buffers(model: torch.nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm statistics) to every rank.

    Training does not call it (see the module docstring); it is here for a caller that wants
    rank-identical statistics at one point, e.g. before comparing ranks."""
    if not is_distributed():
        return
    for b in model.buffers():
        dist.broadcast(b, src=0)


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a run.

    Attributes:
        rank: global rank.
        local_rank: rank on this machine (picks the CUDA device).
        world_size: number of ranks.
        device: this rank's compute device.
        backend: ``nccl``, ``gloo`` or ``""`` (no process group).
    """

    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    backend: str


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidInputError(f"environment variable {name}={raw!r} must be an integer "
                                "(set by torchrun)") from None


def init_from_env(device: torch.device, timeout_s: float = 600.0) -> DistContext:
    """Join the process group described by the ``torchrun`` environment, if there is one.

    Without ``WORLD_SIZE`` (or with ``WORLD_SIZE=1``) nothing happens and ``device`` is kept.
    Otherwise a CUDA ``device`` becomes ``cuda:LOCAL_RANK`` and the group uses ``nccl``; a CPU
    one uses ``gloo``.

    Args:
        device: the compute device chosen by ``--accelerator``.
        timeout_s: collective timeout (a rank that waits longer for a dead peer fails).

    Returns:
        This process's :class:`DistContext`.

    Raises:
        InvalidInputError: more local ranks than CUDA devices.
    """
    world = _env_int("WORLD_SIZE", 1)
    rank, local = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if dist.is_available() and dist.is_initialized():
        return DistContext(dist.get_rank(), local, dist.get_world_size(), device,
                           str(dist.get_backend()))
    if world <= 1:
        return DistContext(0, 0, 1, device, "")
    if device.type == "cuda":
        n = torch.cuda.device_count()
        if local >= n:
            raise InvalidInputError(f"LOCAL_RANK={local} but this machine has {n} CUDA "
                                    f"device(s); start at most {n} processes per node")
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
        backend = "nccl"
    else:
        backend = "gloo"
    kwargs: dict[str, Any] = {"timeout": datetime.timedelta(seconds=timeout_s)}
    if backend == "nccl":
        kwargs["device_id"] = device
    dist.init_process_group(backend, rank=rank, world_size=world, **kwargs)
    logger.info("rank %d of %d (local %d) on %s, backend %s", rank, world, local, device,
                backend)
    return DistContext(rank, local, world, device, backend)


def join_torchrun_group(device: torch.device | str) -> bool:
    """Join the group ``torchrun`` describes (``WORLD_SIZE`` > 1) when none is up: ``nccl`` for
    a CUDA ``device``, else ``gloo``.

    Returns:
        True when this call created the group (the caller destroys it, :func:`shutdown`).
    """
    if _env_int("WORLD_SIZE", 1) <= 1 or not dist.is_available() or dist.is_initialized():
        return False
    dist.init_process_group("nccl" if getattr(device, "type", "cpu") == "cuda" else "gloo")
    return True


def shutdown() -> None:
    """Destroy the process group if one is running."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def available_slots(device_type: str) -> int:
    """How many local ranks this machine can run: CUDA devices, or usable CPU cores."""
    if device_type == "cuda":
        return torch.cuda.device_count()
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world_size: int, port: int, backend: str,
            fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                       "RANK": str(rank), "LOCAL_RANK": str(rank),
                       "WORLD_SIZE": str(world_size), "LOCAL_WORLD_SIZE": str(world_size)})
    if backend:
        dist.init_process_group(backend, rank=rank, world_size=world_size)
    try:
        fn(rank, world_size, *args)
    finally:
        shutdown()


def launch(fn: Callable[..., Any], world_size: int, *args: Any, backend: str = "gloo") -> None:
    """Run ``fn(rank, world_size, *args)`` in ``world_size`` local processes.

    Each process gets the ``torchrun`` environment (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
    ``MASTER_ADDR``, ``MASTER_PORT``); with a ``backend`` the group is initialised before
    ``fn`` runs, with ``backend=""`` ``fn`` does it (e.g. through :func:`init_from_env`).
    When one process dies (``kill -9``) or raises, the others are terminated and
    ``torch.multiprocessing.ProcessExitedException`` / ``ProcessRaisedException`` is raised.

    Args:
        fn: a picklable top-level function.
        world_size: number of processes.
        *args: extra arguments of ``fn``.
        backend: ``gloo`` (CPU), ``nccl`` (CUDA) or ``""``.
    """
    spawn_log = logging.getLogger("torch.multiprocessing.spawn")
    level = spawn_log.level
    spawn_log.setLevel(logging.ERROR)  # its "Terminating process ..." warning: we say it once
    try:
        mp.spawn(_worker, args=(world_size, _free_port(), backend, fn, args),
                 nprocs=world_size, join=True)
    finally:
        spawn_log.setLevel(level)
