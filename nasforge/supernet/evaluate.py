"""Accuracy of subnets of a trained supernet: BN recalibration, then top-1 on held-out data.

Elastic resolution: a subnet is recalibrated and scored at its own size,
``data.eval_size(arch.resolution)`` (``round(resolution * resolution_scale)`` px, or the data's
``input_size`` when the source has no scale); :class:`SubnetAccuracy` records that size and the
arch's deployment resolution next to the number.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from nasforge.supernet.bn import recalibrate_bn
from nasforge.supernet.data.base import BaseImageSource
from nasforge.supernet.data.transforms import normalize
from nasforge.supernet.data.transforms import resize_batch

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.supernet.base import Supernet

__all__ = ["SubnetAccuracy", "evaluate_subnet", "evaluate_subnets", "recalibrate_at_resolution"]


@dataclass(frozen=True)
class SubnetAccuracy:
    """Top-1 accuracy of one subnet.

    Attributes:
        arch_id: the subnet.
        top1: accuracy in [0, 1] on the validation split.
        mflops: FLOPs (MACs) at the arch's deployment resolution, in millions.
        input_size: the image size (px) the accuracy was measured at.
        num_images: validation images.
        resolution: the arch's deployment resolution (``None`` for spaces without one).
    """

    arch_id: str
    top1: float
    mflops: float
    input_size: int
    num_images: int
    resolution: int | None = None


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
                    device: torch.device | str = "cpu") -> SubnetAccuracy:
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

    Raises:
        InvalidArchitectureError: the supernet cannot hold ``arch``.
    """
    dev = torch.device(device)
    supernet.to(dev)
    supernet.set_active(arch)
    resolution = getattr(arch, "resolution", None)
    size = recalibrate_at_resolution(supernet, data, resolution, batches=recal_batches,
                                     batch_size=batch_size, seed=seed, device=dev)
    supernet.eval()
    correct = n = 0
    for x, y in data.val_batches(batch_size):
        xs = resize_batch(normalize(x, dev, data.mean or (), data.std or ()), size)
        correct += int((supernet(xs).argmax(dim=1) == y.to(dev)).sum())
        n += len(y)
    return SubnetAccuracy(arch.arch_id, correct / max(n, 1), supernet.space.flops(arch) / 1e6,
                          size, n, resolution)


def evaluate_subnets(supernet: Supernet, archs: Sequence[Arch], data: BaseImageSource,
                     **kwargs: object) -> list[SubnetAccuracy]:
    """:func:`evaluate_subnet` for each arch (same options)."""
    return [evaluate_subnet(supernet, a, data, **kwargs) for a in archs]  # type: ignore[arg-type]
