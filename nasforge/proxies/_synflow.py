"""``synflow``: data-free synaptic flow.

Paper:
    Pruning neural networks without any data by iteratively conserving synaptic flow,
    https://arxiv.org/abs/2006.05467 (as a NAS proxy: https://arxiv.org/abs/2101.08134)

Every parameter and BN statistic is replaced by its absolute value (the network becomes a
positive linear-ish function), BN runs in eval mode (its running statistics, not batch ones),
the network runs on an all-ones input at the network's resolution, in float32 first and again in
float64 when float32 overflows (the product over depth can exceed float32 on deep networks),
and the score is
``sum |theta * d(sum of logits)/d theta|`` over the convolution and linear weights.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nasforge.proxies.base import BaseProxy
from nasforge.proxies.base import Batch
from nasforge.proxies.base import prunable_weights
from nasforge.proxies.base import register_proxy

__all__ = ["SynflowProxy"]


@register_proxy("synflow")
class SynflowProxy(BaseProxy):
    """Data-free synflow (absolute parameters, BN in eval mode, float64 where float32 overflows).

    Args:
        resolution: input side when the batch gives none (the default 32 = NB201's); with a
            batch, its side is used.
    """

    needs_data = False

    def __init__(self, resolution: int = 32) -> None:
        self.resolution = resolution

    def score(self, model: nn.Module, batch: Batch | None) -> float:
        """sum over conv/linear weights of |w * dR/dw|, R = the sum of the logits on ones."""
        side = self.resolution if batch is None else int(batch[0].shape[-1])
        model = model.eval()
        with torch.no_grad():
            for t in model.state_dict().values():
                if t.is_floating_point():
                    t.abs_()
        value = _synflow(model, side)
        if not math.isfinite(value) and next(model.parameters()).dtype != torch.float64:
            value = _synflow(model.double(), side)
        return value


def _synflow(model: nn.Module, side: int) -> float:
    weights = prunable_weights(model)
    x = torch.ones(1, 3, side, side, dtype=weights[0].dtype)
    out = model(x).sum()
    grads = torch.autograd.grad(out, weights, allow_unused=True)
    total = torch.zeros((), dtype=torch.float64)
    with torch.no_grad():
        for w, g in zip(weights, grads, strict=True):
            if g is not None:
                total += (w * g).abs().sum(dtype=torch.float64)
    return float(total)
