"""Keying: how each space's blocks map to latency-table keys.

A :class:`KeyScheme` turns ``space.blocks(arch)`` into one key per block, reproducing the keying
of the tables it is meant to read *exactly*, and cuts an architecture into segments (stages)
whose latency depends only on a few of its fields, so that :meth:`LatencyModel.predict_many`
can cache per stage and sum.

Shipped schemes:

* ``nnmeter-hybrid`` for ``elasticvit`` and ``elasticvit_efficient``: the keys of nn-Meter's
  hybrid-transformer tables (``{pixel1,pixel4,pixel6,xiaomi11}_lut_ln_v3.json``). Feature sizes
  are floor-divided at every stride-2 stage (the model itself uses ceil in transformer stages),
  MBConv and reduction keys carry the *input* size, stem layers expand 1, SE only in C2, the
  reduction MBConv is ``transds_{hw_in}_{cin}_{cout}_{stride}_{expand}`` (expand is 6 in
  ElasticViT; the tables also hold expand-4 entries). Linear and window attention have no table
  entries anywhere; they get keys of their own (``transattnlinear_...``, ``transattnwindow_...``)
  that only a regressor or the analytical estimate can answer.
* ``ofa``: Once-for-All's LatencyTable keys (``expanded_conv-input:HxWxC-output:HxWxC-expand:MID
  -kernel:K-stride:S-idskip:I-se:E-hs:H``, ``Conv``, ``Conv_1``, ``AvgPool2D``, ``Conv_2``,
  ``Logits``), registered for ``ofa_mbv3`` when that space exists (see
  :func:`register_key_scheme`).
"""

from __future__ import annotations

import abc
from collections.abc import Hashable
from collections.abc import Sequence
from typing import TYPE_CHECKING

from nasforge.errors import MissingLatencyError
from nasforge.registry import Registry

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.block import Block

__all__ = [
    "KEY_SCHEMES",
    "KeyScheme",
    "NnMeterHybridKeys",
    "OfaKeys",
    "get_key_scheme",
    "key_family",
    "register_key_scheme",
]


class KeyScheme(abc.ABC):
    """Maps a space's blocks to latency-table keys (see the module docstring)."""

    #: Scheme name (shown in profiles and messages).
    name: str = ""

    @abc.abstractmethod
    def keys(self, blocks: Sequence[Block]) -> list[str]:
        """One key per block, in order.

        Raises:
            MissingLatencyError: a block kind this scheme cannot key.
        """

    def segments(self, arch: Arch) -> tuple[Hashable, ...] | None:
        """Hashable ids of the architecture's segments, or None (then the arch is one segment).

        Segment ``i`` must determine exactly the blocks whose ``stage`` maps to ``i`` in
        :attr:`segment_of_stage`: two architectures with equal segment ids have equal blocks
        there.
        """
        return None

    #: Block stage name -> segment index (empty when :meth:`segments` returns None).
    segment_of_stage: dict[str, int] = {}  # noqa: RUF012 - read-only class table

    #: Per segment, the index columns (``index_names()`` of the space) its id is made of:
    #: :meth:`segments` on index matrices (:mod:`~nasforge.hardware_models._indexed`); empty
    #: when the scheme does not name them.
    segment_columns: tuple[tuple[str, ...], ...] = ()


def key_family(key: str) -> str:
    """The family of a key.

    OFA keys (``...-input:...``): the text before the first ``-`` (``expanded_conv``,
    ``Conv_1``, ...), ``ofa_head`` for a joined head key; block-shape keys (``kind:f=v;...``,
    see :mod:`~nasforge.hardware_models._blockkeys`): the block kind; nn-Meter keys: the text
    before the first ``_`` (``conv``, ``transattn``, ...).
    """
    if "-input:" in key:
        return "ofa_head" if "+" in key else key.split("-", 1)[0]
    if "=" in key:  # block-shape key (nasforge-profiled devices): the block kind
        return key.split(":", 1)[0]
    return key.split("_", 1)[0]


