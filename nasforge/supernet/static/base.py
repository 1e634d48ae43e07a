"""The static-model registries: block builders keyed by block kind, networks keyed by space.

:func:`build_static` turns ``space.blocks(arch)`` into a randomly initialised network, one
module per block: each module comes from the builder registered for the block's kind
(:func:`register_block_builder`), and the network that runs them from the builder registered
for the space's name (:func:`register_static_builder`), :class:`BlockNet` (the blocks in order)
where none is. Search spaces describe architectures without torch; this is where an
architecture becomes a PyTorch model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from nasforge.errors import IncompatibleComponentsError
from nasforge.registry import Registry
from nasforge.search_spaces.block import Block

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = ["BLOCK_BUILDERS", "STATIC_BUILDERS", "BlockNet", "build_block", "build_static",
           "register_block_builder", "register_static_builder"]

#: block kind -> the static module of one such block.
BLOCK_BUILDERS: Registry[Callable[[Block], nn.Module]] = Registry("block builder")


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


#: space name -> the network class over its block modules, ``(blocks, layers) -> BlockNet``.
StaticBuilder = Callable[[list[Block], list[nn.Module]], BlockNet]
STATIC_BUILDERS: Registry[StaticBuilder] = Registry("static model builder")


def register_block_builder(kind: str) -> Callable[[Callable[[Block], nn.Module]],
                                                  Callable[[Block], nn.Module]]:
    """Decorator: register the static-module builder of a block kind."""
    return BLOCK_BUILDERS.register(kind)


def register_static_builder(space: str) -> Callable[[StaticBuilder], StaticBuilder]:
    """Decorator: register the network that runs the block modules of space ``space``'s
    architectures (a :class:`BlockNet` subclass; spaces without one get :class:`BlockNet`)."""
    return STATIC_BUILDERS.register(space)


def build_block(block: Block) -> nn.Module:
    """The static module of one block (randomly initialised)."""
    return BLOCK_BUILDERS.get(block.kind)(block)


def build_static(space: SearchSpace, arch: Arch, num_classes: int | None = None) -> BlockNet:
    """A randomly initialised static model of ``arch`` (the supernet's twin).

    Args:
        space: the space ``arch`` belongs to (validated here).
        arch: the architecture.
        num_classes: override the space's number of classes (head blocks).

    Raises:
        IncompatibleComponentsError: ``space`` is tabular (``has_model`` False).
        InvalidArchitectureError: ``arch`` is not in ``space``.

    Example:
        >>> import torch
        >>> from nasforge.search_spaces import get_space
        >>> space = get_space("elasticvit")
        >>> model = build_static(space, space.min_arch(), num_classes=10).eval()
        >>> model(torch.zeros(1, 3, 128, 128)).shape
        torch.Size([1, 10])
    """
    if not space.has_model:
        raise IncompatibleComponentsError(
            f"{space.name} is a tabular space (has_model = False): its objectives come from a "
            "benchmark table (--benchmark table.csv); no PyTorch model is built"
        )
    space.validate(arch)
    blocks = space.blocks(arch)
    if num_classes is not None:
        blocks = [dataclasses.replace(b, classes=num_classes) if b.classes else b for b in blocks]
    net = STATIC_BUILDERS.get(space.name) if space.name in STATIC_BUILDERS else BlockNet
    return net(blocks, [build_block(b) for b in blocks])
