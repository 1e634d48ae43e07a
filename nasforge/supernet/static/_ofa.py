"""Static-module builders of the Once-for-All MobileNetV3 block kinds (``ofa_*``).

Once for All: Train One Network and Specialize it for Efficient Deployment,
https://arxiv.org/abs/1908.09791

The layers are OFA's ``MobileNetV3`` twins: ``ConvBNAct`` for the first conv and the final
expand conv, ``MBConv(shortcut="identity")`` with OFA's SE (``make_divisible(mid // 4, 8)``
hidden channels, ReLU, h-sigmoid; the width comes from the block) for every MBConv, a global
average pool, the feature-mix 1x1 conv without BN or bias (:class:`ConvAct`) and a Linear
classifier after dropout (:class:`Classifier`).
"""

from __future__ import annotations

import torch
from torch import nn

from nasforge.search_spaces.block import Block
from nasforge.supernet.static._layers import ConvBNAct
from nasforge.supernet.static._layers import MBConv
from nasforge.supernet.static._layers import make_act
from nasforge.supernet.static.base import register_block_builder

__all__ = ["Classifier", "ConvAct"]

#: Dropout before the classifier (OFA's supernet default; released nets use 0.2).
CLASSIFIER_DROPOUT = 0.1


class ConvAct(nn.Module):
    """Conv (no bias, no BN) + activation: OFA's feature-mix layer."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, act: str = "hswish") -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, 1, kernel // 2, bias=False)
        self.act = make_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, cin, H, W) -> (B, cout, H, W)."""
        return self.act(self.conv(x))


class Classifier(nn.Module):
    """Flatten, dropout, Linear: OFA's ``LinearLayer`` classifier."""

    def __init__(self, cin: int, classes: int, dropout: float = CLASSIFIER_DROPOUT) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, cin, 1, 1) -> logits (B, classes)."""
        return self.linear(self.dropout(x.flatten(1)))


@register_block_builder("ofa_first_conv")
@register_block_builder("ofa_final_expand")
def _conv_bn_act(b: Block) -> nn.Module:
    return ConvBNAct(b.cin, b.cout, b.kernel, b.stride, act=b.act)


@register_block_builder("ofa_mbconv")
def _mbconv(b: Block) -> nn.Module:
    return MBConv(b.cin, b.cout, b.mid, b.kernel, b.stride, b.expand, b.se_mid, b.act,
                  "identity" if b.shortcut == "identity" else "none")


@register_block_builder("ofa_pool")
def _pool(b: Block) -> nn.Module:
    return nn.AdaptiveAvgPool2d(1)


@register_block_builder("ofa_feature_mix")
def _feature_mix(b: Block) -> nn.Module:
    return ConvAct(b.cin, b.cout, b.kernel, act=b.act)


@register_block_builder("ofa_classifier")
def _classifier(b: Block) -> nn.Module:
    return Classifier(b.cin, b.classes)