class NnMeterHybridKeys(KeyScheme):
    """nn-Meter hybrid-transformer keys for ElasticViT blocks (reproduced exactly)."""

    name = "nnmeter-hybrid"
    segment_of_stage = {"first": 0, "stem": 0, "C1": 1, "C2": 2, "T1": 3,  # noqa: RUF012
                        "T2": 4, "T3": 5, "T4": 6, "head": 6}

    def keys(self, blocks: Sequence[Block]) -> list[str]:
        out: list[str] = []
        h = 0  # floor-divided feature size, as nn-Meter's tables key it
        for b in blocks:
            if b.kind == "firstconv":
                out.append(f"firstconv_{b.hw_in}_{b.cin}_{b.cout}_{b.stride}_{b.kernel}")
                h = b.hw_in // b.stride
            elif b.kind == "mbconv":
                se = "se" if b.se_mid else "nose"
                out.append(f"conv_{h}_{b.cin}_{b.cout}_{b.expand}_{b.stride}_hard_swish_"
                           f"{b.kernel}_{se}")
                h //= b.stride
            elif b.kind == "transds":
                out.append(f"transds_{h}_{b.cin}_{b.cout}_{b.stride}_{b.expand}")
                h //= b.stride
            elif b.kind == "attention":
                if b.attn == "softmax":
                    out.append(f"transattn_{h}_{b.cin}_hard_swish_{b.v_scale}_ln")
                elif b.attn == "linear":
                    out.append(f"transattnlinear_{h}_{b.cin}_hard_swish_{b.v_scale}_ln")
                elif b.attn == "window":
                    out.append(f"transattnwindow_{h}_{b.cin}_hard_swish_{b.v_scale}_"
                               f"{min(b.window, h)}_ln")
                else:
                    raise MissingLatencyError(
                        f"no latency key for attention kind {b.attn!r}; known kinds: softmax, "
                        "linear, window")
            elif b.kind == "ffn":
                out.append(f"transffn_{h}_{b.cin}_{b.expand}_hard_swish_ln")
            elif b.kind == "head":
                out.append(f"mbpool_{h}_{b.cin}_{b.out_dim}_{b.mid // max(b.cin, 1)}_hard_swish")
            else:
                raise MissingLatencyError(
                    f"the {self.name} keying has no rule for block kind {b.kind!r} (stage "
                    f"{b.stage}); it keys firstconv, mbconv, transds, attention, ffn and head")
        return out

    segment_columns = (  # the fields of each tuple of segments(), in index-column names
        ("resolution", "widths[0]", "depths[0]", "kernels[0]"),
        ("resolution", "widths[0]", "widths[1]", "depths[1]", "kernels[1]", "expands[0]"),
        ("resolution", "widths[1]", "widths[2]", "depths[2]", "kernels[2]", "expands[1]"),
        *(("resolution", f"widths[{2 + t}]", f"widths[{3 + t}]", f"depths[{3 + t}]",
           f"mlp_ratios[{t}]", f"v_scales[{t}]", f"attention[{t}]") for t in range(4)),
    )

    def segments(self, arch: Arch) -> tuple[Hashable, ...] | None:
        r = arch.resolution  # type: ignore[attr-defined]
        w = arch.widths  # type: ignore[attr-defined]
        d = arch.depths  # type: ignore[attr-defined]
        k = arch.kernels  # type: ignore[attr-defined]
        e = arch.expands  # type: ignore[attr-defined]
        m = arch.mlp_ratios  # type: ignore[attr-defined]
        v = arch.v_scales  # type: ignore[attr-defined]
        a = arch.attention  # type: ignore[attr-defined]
        # first conv + stem, C1, C2, T1, T2, T3, T4 + head
        return (
            (r, w[0], d[0], k[0]),
            (1, r, w[0], w[1], d[1], k[1], e[0]),
            (2, r, w[1], w[2], d[2], k[2], e[1]),
            (3, r, w[2], w[3], d[3], m[0], v[0], a[0]),
            (4, r, w[3], w[4], d[4], m[1], v[1], a[1]),
            (5, r, w[4], w[5], d[5], m[2], v[2], a[2]),
            (6, r, w[5], w[6], d[6], m[3], v[3], a[3]),
        )


def _shape(*dims: int) -> str:
    return "x".join(str(d) for d in dims)


