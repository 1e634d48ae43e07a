"""Dynamic layers: compositions of dynamic ops, one per block kind, each with a static twin.

Paper:
    Once-for-All: Train One Network and Specialize it for Efficient Deployment,
    https://arxiv.org/abs/1908.09791

Each layer mirrors the math of its twin in :mod:`nasforge.supernet.static._layers`
operation by operation (same functional calls in the same order), so the active supernet and
the extracted static model agree to float rounding. Module names equal the twin's, so
:meth:`~nasforge.supernet.base.DynamicLayer.export` keys are the twin's ``state_dict`` keys.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.search_spaces.block import Block
from nasforge.supernet.base import DynamicLayer
from nasforge.supernet.base import SupernetSpec
from nasforge.supernet.base import _require
from nasforge.supernet.ops import DynamicBatchNorm1d
from nasforge.supernet.ops import DynamicBatchNorm2d
from nasforge.supernet.ops import DynamicConv2d
from nasforge.supernet.ops import DynamicDepthwiseConv2d
from nasforge.supernet.ops import DynamicLayerNorm
from nasforge.supernet.ops import DynamicLinear
from nasforge.supernet.ops import DynamicSE
from nasforge.supernet.static._layers import make_act

__all__ = [
    "DynamicConvBNAct",
    "DynamicConvLayer",
    "DynamicDWConvBNAct",
    "DynamicElasticViTHead",
    "DynamicFFN",
    "DynamicMBConv",
    "prefixed",
]

Tensors = dict[str, torch.Tensor]


def prefixed(prefix: str, tensors: Tensors) -> Tensors:
    """``{f"{prefix}.{k}": v}``: nest an op's export under its module name."""
    return {f"{prefix}.{k}": v for k, v in tensors.items()}


class DynamicConvBNAct(nn.Module):
    """Dense conv (no bias) + dynamic BN + activation (static ``ConvBNAct``)."""

    def __init__(self, max_in: int, max_out: int, kernel: int, stride: int, act: str) -> None:
        super().__init__()
        self.conv = DynamicConv2d(max_in, max_out, kernel, stride)
        self.bn = DynamicBatchNorm2d(max_out)
        self.act = make_act(act)

    def forward(self, x: torch.Tensor, out: int) -> torch.Tensor:
        """x: (B, C_in, H, W) -> (B, out, H', W')."""
        return self.act(self.bn(self.conv(x, out)))

    def export(self, cin: int, cout: int) -> Tensors:
        """Views keyed ``conv.*`` and ``bn.*``."""
        return {**prefixed("conv", self.conv.export(cin, cout)),
                **prefixed("bn", self.bn.export(cout))}


