"""Dynamic ops: one max-size parameter each, sliced to the active width in ``forward``.

Paper:
    Once-for-All: Train One Network and Specialize it for Efficient Deployment,
    https://arxiv.org/abs/1908.09791

Every op keeps exactly one max-size tensor per role and slices it by prefix
(``weight[:out, :in]``; :class:`DynamicLinear` keeps its weight input-major and takes
``weight_t[:in, :out]``), centre-crops depthwise kernels, and reads its input width from the
input's shape. ``forward`` never allocates, copies or reassigns a parameter: the slices are
views, taken through :func:`take`: by default the gradient flows into the active part of
``param.grad`` as autograd does; with a :class:`~nasforge.supernet.training.sliced_optim.SliceGrads`
store set (``slice_grads``) it stays slice-sized, for the slice-aware optimizers.

``export(...)`` returns the views a static twin (:mod:`nasforge.supernet.static`) needs,
keyed by the twin's ``state_dict`` names; the supernet clones them once when it extracts a
subnet.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from nasforge.supernet.training.sliced_optim import Region
from nasforge.supernet.training.sliced_optim import SliceGrads

__all__ = [
    "DynamicBatchNorm1d",
    "DynamicBatchNorm2d",
    "DynamicConv2d",
    "DynamicDepthwiseConv2d",
    "DynamicLayerNorm",
    "DynamicLinear",
    "DynamicSE",
    "SlicedOp",
    "take",
]

Tensors = dict[str, torch.Tensor]


def take(param: torch.Tensor, region: Region, store: SliceGrads | None) -> torch.Tensor:
    """The view ``param[region]``.

    Without a ``store`` (or without autograd) it is plain indexing and the gradient lands in
    ``param.grad`` at full size, as autograd does. With a store the gradient stays
    slice-sized and goes to ``store`` (see :mod:`nasforge.supernet.training.sliced_optim`).
    """
    if store is None or not (param.requires_grad and torch.is_grad_enabled()):
        return param[region]
    return store.take(param, region)


class SlicedOp:
    """Mixin of the dynamic ops: where their slices' gradients go (``None``: ``param.grad``).

    :meth:`nasforge.supernet.base.Supernet.enable_slice_grads` sets it on every op.
    """

    slice_grads: SliceGrads | None = None

    def take(self, param: torch.Tensor, *region: slice) -> torch.Tensor:
        """``param[region]`` through :func:`take` with this op's store."""
        return take(param, region, self.slice_grads)


