"""Block-shape keys: the latency keys of devices profiled by nasforge itself (``cpu-local``).

nn-Meter's and OFA's keys reproduce other projects' tables (floor-divided sizes, implicit
fields). A device nasforge measures keys each block by *its own* fields instead: the block kind,
then every field that differs from the :class:`~nasforge.search_spaces.block.Block` default, in
field order, with the stage left out (it does not change the work)::

    mbconv:hw_in=56;hw_out=28;cin=16;cout=24;stride=2;kernel=3;mid=64;expand=4;act=hswish;...

One key per distinct block, shared by every space that produces that block. The key family is the
block kind. :func:`block_fields` and :func:`block_terms` give the regressor features of such a key
(all integer fields, categorical codes, and the op terms of
:mod:`~nasforge.hardware_models._features`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Hashable
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from nasforge.errors import InvalidInputError
from nasforge.hardware_models._keys import KEY_SCHEMES
from nasforge.hardware_models._keys import KeyScheme
from nasforge.search_spaces.block import Block
from nasforge.search_spaces.block import block_flops
from nasforge.search_spaces.block import block_params

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch

__all__ = [
    "BlockKeys",
    "block_fields",
    "block_from_key",
    "block_key",
    "block_key_scheme",
    "block_terms",
    "is_block_key",
]

BYTES = 4  # fp32
_INT_FIELDS: tuple[str, ...] = (
    "hw_in", "hw_out", "cin", "cout", "stride", "kernel", "mid", "expand", "se_mid", "heads",
    "head_dim", "v_scale", "window", "bias_grid", "out_dim", "classes")
_TEXT_FIELDS: tuple[str, ...] = ("act", "attn", "shortcut", "op")
#: categorical values -> codes used as regressor features (unknown values get -1).
_CODES: dict[str, tuple[str, ...]] = {
    "act": ("none", "relu", "hswish"),
    "attn": ("", "softmax", "linear", "window"),
    "shortcut": ("none", "identity", "avgpool_conv"),
}
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Block)}
_DW_KINDS = frozenset({"mbconv", "transds", "ofa_mbconv"})


def block_key(block: Block) -> str:
    """The canonical key of a block: ``kind:field=value;...`` (non-default fields, no stage)."""
    parts = []
    for f in dataclasses.fields(Block):
        if f.name in ("kind", "stage"):
            continue
        v = getattr(block, f.name)
        if f.name in ("hw_in", "hw_out", "cin", "cout") or v != f.default:
            parts.append(f"{f.name}={v}")
    return f"{block.kind}:{';'.join(parts)}"


def is_block_key(key: str) -> bool:
    """Whether ``key`` is a block-shape key (nn-Meter and OFA keys never hold ``=``)."""
    return "=" in key and ":" in key and "-input:" not in key


@lru_cache(maxsize=1 << 16)
def block_from_key(key: str) -> Block:
    """The block a key describes (stage ``""``).

    Raises:
        InvalidInputError: the key is not ``kind:field=value;...`` over Block fields.
    """
    kind, _, rest = key.partition(":")
    kw: dict[str, int | str] = {}
    try:
        for part in rest.split(";"):
            name, _, value = part.partition("=")
            if name in _INT_FIELDS:
                kw[name] = int(value)
            elif name in _TEXT_FIELDS:
                kw[name] = value
            else:
                raise ValueError(f"unknown field {name!r}")
        return Block(kind=kind, stage="", **kw)  # type: ignore[arg-type]
    except (ValueError, TypeError) as e:
        raise InvalidInputError(
            f"latency key {key!r} is not a block-shape key (kind:field=value;... over the fields "
            f"of nasforge.search_spaces.Block): {e}; re-profile the device (nas profile)"
        ) from None


@lru_cache(maxsize=1 << 16)
def block_fields(key: str) -> dict[str, int]:
    """Integer features of a block key: every integer field and a code per categorical field.

    All keys give the same field names, so one family's feature vectors have one length.
    """
    b = block_from_key(key)
    out = {name: int(getattr(b, name)) for name in _INT_FIELDS}
    for name, values in _CODES.items():
        v = getattr(b, name)
        out[name] = values.index(v) if v in values else -1
    return out


def _attn_macs(b: Block) -> tuple[float, float]:
    """(depthwise-on-V MACs, token-by-token MACs) of an attention block."""
    n = b.hw_out**2
    vd = b.head_dim * b.v_scale
    dw = 9.0 * n * b.heads * vd
    if b.attn == "softmax":
        return dw, float(b.heads * n * n * (b.head_dim + vd))
    if b.attn == "linear":
        return dw, float(2 * b.heads * n * b.head_dim * vd + b.heads * n * b.head_dim)
    ws = max(min(b.window or b.hw_out, b.hw_out), 1)
    nw = math.ceil(b.hw_out / ws) ** 2
    return dw, float(nw * b.heads * ws**4 * (b.head_dim + vd))


@lru_cache(maxsize=1 << 16)
def block_terms(key: str) -> tuple[float, float, float, float]:
    """``(dense, dw, attn, bytes)`` of the block a key describes.

    ``dense`` is the block's executed MACs (:func:`~nasforge.search_spaces.block.block_flops`)
    minus its depthwise and token-by-token parts; ``bytes`` counts fp32 input, output, the main
    intermediate activations and the weights.
    """
    b = block_from_key(key)
    try:
        flops, params = float(block_flops(b)), float(block_params(b))
    except KeyError:  # a kind without cost rules: fall back to shapes only
        flops, params = 0.0, 0.0
    dw = attn = 0.0
    hi, ho = b.hw_in**2, b.hw_out**2
    inner = 0.0
    if b.kind in _DW_KINDS:
        dw = float(b.mid * b.kernel**2 * ho)
        inner = (b.mid * hi if b.expand > 1 else 0) + 2.0 * b.mid * ho
    elif b.kind == "attention":
        dw, attn = _attn_macs(b)
        vw = b.heads * b.head_dim * b.v_scale
        inner = ho * (2 * b.heads * b.head_dim + 2 * vw) + (b.heads * ho * ho if b.attn ==
                                                             "softmax" else 0)
    elif b.kind == "ffn":
        inner = 2.0 * ho * b.mid
    elif b.kind == "head":
        inner = 2.0 * hi * b.mid + b.out_dim
    dense = max(flops - dw - attn, 0.0)
    nbytes = BYTES * (b.cin * hi + b.cout * ho + inner + params)
    return dense, dw, attn, float(nbytes)


class BlockKeys(KeyScheme):
    """Keys every block by :func:`block_key`; segments follow the space's own scheme.

    Args:
        base: the space's registered key scheme, whose :meth:`segments` (a pure function of the
            architecture) lets the latency model cache per stage; None: no segments.
    """

    name = "block-shape"

    def __init__(self, base: KeyScheme | None = None) -> None:
        self.base = base
        self.segment_of_stage = dict(base.segment_of_stage) if base is not None else {}
        self.segment_columns = base.segment_columns if base is not None else ()

    def keys(self, blocks: Sequence[Block]) -> list[str]:
        return [block_key(b) for b in blocks]

    def segments(self, arch: Arch) -> tuple[Hashable, ...] | None:
        return self.base.segments(arch) if self.base is not None else None


@lru_cache(maxsize=64)
def block_key_scheme(space: str) -> BlockKeys:
    """The block-shape scheme of ``space`` (segments from its registered scheme, if any)."""
    return BlockKeys(KEY_SCHEMES.get(space) if space in KEY_SCHEMES else None)