class DynamicDWConvBNAct(nn.Module):
    """Elastic-kernel depthwise conv + dynamic BN + activation (static depthwise ``ConvBNAct``)."""

    def __init__(self, max_channels: int, max_kernel: int, stride: int, act: str) -> None:
        super().__init__()
        self.conv = DynamicDepthwiseConv2d(max_channels, max_kernel, stride)
        self.bn = DynamicBatchNorm2d(max_channels)
        self.act = make_act(act)

    def forward(self, x: torch.Tensor, kernel: int) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, ceil(H / stride), ceil(W / stride))."""
        return self.act(self.bn(self.conv(x, kernel)))

    def export(self, channels: int, kernel: int) -> Tensors:
        """Views keyed ``conv.*`` and ``bn.*``."""
        return {**prefixed("conv", self.conv.export(channels, kernel)),
                **prefixed("bn", self.bn.export(channels))}


class DynamicConvLayer(DynamicLayer):
    """A dense conv + BN + activation block (``firstconv``, OFA's first conv and final expand)
    with an elastic output width."""

    def __init__(self, max_block: Block, spec: SupernetSpec) -> None:
        super().__init__(max_block, spec)
        b = max_block
        self.conv = DynamicConv2d(b.cin, b.cout, b.kernel, b.stride)
        self.bn = DynamicBatchNorm2d(b.cout)
        self.act = make_act(b.act)

    def check(self, block: Block) -> None:
        super().check(block)
        _require(block.kernel == self.max_block.kernel, self, block, "the kernel is fixed")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, cin, H, W) -> (B, cout, ceil(H / stride), ceil(W / stride))."""
        return self.act(self.bn(self.conv(x, self.active.cout)))  # type: ignore[union-attr]

    def export(self, block: Block) -> Tensors:
        return {**prefixed("conv", self.conv.export(block.cin, block.cout)),
                **prefixed("bn", self.bn.export(block.cout))}


class DynamicMBConv(DynamicLayer):
    """``mbconv`` / ``transds``: elastic width, expand ratio, kernel and SE width.

    Supports both residual styles of the static ``MBConv``: ``avgpool_conv`` (ElasticViT:
    pooled input, 1x1 conv when the widths differ) and ``identity`` (MobileNet/OFA: added when
    shapes match), plus ``none``.
    """

    def __init__(self, max_block: Block, spec: SupernetSpec) -> None:
        super().__init__(max_block, spec)
        b = max_block
        self.pw = DynamicConvBNAct(b.cin, b.mid, 1, 1, b.act) if b.expand > 1 else None
        self.dw = DynamicDWConvBNAct(b.mid, b.kernel, b.stride, b.act)
        self.se = DynamicSE(b.mid, b.se_mid) if b.se_mid else None
        self.pwl = DynamicConvBNAct(b.mid, b.cout, 1, 1, "none")
        self.short_conv = (DynamicConv2d(b.cin, b.cout, 1)
                           if b.shortcut == "avgpool_conv" and b.cin != b.cout else None)

    def check(self, block: Block) -> None:
        super().check(block)
        _require(block.kernel % 2 == 1, self, block, "kernels must be odd to centre-crop")
        needs_conv = block.shortcut == "avgpool_conv" and block.cin != block.cout
        _require(not needs_conv or self.short_conv is not None, self, block,
                 "a shortcut conv is needed but the max block has none")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, cin, H, W) -> (B, cout, ceil(H / stride), ceil(W / stride))."""
        b: Block = self.active  # type: ignore[assignment]
        y = x if self.pw is None else self.pw(x, b.mid)
        y = self.dw(y, b.kernel)
        if self.se is not None:
            y = self.se(y, b.se_mid)
        y = self.pwl(y, b.cout)
        if b.shortcut == "avgpool_conv":
            r = x
            if b.stride > 1:
                r = F.avg_pool2d(r, b.stride, padding=r.shape[-1] % 2)
            if b.cin != b.cout:
                r = self.short_conv(r, b.cout)  # type: ignore[misc]
            return y + r
        if b.shortcut == "identity" and b.cin == b.cout and b.stride == 1:
            return y + x
        return y

    def export(self, block: Block) -> Tensors:
        out: Tensors = {}
        if self.pw is not None:
            out.update(prefixed("pw", self.pw.export(block.cin, block.mid)))
        out.update(prefixed("dw", self.dw.export(block.mid, block.kernel)))
        if self.se is not None:
            out.update(prefixed("se", self.se.export(block.mid, block.se_mid)))
        out.update(prefixed("pwl", self.pwl.export(block.mid, block.cout)))
        if block.shortcut == "avgpool_conv" and block.cin != block.cout:
            out.update(prefixed("short_conv", self.short_conv.export(  # type: ignore[union-attr]
                block.cin, block.cout)))
        return out


class DynamicFFN(DynamicLayer):
    """``ffn``: pre-norm ``C -> mid -> C`` with Hardswish and a residual (static ``FFN``)."""

    def __init__(self, max_block: Block, spec: SupernetSpec) -> None:
        super().__init__(max_block, spec)
        b = max_block
        self.norm = DynamicLayerNorm(b.cin)
        self.fc1 = DynamicLinear(b.cin, b.mid)
        self.act = nn.Hardswish()
        self.fc2 = DynamicLinear(b.mid, b.cin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)
        t = t + self.fc2(self.act(self.fc1(self.norm(t), self.active.mid)), c)  # type: ignore[union-attr]
        return t.transpose(1, 2).reshape(b, c, h, w)

    def export(self, block: Block) -> Tensors:
        return {**prefixed("norm", self.norm.export(block.cin)),
                **prefixed("fc1", self.fc1.export(block.cin, block.mid)),
                **prefixed("fc2", self.fc2.export(block.mid, block.cin))}


class DynamicElasticViTHead(DynamicLayer):
    """``head``: per-token Linear C->6C + BN + Hardswish, token mean, Linear 6C->out + act,
    dropout, classifier (static ``ElasticViTHead``)."""

    def __init__(self, max_block: Block, spec: SupernetSpec, dropout: float = 0.2) -> None:
        super().__init__(max_block, spec)
        b = max_block
        self.fc0 = DynamicLinear(b.cin, b.mid)
        self.bn = DynamicBatchNorm1d(b.mid)
        self.fc1 = DynamicLinear(b.mid, b.out_dim)
        self.act = nn.Hardswish()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(b.out_dim, b.classes)

    def check(self, block: Block) -> None:
        super().check(block)
        _require(block.out_dim == self.max_block.out_dim, self, block, "out_dim is fixed")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> logits (B, classes)."""
        b: Block = self.active  # type: ignore[assignment]
        t = self.fc0(x.flatten(2).transpose(1, 2), b.mid)  # (B, N, 6C)
        t = self.act(self.bn(t.transpose(1, 2))).mean(dim=2)  # (B, 6C)
        return self.classifier(self.dropout(self.act(self.fc1(t, b.out_dim))))

    def export(self, block: Block) -> Tensors:
        return {**prefixed("fc0", self.fc0.export(block.cin, block.mid)),
                **prefixed("bn", self.bn.export(block.mid)),
                **prefixed("fc1", self.fc1.export(block.mid, block.out_dim)),
                "classifier.weight": self.classifier.weight,
                "classifier.bias": self.classifier.bias}
