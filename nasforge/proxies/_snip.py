"""``snip``: connection sensitivity on one batch.

Paper:
    SNIP: Single-shot Network Pruning based on Connection Sensitivity,
    https://arxiv.org/abs/1810.02340 (as a NAS proxy: https://arxiv.org/abs/2101.08134)

``sum |w * dL/dw|`` over the convolution and linear weights, ``L`` the cross-entropy of the
batch, BN in train mode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.proxies.base import BaseProxy
from nasforge.proxies.base import Batch
from nasforge.proxies.base import prunable_weights
from nasforge.proxies.base import register_proxy

__all__ = ["SnipProxy", "loss_grads"]


def loss_grads(model: nn.Module, batch: Batch) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(w, dL/dw)`` for the conv/linear weights that the loss reaches (train-mode BN).

    Args:
        model: the network.
        batch: (x: (B, 3, H, W), y: (B,)).
    """
    model = model.train()
    weights = prunable_weights(model)
    loss = F.cross_entropy(model(batch[0]), batch[1])
    grads = torch.autograd.grad(loss, weights, allow_unused=True)
    return [(w, g) for w, g in zip(weights, grads, strict=True) if g is not None]


@register_proxy("snip")
class SnipProxy(BaseProxy):
    """SNIP's saliency summed over the network."""

    needs_data = True

    def score(self, model: nn.Module, batch: Batch | None) -> float:
        if batch is None:  # pragma: no cover - score_archs checks first
            raise ValueError("snip needs a batch")
        return float(sum(float((w.detach() * g).abs().sum()) for w, g in loss_grads(model, batch)))
