"""Blocks: the unit every part of nasforge agrees on.

A :class:`Block` (a *LayerSpec*) is one op kind with its shapes and hyper-parameters. It is the
single source of truth for FLOPs and parameters (analytic, no torch), for latency-table keys,
for the static model that :func:`nasforge.supernet.static.build_static` builds, and for which
supernet modules a subnet activates.

FLOPs follow the field's convention: one multiply-accumulate counts as one FLOP (MACs). Two counts
exist per block:

* ``flops``: the MACs of convolutions, linear layers and attention matrix products that the built
  torch module executes (element-wise ops, normalisation, activations, pooling and softmax are
  not counted, as in fvcore and ``torch.utils.flop_counter``);
* ``flops_reference``: the space's published counting rule (ElasticViT's ``compute_flops``,
  Once-for-All's ``count_flops``), which differs in documented places.

Each kind registers its cost functions with :func:`register_block_kind`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass

from nasforge.registry import Registry

__all__ = [
    "Block",
    "BlockCost",
    "block_flops",
    "block_flops_reference",
    "block_params",
    "register_block_kind",
    "total_flops",
    "total_flops_reference",
    "total_params",
]


@dataclass(frozen=True, slots=True)
class Block:
    """One layer of an architecture, with everything needed to cost, key and build it.

    Attributes:
        kind: op kind (``firstconv``, ``mbconv``, ``transds``, ``attention``, ``ffn``, ``head``,
            ``conv``, ``pool``, ``linear``, ``nb201_cell``, ...).
        stage: the stage the block belongs to (``stem``, ``C1``, ``T3``, ``head``, ...).
        hw_in: input feature-map side (square maps), in pixels/tokens per side.
        hw_out: output feature-map side.
        cin: input channels.
        cout: output channels.
        stride: spatial stride.
        kernel: (depthwise) kernel size, 0 where none.
        mid: inner width (MBConv expanded channels; FFN hidden width; head hidden width).
        expand: the expand/mlp ratio the block was built from (informational and for keys).
        se_mid: squeeze-excite hidden width, 0 when the block has no SE.
        act: activation name (``relu``, ``hswish``, ``none``).
        heads: attention heads (head dim is ``head_dim``).
        head_dim: q/k width per head.
        v_scale: V width per head is ``head_dim * v_scale``.
        attn: attention kind: ``softmax`` (global), ``linear`` (ReLU kernel), ``window``.
        window: window side for ``window`` attention (effective, after clipping to the map).
        bias_grid: side of the token grid the relative-position bias table is sized for.
        out_dim: extra output width (head: the 1984-d feature; NB201: the op name index).
        classes: number of classes (head blocks).
        shortcut: residual kind: ``none``, ``identity``, ``avgpool_conv`` (ElasticViT).
        op: free-form op tag for cell benchmarks (NB201 edge op string).
    """

    kind: str
    stage: str
    hw_in: int
    hw_out: int
    cin: int
    cout: int
    stride: int = 1
    kernel: int = 0
    mid: int = 0
    expand: int = 0
    se_mid: int = 0
    act: str = "none"
    heads: int = 0
    head_dim: int = 0
    v_scale: int = 0
    attn: str = ""
    window: int = 0
    bias_grid: int = 0
    out_dim: int = 0
    classes: int = 0
    shortcut: str = "none"
    op: str = ""

    def to_dict(self) -> dict[str, int | str]:
        """The non-default fields, for tables and JSON output."""
        out: dict[str, int | str] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in ("kind", "stage", "hw_in", "hw_out", "cin", "cout") or v != f.default:
                out[f.name] = v
        return out


@dataclass(frozen=True)
class BlockCost:
    """Cost rules of one block kind: each maps a :class:`Block` to an int."""

    flops: Callable[[Block], int]
    params: Callable[[Block], int]
    flops_reference: Callable[[Block], int] | None = None


_KINDS: Registry[BlockCost] = Registry("block kind")


def register_block_kind(
    kind: str,
    flops: Callable[[Block], int],
    params: Callable[[Block], int],
    flops_reference: Callable[[Block], int] | None = None,
) -> None:
    """Register the cost rules of a block kind (``flops_reference`` defaults to ``flops``)."""
    _KINDS.add(kind, BlockCost(flops, params, flops_reference))


def _cost(kind: str) -> BlockCost:
    return _KINDS.get(kind)


def block_flops(block: Block) -> int:
    """MACs the built module executes for ``block``."""
    return _cost(block.kind).flops(block)


def block_flops_reference(block: Block) -> int:
    """MACs by the space's published counting rule."""
    c = _cost(block.kind)
    return (c.flops_reference or c.flops)(block)


def block_params(block: Block) -> int:
    """Trainable parameters of the built module for ``block``."""
    return _cost(block.kind).params(block)


def total_flops(blocks: Iterable[Block]) -> int:
    """Sum of :func:`block_flops`."""
    return sum(block_flops(b) for b in blocks)


def total_flops_reference(blocks: Iterable[Block]) -> int:
    """Sum of :func:`block_flops_reference`."""
    return sum(block_flops_reference(b) for b in blocks)


def total_params(blocks: Iterable[Block]) -> int:
    """Sum of :func:`block_params`."""
    return sum(block_params(b) for b in blocks)
