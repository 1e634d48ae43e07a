"""Static layers of the NAS-Bench-201 network (``nasbench201_net``): NB201's CIFAR ``TinyNetwork``.

Paper:
    NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture Search,
    https://arxiv.org/abs/2001.00326

One module per block of :meth:`nasforge.search_spaces.NB201NetSpace.blocks`, with NB201's op
definitions:

* ``nb201_stem``: 3x3 conv (no bias) + BN;
* ``nb201_edge``: one cell edge: ``nor_conv_1x1`` / ``nor_conv_3x3`` = ReLU-Conv-BN (affine),
  ``avg_pool_3x3`` = ``AvgPool2d(3, 1, 1, count_include_pad=False)``, ``skip_connect`` =
  identity, ``none`` = zeros (``x * 0``);
* ``nb201_resblock``: ResNet basic block, stride 2: ReLU-Conv3x3(s2)-BN, ReLU-Conv3x3-BN, plus
  the shortcut ``AvgPool2d(2)`` then a 1x1 conv (no BN);
* ``nb201_head``: BN + ReLU, global average pool, Linear.

The edges of a cell are not a chain: :class:`NB201Network` runs them as the cell's DAG (node
``i`` is the sum of its in-edges applied to the earlier nodes, edges in
:data:`~nasforge.search_spaces._nasbench201_cell.NB201_EDGES` order), every other block in sequence.
Its ``layers`` hold one module per block, in block order, as the supernet's ``extract`` needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from nasforge.search_spaces._nasbench201_cell import NB201_EDGES
from nasforge.search_spaces.block import Block
from nasforge.supernet.static.base import BlockNet
from nasforge.supernet.static.base import register_block_builder
from nasforge.supernet.static.base import register_static_builder

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["NB201Edge", "NB201Head", "NB201Network", "NB201ResBlock", "ReLUConvBN", "run_cell"]

EDGES_PER_CELL = len(NB201_EDGES)


class ReLUConvBN(nn.Module):
    """ReLU, ``k x k`` conv (no bias, ``padding = k // 2``), BatchNorm (affine): NB201's
    ``ReLUConvBN``."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, cin, H, W) -> (B, cout, H / stride, W / stride)."""
        return self.bn(self.conv(torch.relu(x)))


class Zero(nn.Module):
    """NB201's ``none`` op inside a cell: zeros of the input's shape (``x * 0``, as NB201)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> zeros (B, C, H, W)."""
        return x.mul(0.0)


class NB201Edge(nn.Module):
    """One cell edge running ``op`` (one of NB201's 5 ops) at a fixed width ``channels``."""

    def __init__(self, op: str, channels: int) -> None:
        super().__init__()
        self.op_name = op
        self.op = make_edge_op(op, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        return self.op(x)

    def extra_repr(self) -> str:
        return self.op_name


def make_edge_op(op: str, channels: int) -> nn.Module:
    """The module of one NB201 edge op at width ``channels`` (stride 1)."""
    if op == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1)
    if op == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    if op == "skip_connect":
        return nn.Identity()
    if op == "none":
        return Zero()
    raise ValueError(f"an NB201 edge op must be one of none, skip_connect, nor_conv_1x1, "
                     f"nor_conv_3x3, avg_pool_3x3, but got {op!r}")


class NB201ResBlock(nn.Module):
    """NB201's ``ResNetBasicblock`` with stride 2 between stages."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(cin, cout, 3, stride=2)
        self.conv_b = ReLUConvBN(cout, cout, 3)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, stride=2),
                                        nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, cin, H, W) -> (B, cout, H / 2, W / 2)."""
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Stem(nn.Module):
    """3x3 conv (no bias) + BN."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) -> (B, cout, H, W)."""
        return self.bn(self.conv(x))


class NB201Head(nn.Module):
    """BN + ReLU, global average pool, Linear classifier."""

    def __init__(self, cin: int, classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(cin)
        self.classifier = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> logits (B, classes)."""
        return self.classifier(torch.relu(self.bn(x)).mean(dim=(2, 3)))


def run_cell(edges: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Run one cell: node ``i`` sums its in-edges applied to the earlier nodes.

    Args:
        edges: the 6 edge modules in :data:`NB201_EDGES` order (``1<-0, 2<-0, 2<-1, 3<-0,
            3<-1, 3<-2``).
        x: (B, C, H, W) the cell input (node 0).

    Returns:
        (B, C, H, W) node 3.
    """
    nodes: list[torch.Tensor] = [x]
    for (to, frm), edge in zip(NB201_EDGES, edges, strict=True):
        y = edge(nodes[frm])
        if to == len(nodes):
            nodes.append(y)
        else:
            nodes[to] = nodes[to] + y
    return nodes[-1]


@register_static_builder("nasbench201_net")
class NB201Network(BlockNet):
    """The NB201 network of one cell: ``layers`` hold one module per block; runs of
    :data:`EDGES_PER_CELL` ``nb201_edge`` blocks are executed as cells (:func:`run_cell`).

    Attributes:
        blocks: the :class:`Block` s the modules were built from (same order as ``layers``).
    """

    def __init__(self, blocks: list[Block], layers: list[nn.Module]) -> None:
        super().__init__(blocks, layers)
        self._plan = _cell_plan(self.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) -> logits (B, classes)."""
        for start, stop in self._plan:
            if stop - start == EDGES_PER_CELL and self.blocks[start].kind == "nb201_edge":
                x = run_cell([self.layers[i] for i in range(start, stop)], x)
            else:
                x = self.layers[start](x)
        return x


def _cell_plan(blocks: Sequence[Block]) -> list[tuple[int, int]]:
    """Spans ``[start, stop)`` of the blocks: a cell (6 edges) or one other block each."""
    plan: list[tuple[int, int]] = []
    i = 0
    while i < len(blocks):
        if blocks[i].kind == "nb201_edge":
            stop = i + EDGES_PER_CELL
            if stop > len(blocks) or any(b.kind != "nb201_edge" for b in blocks[i:stop]):
                raise ValueError(f"nb201_edge blocks come in cells of {EDGES_PER_CELL}; the run "
                                 f"starting at block {i} is shorter")
            plan.append((i, stop))
            i = stop
        else:
            plan.append((i, i + 1))
            i += 1
    return plan


@register_block_builder("nb201_stem")
def _stem(b: Block) -> nn.Module:
    return NB201Stem(b.cin, b.cout)


@register_block_builder("nb201_edge")
def _edge(b: Block) -> nn.Module:
    return NB201Edge(b.op, b.cout)


@register_block_builder("nb201_resblock")
def _resblock(b: Block) -> nn.Module:
    return NB201ResBlock(b.cin, b.cout)


@register_block_builder("nb201_head")
def _head(b: Block) -> nn.Module:
    return NB201Head(b.cin, b.classes)
