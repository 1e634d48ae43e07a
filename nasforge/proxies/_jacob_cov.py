"""``jacob_cov``: how uncorrelated the input-Jacobians of a batch's images are.

Paper:
    Neural Architecture Search without Training (v1), https://arxiv.org/abs/2006.04647
    (the ``jacob_cov`` measure of Zero-Cost Proxies for Lightweight NAS,
    https://arxiv.org/abs/2101.08134)

For a batch, ``J[b] = d(sum of logits of image b)/d x_b`` (flattened); with ``C`` the
correlation matrix of the rows of ``J`` and ``v`` its eigenvalues, the score is
``-sum(log(v + k) + 1 / (v + k))`` with ``k = 1e-5``: networks that tell the images apart
(uncorrelated Jacobians, ``C`` near the identity) score higher. BN runs in train mode.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nasforge.proxies.base import BaseProxy
from nasforge.proxies.base import Batch
from nasforge.proxies.base import register_proxy

__all__ = ["JacobCovProxy"]

_K = 1e-5


@register_proxy("jacob_cov")
class JacobCovProxy(BaseProxy):
    """NASWOT v1's Jacobian-correlation score; NaN when the output ignores the input."""

    needs_data = True

    def score(self, model: nn.Module, batch: Batch | None) -> float:
        if batch is None:  # pragma: no cover - score_archs checks first
            raise ValueError("jacob_cov needs a batch")
        model = model.train()
        x = batch[0].detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(model(x).sum(), x)
        jac = grad.reshape(grad.shape[0], -1).double()
        jac = jac - jac.mean(dim=1, keepdim=True)
        norm = jac.norm(dim=1, keepdim=True)
        if bool((norm == 0).any()):
            return math.nan
        z = jac / norm
        corr = z @ z.T
        v = torch.linalg.eigvalsh(corr).clamp_min(0.0)
        return float(-(torch.log(v + _K) + 1.0 / (v + _K)).sum())
