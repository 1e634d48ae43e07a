"""Static PyTorch models built from blocks: the twins that supernet extraction fills.

:func:`build_model` turns ``space.blocks(arch)`` into a plain ``nn.Sequential``-like
:class:`BlockNet`, one module per block, through a registry of block builders keyed by block
kind. A new block kind registers its builder with :func:`register_block_builder`.

Example:
    >>> import torch
    >>> from nasforge.search_spaces import get_space
    >>> space = get_space("elasticvit")
    >>> model = space.build_model(space.min_arch(), num_classes=10).eval()
    >>> model(torch.zeros(1, 3, 128, 128)).shape
    torch.Size([1, 10])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from nasforge.registry import Registry
from nasforge.search_spaces.block import Block
from nasforge.supernet.static._layers import FFN
from nasforge.supernet.static._layers import Attention
from nasforge.supernet.static._layers import ConvBNAct
from nasforge.supernet.static._layers import ElasticViTHead
from nasforge.supernet.static._layers import MBConv

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = [
    "BLOCK_BUILDERS",
    "BlockNet",
    "build_block",
    "build_model",
    "register_block_builder",
]

BLOCK_BUILDERS: Registry[Callable[[Block], nn.Module]] = Registry("block builder")


def register_block_builder(kind: str) -> Callable[[Callable[[Block], nn.Module]],
                                                  Callable[[Block], nn.Module]]:
    """Decorator: register the static-module builder of a block kind."""
    return BLOCK_BUILDERS.register(kind)


def build_block(block: Block) -> nn.Module:
    """The static module of one block (randomly initialised)."""
    return BLOCK_BUILDERS.get(block.kind)(block)


class BlockNet(nn.Module):
    """A network that runs its block modules in order.

    Attributes:
        blocks: the :class:`Block` s the modules were built from (same order as ``layers``).
    """

    def __init__(self, blocks: list[Block], layers: list[nn.Module]) -> None:
        super().__init__()
        self.blocks = list(blocks)
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) -> logits (B, classes)."""
        for layer in self.layers:
            x = layer(x)
        return x


def build_model(space: SearchSpace, arch: Arch, num_classes: int | None = None) -> BlockNet:
    """A randomly initialised static model of ``arch``.

    Args:
        space: the space ``arch`` belongs to (validated here).
        arch: the architecture.
        num_classes: override the space's number of classes (head blocks).
    """
    if not space.has_model:
        raise TypeError(f"space {space.name!r} is tabular and has no model")
    space.validate(arch)
    blocks = space.blocks(arch)
    if num_classes is not None:
        blocks = [dataclasses.replace(b, classes=num_classes) if b.classes else b for b in blocks]
    return BlockNet(blocks, [build_block(b) for b in blocks])


@register_block_builder("firstconv")
def _firstconv(b: Block) -> nn.Module:
    return ConvBNAct(b.cin, b.cout, b.kernel, b.stride, act=b.act)


@register_block_builder("mbconv")
@register_block_builder("transds")
def _mbconv(b: Block) -> nn.Module:
    return MBConv(b.cin, b.cout, b.mid, b.kernel, b.stride, b.expand, b.se_mid, b.act, b.shortcut)


@register_block_builder("attention")
def _attention(b: Block) -> nn.Module:
    return Attention(b.cin, b.heads, b.head_dim, b.v_scale, b.attn, b.window, b.bias_grid)


@register_block_builder("ffn")
def _ffn(b: Block) -> nn.Module:
    return FFN(b.cin, b.mid)


@register_block_builder("head")
def _head(b: Block) -> nn.Module:
    return ElasticViTHead(b.cin, b.mid, b.out_dim, b.classes)

from nasforge.supernet.static import _nb201  # noqa: E402, F401  (registers the nb201_* builders)
from nasforge.supernet.static import _ofa  # noqa: E402, F401  (registers the ofa_* builders)
