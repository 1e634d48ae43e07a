"""The NAS-Bench-201 weight-sharing supernet (``nasbench201_net``): one path per edge.

Paper:
    NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture Search,
    https://arxiv.org/abs/2001.00326 (the one-shot baselines of its section 5)

Every edge position holds all 5 ops (the weights of ``nor_conv_1x1`` and ``nor_conv_3x3``, each
ReLU-Conv-BN; pooling, skip and zero have none); the active arch picks one op per edge (SPOS's
single path). Stem, reduction blocks and head have fixed shapes. Each layer is the dynamic twin
of :mod:`nasforge.supernet.static._nb201`'s modules, and exports the active op's tensors
under the static twin's names.

The generic :class:`~nasforge.supernet.base.Supernet` runs its active layers as a chain; a cell
is a DAG, so the edge layers pass a :class:`CellState` along the chain: the first edge of a cell
receives the cell input (a tensor) and starts the state, each edge adds its op's output to its
target node, and the sixth returns node 3 (a tensor again). The computation is exactly
:func:`~nasforge.supernet.static._nb201.run_cell`'s.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nasforge.search_spaces._nasbench201_cell import NB201_EDGES
from nasforge.search_spaces._nasbench201_cell import NB201_OPS
from nasforge.search_spaces.block import Block
from nasforge.supernet.base import DynamicLayer
from nasforge.supernet.base import SupernetSpec
from nasforge.supernet.base import _require
from nasforge.supernet.base import register_dynamic_builder
from nasforge.supernet.layers import prefixed
from nasforge.supernet.ops import DynamicBatchNorm2d
from nasforge.supernet.ops import DynamicConv2d
from nasforge.supernet.ops import DynamicLinear
from nasforge.supernet.registry import register_supernet

__all__ = ["CellState", "DynamicNB201Edge", "DynamicNB201Head", "DynamicNB201ResBlock",
           "DynamicNB201Stem", "DynamicReLUConvBN"]

Tensors = dict[str, torch.Tensor]


@dataclass(frozen=True)
class CellState:
    """The nodes of a cell computed so far, passed from one edge layer to the next.

    Attributes:
        nodes: (B, C, H, W) node tensors; the last one may still be a partial sum.
        edge: how many of the cell's edges have run.
    """

    nodes: tuple[torch.Tensor, ...]
    edge: int


def _same_shape(block: Block, max_block: Block) -> bool:
    """Whether ``block`` equals ``max_block`` up to the feature-map sides (the resolution)."""
    return dataclasses.replace(block, hw_in=max_block.hw_in, hw_out=max_block.hw_out) == max_block


class DynamicReLUConvBN(torch.nn.Module):
    """ReLU, conv, BN over fixed-size dynamic ops (so their gradients can be slice-sized)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = DynamicConv2d(cin, cout, kernel, stride)
        self.bn = DynamicBatchNorm2d(cout)
        self.cin, self.cout = cin, cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, cin, H, W) -> (B, cout, H / stride, W / stride)."""
        return self.bn(self.conv(F.relu(x), self.cout))

    def export(self) -> Tensors:
        """Views keyed ``conv.*`` and ``bn.*`` (static ``ReLUConvBN`` names)."""
        return {**prefixed("conv", self.conv.export(self.cin, self.cout)),
                **prefixed("bn", self.bn.export(self.cout))}


class DynamicNB201Edge(DynamicLayer):
    """``nb201_edge``: all 5 ops of one edge; the active block's ``op`` runs.

    ``forward`` takes the cell input (a tensor) on a cell's first edge, else the
    :class:`CellState` of the previous edge; it returns the state, or node 3 after the last
    edge.
    """

    def __init__(self, max_block: Block, spec: SupernetSpec) -> None:
        super().__init__(max_block, spec)
        c = max_block.cout
        self.nor_conv_1x1 = DynamicReLUConvBN(c, c, 1)
        self.nor_conv_3x3 = DynamicReLUConvBN(c, c, 3)

    def check(self, block: Block) -> None:
        m = self.max_block
        for f in ("kind", "cin", "cout", "stride"):
            _require(getattr(block, f) == getattr(m, f), self, block,
                     f"{f} = {getattr(block, f)!r} must be {getattr(m, f)!r}")
        _require(block.op in NB201_OPS, self, block,
                 f"op = {block.op!r} must be one of {', '.join(NB201_OPS)}")

    def _op(self, x: torch.Tensor) -> torch.Tensor:
        op = self.active.op  # type: ignore[union-attr]
        if op == "nor_conv_1x1":
            return self.nor_conv_1x1(x)
        if op == "nor_conv_3x3":
            return self.nor_conv_3x3(x)
        if op == "avg_pool_3x3":
            return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        if op == "skip_connect":
            return x
        return x.mul(0.0)  # none

    def forward(self, x: torch.Tensor | CellState) -> torch.Tensor | CellState:
        """x: (B, C, H, W) cell input or the running :class:`CellState`."""
        state = x if isinstance(x, CellState) else CellState((x,), 0)
        to, frm = NB201_EDGES[state.edge]
        y = self._op(state.nodes[frm])
        nodes = state.nodes
        nodes = (*nodes, y) if to == len(nodes) else (*nodes[:-1], nodes[-1] + y)
        if state.edge + 1 == len(NB201_EDGES):
            return nodes[-1]
        return CellState(nodes, state.edge + 1)

    def export(self, block: Block) -> Tensors:
        if block.op in ("nor_conv_1x1", "nor_conv_3x3"):
            layer: DynamicReLUConvBN = getattr(self, block.op)
            return prefixed("op", layer.export())
        return {}


class DynamicNB201Stem(DynamicLayer):
    """``nb201_stem``: 3x3 conv + BN (fixed shapes)."""

    def __init__(self, max_block: Block, spec: SupernetSpec) -> None:
        super().__init__(max_block, spec)
        self.conv = DynamicConv2d(max_block.cin, max_block.cout, 3)
        self.bn = DynamicBatchNorm2d(max_block.cout)

    def check(self, block: Block) -> None:
        _require(_same_shape(block, self.max_block), self, block,
                 "the stem is fixed (only the resolution may differ)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) -> (B, C, H, W)."""
        return self.bn(self.conv(x, self.max_block.cout))

    def export(self, block: Block) -> Tensors:
        return {**prefixed("conv", self.conv.export(block.cin, block.cout)),
                **prefixed("bn", self.bn.export(block.cout))}


