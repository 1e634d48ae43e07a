"""Accuracy of subnets of a trained supernet: BN recalibration, then top-1 on held-out data.

Every accuracy is measured at the data's input size (the supernet's training proxy size), which
:class:`SubnetAccuracy` records next to the number.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from nasforge.supernet.bn import recalibrate_bn
from nasforge.supernet.data import BatchStream
from nasforge.supernet.data import ImageData

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.supernet.base import Supernet

__all__ = ["SubnetAccuracy", "evaluate_subnet", "evaluate_subnets"]


@dataclass(frozen=True)
class SubnetAccuracy:
    """Top-1 accuracy of one subnet.

    Attributes:
        arch_id: the subnet.
        top1: accuracy in [0, 1] on the validation split.
        mflops: FLOPs (MACs) at the arch's deployment resolution, in millions.
        input_size: the image size the accuracy was measured at.
        num_images: validation images.
    """

    arch_id: str
    top1: float
    mflops: float
    input_size: int
    num_images: int


def _recal_batches(data: ImageData, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    stream = BatchStream(data.train_x, data.train_y, batch_size, seed + 9_973, augment=False)
    step = 0
    while True:
        yield stream.batch(step)[0]
        step += 1


@torch.no_grad()
def evaluate_subnet(supernet: Supernet, arch: Arch, data: ImageData, *, recal_batches: int = 8,
                    batch_size: int = 128, seed: int = 0,
                    device: torch.device | str = "cpu") -> SubnetAccuracy:
    """Activate ``arch``, recalibrate BN on ``recal_batches`` training batches, measure top-1.

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
    batches = (b.to(dev) for b in _recal_batches(data, batch_size, seed))
    recalibrate_bn(supernet, batches, recal_batches)
    supernet.eval()
    correct = 0
    for i in range(0, len(data.val_x), batch_size):
        x = data.val_x[i:i + batch_size].to(dev)
        y = data.val_y[i:i + batch_size].to(dev)
        correct += int((supernet(x).argmax(dim=1) == y).sum())
    n = len(data.val_x)
    return SubnetAccuracy(arch.arch_id, correct / max(n, 1),
                          supernet.space.flops(arch) / 1e6, data.input_size, n)


def evaluate_subnets(supernet: Supernet, archs: Sequence[Arch], data: ImageData,
                     **kwargs: object) -> list[SubnetAccuracy]:
    """:func:`evaluate_subnet` for each arch (same options)."""
    return [evaluate_subnet(supernet, a, data, **kwargs) for a in archs]  # type: ignore[arg-type]
