"""``grad_norm``: the summed per-layer gradient norms on one batch.

Paper:
    Zero-Cost Proxies for Lightweight NAS, https://arxiv.org/abs/2101.08134

``sum over conv/linear layers of ||dL/dw||_2``, ``L`` the cross-entropy of the batch, BN in
train mode.
"""

from __future__ import annotations

from torch import nn

from nasforge.proxies._snip import loss_grads
from nasforge.proxies.base import BaseProxy
from nasforge.proxies.base import Batch
from nasforge.proxies.base import register_proxy

__all__ = ["GradNormProxy"]


@register_proxy("grad_norm")
class GradNormProxy(BaseProxy):
    """Sum of the L2 norms of the layer gradients."""

    needs_data = True

    def score(self, model: nn.Module, batch: Batch | None) -> float:
        if batch is None:  # pragma: no cover - score_archs checks first
            raise ValueError("grad_norm needs a batch")
        return float(sum(float(g.norm()) for _, g in loss_grads(model, batch)))
