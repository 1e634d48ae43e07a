"""Accuracy of subnets of a trained supernet: BN recalibration, then top-1 on held-out data.

Elastic resolution: a subnet is recalibrated and scored at its own size,
``data.eval_size(arch.resolution)`` (``round(resolution * resolution_scale)`` px, or the data's
``input_size`` when the source has no scale); :class:`SubnetAccuracy` records that size, the
arch's deployment resolution and how many images recalibrated and scored it.

Many subnets are scored against one :class:`EvalSet`: the recalibration batches and the
validation images are read and normalised once, and resized once per eval size, so a subnet
costs its forwards only (a search scores hundreds). :func:`evaluate_subnets` shards a list of
subnets over the ranks of a ``torch.distributed`` process group when one is up and gathers the
results in the original order (the Ray counterpart is
:class:`nasforge.evaluation.pool.SupernetActorPool`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

import torch

from nasforge.data import BaseImageSource
from nasforge.data import normalize
from nasforge.data import resize_batch
from nasforge.errors import InvalidInputError
from nasforge.supernet.bn import recalibrate_bn

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.supernet.base import Supernet

__all__ = [
    "EvalSet",
    "SubnetAccuracy",
    "evaluate_subnet",
    "evaluate_subnets",
    "recalibrate_at_resolution",
    "shard_positions",
    "validate_min_max",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubnetAccuracy:
    """Top-1 accuracy of one subnet.

    Attributes:
        arch_id: the subnet.
        top1: accuracy in [0, 1] on the validation images.
        mflops: FLOPs (MACs) at the arch's deployment resolution, in millions.
        input_size: the image size (px) the accuracy was measured at.
        num_images: validation images scored.
        resolution: the arch's deployment resolution (``None`` for spaces without one).
        recal_images: training images the BN statistics were recalibrated on (0: unknown).
    """

    arch_id: str
    top1: float
    mflops: float
    input_size: int
    num_images: int
    resolution: int | None = None
    recal_images: int = 0


def _positive(label: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"subnet evaluation: `{label} >= 1` must hold, but got "
                                f"{label}={value!r}")


class EvalSet:
    """The fixed images every subnet of a supernet is recalibrated and scored on.

    The first ``recal_batches`` batches of ``data.recal_batches(batch_size, seed)`` (un-augmented
    training images) recalibrate BatchNorm: read once and held as read (uint8 for a streaming
    source), normalised on ``device`` and resized once per eval size. The validation split (or
    ``val_images`` of it, evenly spaced over its order) scores: held normalised on ``device``
    and resized once per eval size when it fits in ``cache_mb``, else (ImageNet) streamed for
    every subnet. Resized tensors are kept while they fit in ``cache_mb`` (least recently used
    size dropped first). The
    numbers equal those of reading the source afresh for each subnet: same batches, same order.

    Args:
        data: the data source.
        recal_batches: K, the recalibration batches (of ``batch_size`` images).
        batch_size: batch size of recalibration and evaluation.
        seed: which training batches recalibrate.
        device: compute device.
        val_images: score only this many validation images (``None``: all).
        cache_mb: memory budget of the held tensors, in MiB.

    Raises:
        InvalidInputError: a size below 1.

    Example:
        >>> from nasforge.data import load_data
        >>> es = EvalSet(load_data("synthetic", 16), recal_batches=1, batch_size=8)
        >>> [tuple(x.shape) for x in es.recal(12)]
        [(8, 3, 12, 12)]
    """

    def __init__(self, data: BaseImageSource, *, recal_batches: int = 8, batch_size: int = 128,
                 seed: int = 0, device: torch.device | str = "cpu", val_images: int | None = None,
                 cache_mb: float = 512.0) -> None:
        _positive("recal_batches", recal_batches)
        _positive("batch_size", batch_size)
        if val_images is not None:
            _positive("val_images", val_images)
        self.data = data
        self.recal_batches = recal_batches
        self.batch_size = batch_size
        self.seed = seed
        self.device = torch.device(device)
        self.val_images = val_images
        self.cache_bytes = int(cache_mb * 2**20)
        self._recal: list[torch.Tensor] | None = None
        self._val: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        self._sized: OrderedDict[tuple[str, int], list[Any]] = OrderedDict()
        self._held_bytes = 0

    # ---- what is scored --------------------------------------------------------------------
    @property
    def num_val(self) -> int:
        """Validation images each subnet is scored on."""
        n = self.data.num_val
        return n if self.val_images is None else min(n, self.val_images)

    @property
    def num_recal(self) -> int:
        """Training images each subnet's BN statistics are recalibrated on (at most)."""
        return self.recal_batches * self.batch_size

    def provenance(self) -> dict[str, Any]:
        """What a score means: data, images and sizes (for manifests)."""
        return {"data": self.data.name, "input_size": self.data.input_size,
                "resolution_scale": self.data.resolution_scale,
                "val_images": self.num_val, "val_split_images": self.data.num_val,
                "bn_recalibration_batches": self.recal_batches,
                "bn_recalibration_images": self.num_recal, "batch_size": self.batch_size,
                "recalibration_seed": self.seed}

    # ---- tensors ---------------------------------------------------------------------------
    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        return normalize(x, self.device, self.data.mean or (), self.data.std or ())

    def _keep(self, key: tuple[str, int], value: list[Any]) -> list[Any]:
        size = sum(int(t.numel() * t.element_size()) for item in value
                   for t in (item if isinstance(item, tuple) else (item,)))
        if size > self.cache_bytes:
            return value
        while self._sized and self._held_bytes + size > self.cache_bytes:
            _, old = self._sized.popitem(last=False)
            self._held_bytes -= sum(int(t.numel() * t.element_size()) for item in old
                                    for t in (item if isinstance(item, tuple) else (item,)))
        self._sized[key] = value
        self._held_bytes += size
        return value

    def _recal_source(self) -> list[torch.Tensor]:
        if self._recal is None:
            # as read (uint8 for a streaming source: 4x smaller)
            out = self.data.first_recal_batches(self.batch_size, self.seed, self.recal_batches)
            if not out:
                raise InvalidInputError(f"{self.data.name} gave no training batch to recalibrate "
                                        "BatchNorm on; give a dataset with training images")
            self._recal = out
        return self._recal

    def recal(self, size: int) -> list[torch.Tensor]:
        """The recalibration batches at ``size`` px, each (B, 3, size, size), on the device."""
        key = ("recal", size)
        if key in self._sized:
            self._sized.move_to_end(key)
            return self._sized[key]
        return self._keep(key, [resize_batch(self._norm(x), size) for x in self._recal_source()])

    def _subset(self, n: int) -> torch.Tensor | None:
        if self.val_images is None or self.val_images >= n:
            return None
        return torch.linspace(0, n - 1, self.val_images).round().long().unique()

    def _val_stream(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        keep = self._subset(self.data.num_val)
        if keep is None:
            for x, y in self.data.val_batches(self.batch_size):
                yield self._norm(x), y.to(self.device)
            return
        # gather the evenly spaced subset, then re-batch it at batch_size
        xs: list[torch.Tensor] = []
        ys: list[torch.Tensor] = []
        start = 0
        for x, y in self.data.val_batches(self.batch_size):
            pick = keep[(keep >= start) & (keep < start + len(y))] - start
            start += len(y)
            if len(pick):
                xs.append(self._norm(x[pick]))
                ys.append(y[pick].to(self.device))
        if xs:
            x_all, y_all = torch.cat(xs), torch.cat(ys)
            for i in range(0, len(y_all), self.batch_size):
                yield x_all[i:i + self.batch_size], y_all[i:i + self.batch_size]

    def _val_held(self) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        if self._val is None:
            c, s = 3, self.data.input_size
            if self.num_val * c * s * s * 4 * 2 > self.cache_bytes:
                return None  # too large to hold: streamed for every subnet
            self._val = list(self._val_stream())
        return self._val

    def val(self, size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The validation images at ``size`` px: ``(x, y)`` batches, x (B, 3, size, size) and
        y (B,) on the device."""
        held = self._val_held()
        if held is None:
            for x, y in self._val_stream():
                yield resize_batch(x, size), y
            return
        key = ("val", size)
        if key in self._sized:
            self._sized.move_to_end(key)
            yield from self._sized[key]
            return
        yield from self._keep(key, [(resize_batch(x, size), y) for x, y in held])


def _device_batches(data: BaseImageSource, batches: Iterator[torch.Tensor], size: int,
                    dev: torch.device) -> Iterator[torch.Tensor]:
    for x in batches:
        yield resize_batch(normalize(x, dev, data.mean or (), data.std or ()), size)


@torch.no_grad()
def recalibrate_at_resolution(model: torch.nn.Module, data: BaseImageSource,
                              resolution: int | None, *, batches: int, batch_size: int,
                              seed: int, device: torch.device | str = "cpu") -> int:
    """Recalibrate ``model``'s BatchNorm statistics on ``batches`` training batches at the size
    a subnet of deployment ``resolution`` is trained and scored at (``data.eval_size``).

    Used for an active supernet and for an extracted subnet alike.

    Returns:
        The input side in pixels the statistics were gathered at.
    """
    dev = torch.device(device)
    size = data.eval_size(resolution)
    source = data.recal_batches(batch_size, seed)
    try:
        recalibrate_bn(model, _device_batches(data, source, size, dev), batches)
    finally:
        close = getattr(source, "close", None)
        if callable(close):
            close()
    return size


@torch.no_grad()
def evaluate_subnet(supernet: Supernet, arch: Arch, data: BaseImageSource, *,
                    recal_batches: int = 8, batch_size: int = 128, seed: int = 0,
                    device: torch.device | str = "cpu",
                    eval_set: EvalSet | None = None) -> SubnetAccuracy:
    """Activate ``arch``, recalibrate BN on ``recal_batches`` training batches, measure top-1,
    all at the subnet's own size ``data.eval_size(arch.resolution)``.

    The supernet's shared BN statistics are overwritten (recalibration is per subnet).

    Args:
        supernet: a trained supernet.
        arch: the subnet (validated by ``set_active``).
        data: supplies training batches (recalibration) and the validation split.
        recal_batches: K, the recalibration batches.
        batch_size: batch size of recalibration and evaluation.
        seed: which training batches recalibrate.
        device: compute device.
        eval_set: the held images to use (many subnets share one; it then decides
            ``recal_batches``, ``batch_size``, ``seed`` and ``device``); ``None`` builds one.

    Raises:
        InvalidArchitectureError: the supernet cannot hold ``arch``.
    """
    es = eval_set if eval_set is not None else EvalSet(
        data, recal_batches=recal_batches, batch_size=batch_size, seed=seed, device=device)
    supernet.to(es.device)
    supernet.set_active(arch)
    resolution = getattr(arch, "resolution", None)
    size = data.eval_size(resolution)
    recal = es.recal(size)
    recalibrate_bn(supernet, recal, len(recal))
    supernet.eval()
    correct = n = 0
    for xs, y in es.val(size):
        correct += int((supernet(xs).argmax(dim=1) == y).sum())
        n += len(y)
    return SubnetAccuracy(arch.arch_id, correct / max(n, 1), supernet.space.flops(arch) / 1e6,
                          size, n, resolution, sum(len(x) for x in recal))


def validate_min_max(supernet: Supernet, data: BaseImageSource, *, batch_size: int, seed: int,
                     device: torch.device) -> dict[str, float]:
    """Top-1 of the max and the min subnet (2 recalibration batches each), by role, leaving the
    supernet's BN statistics, the torch CPU RNG and training mode as they were (the training
    loop's validation, :class:`~nasforge.supernet.training.callbacks.Validation`).

    Args:
        supernet: the supernet being trained.
        data: the training run's data source.
        batch_size: batch size of recalibration and evaluation.
        seed: which training batches recalibrate.
        device: compute device.
    """
    space = supernet.space
    saved = {k: v.clone() for k, v in supernet.state_dict().items()
             if "running" in k or "num_batches" in k}
    rng_state = torch.get_rng_state()
    out = {}
    try:
        for role, arch in (("max", space.max_arch()), ("min", space.min_arch())):
            acc = evaluate_subnet(supernet, arch, data, recal_batches=2, batch_size=batch_size,
                                  seed=seed, device=device)
            out[role] = acc.top1
    finally:
        supernet.load_state_dict(saved, strict=False)
        torch.set_rng_state(rng_state)
        supernet.train()
    return out


def shard_positions(sizes: Sequence[int], rank: int, world_size: int) -> list[int]:
    """The positions rank ``rank`` of ``world_size`` evaluates.

    Positions are ordered by eval size (then position) and dealt round-robin, so every rank gets
    a similar mix of cheap and costly subnets and scores those of one size one after another.

    Example:
        >>> shard_positions([32, 16, 32, 16, 24], 0, 2), shard_positions([32, 16, 32, 16, 24], 1, 2)
        ([1, 4, 2], [3, 0])
    """
    order = sorted(range(len(sizes)), key=lambda i: (sizes[i], i))
    return order[rank::world_size]


def evaluate_subnets(supernet: Supernet, archs: Sequence[Arch], data: BaseImageSource, *,
                     recal_batches: int = 8, batch_size: int = 128, seed: int = 0,
                     device: torch.device | str = "cpu", eval_set: EvalSet | None = None,
                     distributed: bool = True) -> list[SubnetAccuracy]:
    """:func:`evaluate_subnet` of each arch, sharing one :class:`EvalSet`; in the order given.

    With a ``torch.distributed`` process group of more than one rank up (and ``distributed``
    true), the archs are sharded over the ranks (:func:`shard_positions`), each rank recalibrates
    and scores its share, and the results are all-gathered: every rank returns the full list.
    Every rank must call it with the same archs (it is a collective), and holds the same
    supernet weights.

    Args:
        supernet: a trained supernet.
        archs: the subnets.
        data: the data source.
        recal_batches: K (as :func:`evaluate_subnet`).
        batch_size: batch size.
        seed: which training batches recalibrate.
        device: compute device.
        eval_set: the held images (``None``: one is built for this call).
        distributed: shard over the process group when one is up.

    Returns:
        One :class:`SubnetAccuracy` per arch, in the order of ``archs``.
    """
    es = eval_set if eval_set is not None else EvalSet(
        data, recal_batches=recal_batches, batch_size=batch_size, seed=seed, device=device)
    sizes = [data.eval_size(getattr(a, "resolution", None)) for a in archs]
    rank, world = 0, 1
    if distributed:
        from nasforge.supernet.training.distributed import is_distributed
        from nasforge.supernet.training.distributed import rank_and_world

        if is_distributed():
            rank, world = rank_and_world()
    mine = shard_positions(sizes, rank, world)
    local = [(i, evaluate_subnet(supernet, archs[i], data, eval_set=es)) for i in mine]
    if world == 1:
        return [acc for _, acc in sorted(local, key=lambda p: p[0])]
    import torch.distributed as dist

    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, local)
    out: list[SubnetAccuracy | None] = [None] * len(archs)
    for part in gathered:
        for i, acc in part:
            out[i] = acc
    logger.debug("rank %d of %d scored %d of %d subnets", rank, world, len(local), len(archs))
    return [acc for acc in out if acc is not None]