class OfaKeys(KeyScheme):
    """Once-for-All LatencyTable keys (``ofa/nas/efficiency_predictor/latency_lookup_table.py``).

    Block kinds of ``ofa_mbv3`` (``ofa_`` prefix optional): ``first_conv`` -> ``Conv``;
    ``mbconv`` -> ``expanded_conv`` (``expand`` is the *mid* width, ``idskip`` 1 for identity
    shortcuts, ``hs`` 1 for h-swish); ``final_expand`` -> ``Conv_1``, ``pool`` -> ``AvgPool2D``,
    ``feature_mix`` -> ``Conv_2``, ``classifier`` -> ``Logits``; a single ``head`` block is keyed
    as those four joined by ``+``. Feature sizes are the blocks' own, which follow OFA:
    ``(r + 1) // 2`` after the first conv, then ``(h - 1) // s + 1``.
    """

    name = "ofa"

    def keys(self, blocks: Sequence[Block]) -> list[str]:
        out: list[str] = []
        for b in blocks:
            ho = b.hw_out
            kind = b.kind.removeprefix("ofa_")
            if kind in ("firstconv", "first_conv"):
                out.append(f"Conv-input:{_shape(b.hw_in, b.hw_in, b.cin)}-output:"
                           f"{_shape(ho, ho, b.cout)}")
            elif kind == "mbconv":
                idskip = int(b.shortcut == "identity")
                out.append(
                    f"expanded_conv-input:{_shape(b.hw_in, b.hw_in, b.cin)}-output:"
                    f"{_shape(ho, ho, b.cout)}-expand:{b.mid}-kernel:{b.kernel}-stride:"
                    f"{b.stride}-idskip:{idskip}-se:{int(b.se_mid > 0)}-hs:"
                    f"{int(b.act in ('hswish', 'h_swish'))}")
            elif kind == "final_expand":
                out.append(_ofa_final_expand(b.hw_in, b.cin, b.cout))
            elif kind == "pool":
                out.append(f"AvgPool2D-input:{_shape(b.hw_in, b.hw_in, b.cin)}-output:"
                           f"{_shape(1, 1, b.cin)}")
            elif kind == "feature_mix":
                out.append(f"Conv_2-input:{_shape(1, 1, b.cin)}-output:{_shape(1, 1, b.cout)}")
            elif kind == "classifier":
                out.append(f"Logits-input:{_shape(1, 1, b.cin)}-output:{b.cout}")
            elif kind == "head":
                mix = b.out_dim
                out.append("+".join((
                    _ofa_final_expand(b.hw_in, b.cin, b.mid),
                    f"AvgPool2D-input:{_shape(b.hw_in, b.hw_in, b.mid)}-output:"
                    f"{_shape(1, 1, b.mid)}",
                    f"Conv_2-input:{_shape(1, 1, b.mid)}-output:{_shape(1, 1, mix)}",
                    f"Logits-input:{_shape(1, 1, mix)}-output:{b.classes}",
                )))
            else:
                raise MissingLatencyError(
                    f"the {self.name} keying has no rule for block kind {b.kind!r} (stage "
                    f"{b.stage}); it keys firstconv, mbconv and the head")
        return out


def _ofa_final_expand(h: int, cin: int, cout: int) -> str:
    return f"Conv_1-input:{_shape(h, h, cin)}-output:{_shape(h, h, cout)}"


#: space name -> its key scheme.
KEY_SCHEMES: Registry[KeyScheme] = Registry("latency key scheme")


def register_key_scheme(space: str, scheme: KeyScheme) -> None:
    """Key the blocks of ``space`` with ``scheme`` (a duplicate space name raises)."""
    KEY_SCHEMES.add(space, scheme)


def get_key_scheme(space: str) -> KeyScheme:
    """The key scheme of ``space``.

    Raises:
        UnknownNameError: no scheme for that space (the message lists the keyed spaces).
    """
    return KEY_SCHEMES.get(space)


_NNMETER = NnMeterHybridKeys()
_OFA = OfaKeys()
register_key_scheme("elasticvit", _NNMETER)
register_key_scheme("elasticvit_efficient", _NNMETER)
register_key_scheme("ofa_mbv3", _OFA)
register_key_scheme("ofa_mbv3_w12", _OFA)
