"""BatchNorm recalibration: re-estimate running statistics of a (sub)network before evaluation.

Paper:
    Once-for-All: Train One Network and Specialize it for Efficient Deployment,
    https://arxiv.org/abs/1908.09791 (BN statistics of a subnet are recomputed on a few
    training batches; the shared statistics fit no particular subnet)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from nasforge.errors import InvalidInputError

__all__ = ["recalibrate_bn"]


def _images(batch: Any) -> torch.Tensor:
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, list | tuple) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0]  # (images, labels) from a loader
    raise InvalidInputError(
        f"recalibrate_bn needs batches of images (B, 3, H, W) or (images, labels) pairs, got "
        f"{type(batch).__name__}"
    )


def recalibrate_bn(model: nn.Module, batches: Iterable[torch.Tensor], num_batches: int) -> None:
    """Reset every BatchNorm's statistics and re-estimate them over ``num_batches`` batches.

    Statistics are the cumulative average (``momentum=None``) of the batch statistics. Only
    the BatchNorm layers run in train mode (dropout and the like stay off), gradients are not
    tracked, and each module's mode and each BatchNorm's momentum are restored afterwards. For
    a :class:`~nasforge.supernet.base.Supernet` this recalibrates the active subnet's slices.

    Args:
        model: a static model or a supernet with an active subnet.
        batches: an iterable of (B, 3, H, W) image tensors, or of (images, labels) pairs.
        num_batches: how many batches to use (K); fewer are used when ``batches`` runs out.

    Raises:
        ValueError: ``num_batches < 1``.
        InvalidInputError: ``batches`` yields no batch or something other than images.

    Example:
        >>> import torch
        >>> from nasforge.search_spaces import get_space
        >>> space = get_space("elasticvit")
        >>> from nasforge.supernet.static import build_static
        >>> model = build_static(space, space.min_arch(), num_classes=10)
        >>> recalibrate_bn(model, [torch.randn(4, 3, 32, 32)] * 2, num_batches=2)
        >>> model.training
        True
    """
    if num_batches < 1:
        raise ValueError(f"`num_batches >= 1` must hold, but got {num_batches=}")
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    modes = [(m, m.training) for m in model.modules()]
    momenta = [(bn, bn.momentum) for bn in bns]
    ref = next(model.parameters(), None)
    try:
        model.eval()
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None
            bn.train()
        seen = 0
        with torch.no_grad():
            for batch in batches:
                if seen >= num_batches:
                    break
                x = _images(batch)
                if ref is not None:
                    x = x.to(device=ref.device, dtype=ref.dtype)
                model(x)
                seen += 1
        if seen == 0:
            raise InvalidInputError("recalibrate_bn got no batch; pass at least one image batch")
    finally:
        for bn, momentum in momenta:
            bn.momentum = momentum
        for m, training in modes:
            m.training = training