def _init_dense(weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    """PyTorch's default ``nn.Linear``/``nn.Conv2d`` initialisation, on the max-size tensor."""
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in = weight[0].numel()
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        nn.init.uniform_(bias, -bound, bound)


class DynamicConv2d(SlicedOp, nn.Module):
    """Dense ``k x k`` conv (``padding = k // 2``) over a ``(max_out, max_in, k, k)`` weight.

    Args:
        max_in: largest input width.
        max_out: largest output width.
        kernel: kernel size (not elastic; use :class:`DynamicDepthwiseConv2d` for that).
        stride: spatial stride.
        bias: whether the conv has a bias.
    """

    def __init__(self, max_in: int, max_out: int, kernel: int = 1, stride: int = 1,
                 bias: bool = False) -> None:
        super().__init__()
        self.stride, self.padding = stride, kernel // 2
        self.weight = nn.Parameter(torch.empty(max_out, max_in, kernel, kernel))
        self.bias = nn.Parameter(torch.empty(max_out)) if bias else None
        _init_dense(self.weight, self.bias)

    def forward(self, x: torch.Tensor, out: int) -> torch.Tensor:
        """x: (B, C_in, H, W) -> (B, out, H', W'); ``C_in`` is read from ``x``."""
        b = None if self.bias is None else self.take(self.bias, slice(0, out))
        w = self.take(self.weight, slice(0, out), slice(0, x.shape[1]))
        return F.conv2d(x, w, b, self.stride, self.padding)

    def export(self, cin: int, cout: int) -> Tensors:
        """Views of the ``(cout, cin)`` sub-conv: ``weight`` (and ``bias``)."""
        out = {"weight": self.weight[:cout, :cin]}
        if self.bias is not None:
            out["bias"] = self.bias[:cout]
        return out


class DynamicDepthwiseConv2d(SlicedOp, nn.Module):
    """Depthwise conv with an elastic kernel: the active kernel is the centre crop of the max.

    Args:
        max_channels: largest width.
        max_kernel: largest kernel size (odd); smaller kernels are centred crops.
        stride: spatial stride.
    """

    def __init__(self, max_channels: int, max_kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.max_kernel, self.stride = max_kernel, stride
        self.weight = nn.Parameter(torch.empty(max_channels, 1, max_kernel, max_kernel))
        _init_dense(self.weight, None)

    def crop(self, channels: int, kernel: int) -> tuple[slice, ...]:
        """The region of the ``(channels, 1, kernel, kernel)`` centre crop."""
        s = (self.max_kernel - kernel) // 2
        return slice(0, channels), slice(0, 1), slice(s, s + kernel), slice(s, s + kernel)

    def forward(self, x: torch.Tensor, kernel: int) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, ceil(H / stride), ceil(W / stride))."""
        c = x.shape[1]
        w = self.take(self.weight, *self.crop(c, kernel))
        return F.conv2d(x, w, None, self.stride, kernel // 2, 1, c)

    def export(self, channels: int, kernel: int) -> Tensors:
        """View of the active ``weight``."""
        return {"weight": self.weight[self.crop(channels, kernel)]}


class DynamicLinear(SlicedOp, nn.Module):
    """Linear layer over one max-size weight; the input width comes from ``x``.

    The weight is stored input-major, ``weight_t`` of shape ``(max_in, max_out)``, and used as
    ``weight_t[:in, :out].t()``: for that layout the matmul backward writes the slice's
    gradient row-major, where an ``(out, in)`` slice would get a transposed gradient that the
    update must copy first. ``export`` gives the ``(out, in)`` view ``nn.Linear`` expects.

    Args:
        max_in: largest input width.
        max_out: largest output width.
        bias: whether the layer has a bias.
    """

    def __init__(self, max_in: int, max_out: int, bias: bool = True) -> None:
        super().__init__()
        weight = torch.empty(max_out, max_in)
        b = torch.empty(max_out) if bias else None
        _init_dense(weight, b)  # drawn in nn.Linear's (out, in) order, then stored input-major
        self.weight_t = nn.Parameter(weight.t().contiguous())
        self.bias = nn.Parameter(b) if b is not None else None

    @property
    def weight(self) -> torch.Tensor:
        """The ``(max_out, max_in)`` view of the weight."""
        return self.weight_t.t()

    def forward(self, x: torch.Tensor, out: int) -> torch.Tensor:
        """x: (..., C_in) -> (..., out)."""
        b = None if self.bias is None else self.take(self.bias, slice(0, out))
        w = self.take(self.weight_t, slice(0, x.shape[-1]), slice(0, out))
        return F.linear(x, w.t(), b)

    def export(self, cin: int, cout: int) -> Tensors:
        """Views of the ``(cout, cin)`` sub-layer: ``weight`` (and ``bias``)."""
        out = {"weight": self.weight_t[:cin, :cout].t()}
        if self.bias is not None:
            out["bias"] = self.bias[:cout]
        return out


class _DynamicBatchNorm(SlicedOp, _BatchNorm):
    """BatchNorm over the first ``C`` channels of max-size affine parameters and statistics.

    A subclass of torch's ``_BatchNorm``, so ``reset_running_stats``, ``momentum = None``
    (cumulative average) and every ``isinstance(m, _BatchNorm)`` check keep working. In train
    mode ``F.batch_norm`` updates the running-stat slices in place (they are views).
    """

    def __init__(self, max_features: int, eps: float = 1e-5, momentum: float | None = 0.1
                 ) -> None:
        super().__init__(max_features, eps, momentum, affine=True, track_running_stats=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, ...) -> same shape; ``C`` is read from ``x``."""
        self._check_input_dim(x)
        c = x.shape[1]
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else (
                self.momentum)
        use_batch = self.training or self.running_mean is None
        mean = var = None
        if self.running_mean is not None and self.running_var is not None:
            mean, var = self.running_mean[:c], self.running_var[:c]
        return F.batch_norm(x, mean, var, self.take(self.weight, slice(0, c)),
                            self.take(self.bias, slice(0, c)), use_batch, factor,
                            self.eps)

    def export(self, channels: int) -> Tensors:
        """Views of ``weight``, ``bias``, ``running_mean``, ``running_var`` (+ the counter)."""
        c = channels
        mean, var, count = self.running_mean, self.running_var, self.num_batches_tracked
        if mean is None or var is None or count is None:  # pragma: no cover - always tracked
            raise RuntimeError("dynamic BatchNorm always tracks running statistics")
        return {"weight": self.weight[:c], "bias": self.bias[:c], "running_mean": mean[:c],
                "running_var": var[:c], "num_batches_tracked": count}


class DynamicBatchNorm2d(_DynamicBatchNorm):
    """Dynamic BatchNorm over ``(B, C, H, W)`` inputs."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise ValueError(f"DynamicBatchNorm2d expects (B, C, H, W), got shape {tuple(x.shape)}")


class DynamicBatchNorm1d(_DynamicBatchNorm):
    """Dynamic BatchNorm over ``(B, C)`` or ``(B, C, L)`` inputs."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() not in (2, 3):
            raise ValueError(f"DynamicBatchNorm1d expects (B, C) or (B, C, L), got shape "
                             f"{tuple(x.shape)}")


class DynamicLayerNorm(SlicedOp, nn.Module):
    """LayerNorm over the last dimension, sliced to the input width.

    Args:
        max_dim: largest normalised width.
        eps: numerical epsilon (``nn.LayerNorm``'s default).
    """

    def __init__(self, max_dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(max_dim))
        self.bias = nn.Parameter(torch.zeros(max_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., C) -> (..., C)."""
        c = x.shape[-1]
        return F.layer_norm(x, (c,), self.take(self.weight, slice(0, c)),
                            self.take(self.bias, slice(0, c)), self.eps)

    def export(self, dim: int) -> Tensors:
        """Views of ``weight`` and ``bias``."""
        return {"weight": self.weight[:dim], "bias": self.bias[:dim]}


class DynamicSE(nn.Module):
    """Squeeze-excite: pool, 1x1 reduce (ReLU), 1x1 expand (Hardsigmoid), scale.

    Args:
        max_channels: largest input width.
        max_mid: largest hidden width.
    """

    def __init__(self, max_channels: int, max_mid: int) -> None:
        super().__init__()
        self.reduce = DynamicConv2d(max_channels, max_mid, 1, bias=True)
        self.expand = DynamicConv2d(max_mid, max_channels, 1, bias=True)

    def forward(self, x: torch.Tensor, mid: int) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H, W) with a hidden width of ``mid``."""
        s = F.adaptive_avg_pool2d(x, 1)
        s = F.hardsigmoid(self.expand(F.relu(self.reduce(s, mid)), x.shape[1]))
        return x * s

    def export(self, channels: int, mid: int) -> Tensors:
        """Views keyed ``reduce.*`` and ``expand.*`` (static ``SqueezeExcite`` names)."""
        out = {f"reduce.{k}": v for k, v in self.reduce.export(channels, mid).items()}
        out.update({f"expand.{k}": v for k, v in self.expand.export(mid, channels).items()})
        return out
