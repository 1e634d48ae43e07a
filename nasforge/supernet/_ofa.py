"""Supernets of the Once-for-All MobileNetV3 spaces (``ofa_mbv3``, ``ofa_mbv3_w12``).

Paper:
    Once-for-All: Train One Network and Specialize it for Efficient Deployment,
    https://arxiv.org/abs/1908.09791

The ``ofa_*`` block kinds map onto the generic dynamic layers: the first conv and the final
expand are :class:`~nasforge.supernet.layers.DynamicConvLayer`, every MBConv is a
:class:`~nasforge.supernet.layers.DynamicMBConv` with the ``identity`` residual (elastic
kernel by centre crop, elastic expand by prefix of the inverted bottleneck and the SE), and
the head's pool, feature mix and classifier have fixed shapes. Kernels are plain centre crops
(OFA additionally trains 7to5/5to3 kernel-transform matrices; the static twin has no place for
them, so they are left out).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.search_spaces.block import Block
from nasforge.supernet.base import DynamicLayer
from nasforge.supernet.base import SupernetSpec
from nasforge.supernet.base import _require
from nasforge.supernet.base import register_dynamic_builder
from nasforge.supernet.layers import DynamicConvLayer
from nasforge.supernet.layers import DynamicMBConv
from nasforge.supernet.layers import prefixed
from nasforge.supernet.ops import DynamicConv2d
from nasforge.supernet.registry import register_supernet
from nasforge.supernet.static._layers import make_act
from nasforge.supernet.static._ofa import CLASSIFIER_DROPOUT

__all__ = ["DynamicClassifier", "DynamicConvAct", "DynamicPool"]

Tensors = dict[str, torch.Tensor]


class DynamicPool(DynamicLayer):
    """``ofa_pool``: global average pool (no parameters)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, 1, 1)."""
        return F.adaptive_avg_pool2d(x, 1)

    def export(self, block: Block) -> Tensors:
        return {}


class DynamicConvAct(DynamicLayer):
    """``ofa_feature_mix``: 1x1 conv without BN or bias + activation (static ``ConvAct``)."""

    def __init__(self, max_block: Block, spec: SupernetSpec) -> None:
        super().__init__(max_block, spec)
        b = max_block
        self.conv = DynamicConv2d(b.cin, b.cout, b.kernel)
        self.act = make_act(b.act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, cin, H, W) -> (B, cout, H, W)."""
        return self.act(self.conv(x, self.active.cout))  # type: ignore[union-attr]

    def export(self, block: Block) -> Tensors:
        return prefixed("conv", self.conv.export(block.cin, block.cout))


class DynamicClassifier(DynamicLayer):
    """``ofa_classifier``: flatten, dropout, Linear (static ``Classifier``; fixed shapes)."""

    def __init__(self, max_block: Block, spec: SupernetSpec) -> None:
        super().__init__(max_block, spec)
        self.dropout = nn.Dropout(CLASSIFIER_DROPOUT)
        self.linear = nn.Linear(max_block.cin, max_block.classes)

    def check(self, block: Block) -> None:
        super().check(block)
        _require(block.cin == self.max_block.cin, self, block,
                 "the classifier's input width is fixed")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, 1, 1) -> logits (B, classes)."""
        return self.linear(self.dropout(x.flatten(1)))

    def export(self, block: Block) -> Tensors:
        return {"linear.weight": self.linear.weight, "linear.bias": self.linear.bias}


# every dynamic layer class is its own builder: ``cls(max_block, spec)``
register_dynamic_builder("ofa_first_conv", "ofa_final_expand")(DynamicConvLayer)
register_dynamic_builder("ofa_mbconv")(DynamicMBConv)
register_dynamic_builder("ofa_pool")(DynamicPool)
register_dynamic_builder("ofa_feature_mix")(DynamicConvAct)
register_dynamic_builder("ofa_classifier")(DynamicClassifier)


for _name, _desc in (("ofa_mbv3", "Once-for-All MobileNetV3 supernet, width 1.0"),
                     ("ofa_mbv3_w12", "Once-for-All MobileNetV3 supernet, width 1.2")):
    register_supernet(_name, SupernetSpec(description=_desc))