class DynamicNB201ResBlock(DynamicLayer):
    """``nb201_resblock``: the stride-2 basic block between stages (fixed shapes)."""

    def __init__(self, max_block: Block, spec: SupernetSpec) -> None:
        super().__init__(max_block, spec)
        cin, cout = max_block.cin, max_block.cout
        self.conv_a = DynamicReLUConvBN(cin, cout, 3, stride=2)
        self.conv_b = DynamicReLUConvBN(cout, cout, 3)
        self.down = DynamicConv2d(cin, cout, 1)

    def check(self, block: Block) -> None:
        _require(_same_shape(block, self.max_block), self, block,
                 "reduction blocks are fixed (only the resolution may differ)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, cin, H, W) -> (B, cout, H / 2, W / 2)."""
        short = self.down(F.avg_pool2d(x, 2, 2), self.max_block.cout)
        return short + self.conv_b(self.conv_a(x))

    def export(self, block: Block) -> Tensors:
        return {**prefixed("conv_a", self.conv_a.export()),
                **prefixed("conv_b", self.conv_b.export()),
                **prefixed("downsample.1", self.down.export(block.cin, block.cout))}


class DynamicNB201Head(DynamicLayer):
    """``nb201_head``: BN + ReLU, global average pool, Linear (fixed shapes)."""

    def __init__(self, max_block: Block, spec: SupernetSpec) -> None:
        super().__init__(max_block, spec)
        self.bn = DynamicBatchNorm2d(max_block.cin)
        self.classifier = DynamicLinear(max_block.cin, max_block.classes)

    def check(self, block: Block) -> None:
        _require(_same_shape(block, self.max_block), self, block,
                 "the head is fixed (only the resolution may differ)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> logits (B, classes)."""
        return self.classifier(F.relu(self.bn(x)).mean(dim=(2, 3)), self.max_block.classes)

    def export(self, block: Block) -> Tensors:
        return {**prefixed("bn", self.bn.export(block.cin)),
                **prefixed("classifier", self.classifier.export(block.cin, block.classes))}


# every dynamic layer class is its own builder: ``cls(max_block, spec)``
register_dynamic_builder("nb201_stem")(DynamicNB201Stem)
register_dynamic_builder("nb201_edge")(DynamicNB201Edge)
register_dynamic_builder("nb201_resblock")(DynamicNB201ResBlock)
register_dynamic_builder("nb201_head")(DynamicNB201Head)

register_supernet("nasbench201_net", SupernetSpec(
    description="NAS-Bench-201 one-shot supernet (all 5 ops on every edge, one path active)"))
