"""ElasticViT search space and its efficient-attention variant.

Papers:
    ElasticViT: Conflict-aware Supernet Training for Deploying Fast Vision Transformer on
    Diverse Mobile Devices, https://arxiv.org/abs/2303.09730
    Neural Architecture Search on Efficient Transformers and Beyond,
    https://arxiv.org/abs/2207.13955 (mixing attention kinds per stage)

The macro structure is the ElasticViT repository's (microsoft/Moonlit, ``ElasticViT/models``):
3x3 s2 first conv, a stem of expand-1 MBConvs, two MBConv stages (C2 with SE), four transformer
stages each opened by a reduction MBConv (expand 6, k3, SE), and the MobileNetV3-style head.
Transformer-stage feature maps use ceil(x / 2); CNN stages floor (they are always even).

FLOPs conventions (MACs) — ``flops`` counts what the built module executes; ``flops_reference``
reproduces the repository's ``compute_flops``, which differs in these documented places:

* the 3x3 depthwise conv on V is counted as ``N*v*H`` (as if 1x1) there, ``9*N*v*H`` here;
* softmax is counted as ``H*N^2`` there, not at all here (not a multiply-accumulate);
* stride-2 MBConvs count a 1x1 shortcut ``C_in*C*R^2`` there even when ``C_in == C`` (the module
  then adds the pooled input without a conv); here only when the conv runs;
* the reduction MBConv of a transformer stage counts neither SE nor shortcut there;
* a stride-2 layer's expansion conv is counted at ``(2R)^2`` there, at the true input size here.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from typing import ClassVar

import numpy as np

from nasforge.errors import InvalidArchitectureError
from nasforge.search_spaces.arch import Arch
from nasforge.search_spaces.block import Block
from nasforge.search_spaces.block import block_flops
from nasforge.search_spaces.block import block_flops_reference
from nasforge.search_spaces.block import block_params
from nasforge.search_spaces.block import register_block_kind
from nasforge.search_spaces.choice import Choice
from nasforge.search_spaces.choice_space import ChoiceSpace
from nasforge.search_spaces.registry import register_space

__all__ = [
    "ATTENTION_KINDS",
    "ElasticViTArch",
    "ElasticViTEfficientSpace",
    "ElasticViTSpace",
]

HEAD_DIM = 16
HEAD_MUL = 6
HEAD_DIM_OUT = 1984
WINDOW = 7
ATTENTION_KINDS = ("softmax", "linear", "window")

STAGES = ("stem", "C1", "C2", "T1", "T2", "T3", "T4")
STRIDES = (1, 2, 2, 2, 1, 2, 2)  # after the stride-2 first conv
RESOLUTIONS = (128, 160, 176, 192, 224, 256)
WIDTHS = (
    (16, 24),
    tuple(range(16, 33, 8)),
    tuple(range(16, 49, 8)),
    tuple(range(48, 97, 16)),
    tuple(range(80, 161, 16)),
    tuple(range(144, 289, 16)),
    tuple(range(160, 321, 16)),
)
DEPTHS = ((1, 2), (2, 3, 4, 5), (2, 3, 4, 5, 6), (1, 2, 3, 4, 5), *([(1, 2, 3, 4, 5, 6)] * 3))
KERNELS = (3, 5)
EXPANDS = (3, 4, 5, 6)
MLP_RATIOS = (2, 3, 4, 5)
V_SCALES = (2, 3, 4)
SE_STAGES = frozenset({"C2"})
_WIDTH_VALUES = tuple(np.asarray(w, dtype=np.int64) for w in WIDTHS)  # ascending, per stage


@dataclass(frozen=True)
class ElasticViTArch(Arch):
    """An ElasticViT architecture: per-stage choices, stages ordered (stem, C1, C2, T1..T4).

    Attributes:
        resolution: deployment input resolution.
        widths: output channels of the 7 stages (the stem width is also the first conv's).
        depths: layers per stage.
        kernels: depthwise kernel of the stem, C1 and C2 (shared within a stage).
        expands: expand ratio of C1 and C2.
        mlp_ratios: FFN ratio of T1..T4.
        v_scales: V width multiplier of T1..T4.
        attention: attention kind of T1..T4 (``softmax`` everywhere in ``elasticvit``).
    """

    resolution: int = 224
    widths: tuple[int, ...] = ()
    depths: tuple[int, ...] = ()
    kernels: tuple[int, ...] = ()
    expands: tuple[int, ...] = ()
    mlp_ratios: tuple[int, ...] = ()
    v_scales: tuple[int, ...] = ()
    attention: tuple[str, ...] = ()


def _conv_out(h: int, stride: int) -> int:
    # k3/p1 and k5/p2 convolutions: floor((h - 1) / s) + 1 == ceil(h / s)
    return (h - 1) // stride + 1


@register_space("elasticvit")
class ElasticViTSpace(ChoiceSpace):
    """ElasticViT (arXiv 2303.09730) exactly as its public repository defines it.

    Args:
        num_classes: classifier width (``get_space("elasticvit", num_classes=10)``).
    """

    arch_cls: ClassVar[type[Arch]] = ElasticViTArch
    description: ClassVar[str] = "ElasticViT hybrid CNN + ViT (MBConv stages, 4 transformer stages)"
    attention_kinds: ClassVar[tuple[str, ...]] = ("softmax",)

    def __init__(self, num_classes: int = 1000) -> None:
        self.num_classes = num_classes
        super().__init__()
        self._widths_at = self.columns("widths").start

    def choices(self) -> list[Choice]:
        return [
            Choice.one("resolution", RESOLUTIONS),
            Choice.each("widths", WIDTHS),
            Choice.each("depths", DEPTHS),
            Choice.repeat("kernels", KERNELS, 3),
            Choice.repeat("expands", EXPANDS, 2),
            Choice.repeat("mlp_ratios", MLP_RATIOS, 4),
            Choice.repeat("v_scales", V_SCALES, 4),
            Choice.repeat("attention", self.attention_kinds, 4),
        ]

    # ---- widths are non-decreasing from stage to stage -------------------------------------
    def _repair_row(self, row: list[int], rng: np.random.Generator | None) -> None:
        """A width below the previous stage's is redrawn uniformly among the options at or
        above it (``rng.integers``, one draw per repaired stage), the first one when ``rng``
        is None.

        Args:
            row: num_choices option indices, edited in place.
            rng: the random generator, or None.
        """
        s = self._widths_at
        for i in range(1, len(WIDTHS)):
            prev = WIDTHS[i - 1][row[s + i - 1]]
            if WIDTHS[i][row[s + i]] < prev:
                lo = bisect.bisect_left(WIDTHS[i], prev)  # the options at or above: lo..
                row[s + i] = lo + int(rng.integers(len(WIDTHS[i]) - lo)) if rng is not None else lo

    def _repair_indices(self, idx: np.ndarray, rng: np.random.Generator | None) -> None:
        """Vectorised :meth:`_repair_row`: stage by stage, a width below the previous stage's is
        redrawn uniformly among the options at or above it (the first one when ``rng`` is None).

        Args:
            idx: (n, num_choices) option indices, edited in place.
            rng: the random generator, or None.
        """
        cols = self.columns("widths")
        w = idx[:, cols]  # (n, 7) width option indices
        prev = _WIDTH_VALUES[0][w[:, 0]]
        for i in range(1, len(WIDTHS)):
            values = _WIDTH_VALUES[i]
            cur = values[w[:, i]]
            bad = np.flatnonzero(cur < prev)
            if bad.size:
                lo = np.searchsorted(values, prev[bad], side="left")
                if rng is not None:
                    lo = lo + (rng.random(bad.size) * (len(values) - lo)).astype(np.int64)
                w[bad, i] = lo
                cur = values[w[:, i]]
            prev = cur
        idx[:, cols] = w

    def _check(self, arch: Arch) -> None:
        w = arch.widths  # type: ignore[attr-defined]
        for i in range(1, len(w)):
            if w[i] < w[i - 1]:
                raise InvalidArchitectureError(
                    f"{self.name}: widths must be non-decreasing from stage to stage, but "
                    f"widths[{i}] = {w[i]} ({STAGES[i]}) < widths[{i - 1}] = {w[i - 1]} "
                    f"({STAGES[i - 1]})"
                )

    def size(self) -> int:
        # number of non-decreasing width chains, by dynamic programming over stages
        counts = {w: 1 for w in WIDTHS[0]}
        for opts in WIDTHS[1:]:
            counts = {w: sum(n for p, n in counts.items() if p <= w) for w in opts}
        chains = sum(counts.values())
        other = math.prod(len(o) for o in self._flat) // math.prod(len(o) for o in WIDTHS)
        return chains * other

    # ---- blocks --------------------------------------------------------------------------
    def blocks(self, arch: Arch) -> list[Block]:
        a: ElasticViTArch = arch  # type: ignore[assignment]
        return list(_elasticvit_blocks(a, self.num_classes))

    # per-stage cached sums of the block costs (the hot path of search and sampling)
    def _costs(self, arch: Arch, which: int) -> int:
        keys = _stage_keys(arch, self.num_classes)  # type: ignore[arg-type]
        return int(sum(_stage_costs(*k)[which] for k in keys))

    def flops(self, arch: Arch) -> int:
        return self._costs(arch, 0)

    def flops_reference(self, arch: Arch) -> int:
        return self._costs(arch, 1)

    def params(self, arch: Arch) -> int:
        return self._costs(arch, 2)


def _elasticvit_blocks(a: ElasticViTArch, num_classes: int) -> tuple[Block, ...]:
    out: list[Block] = []
    for stage in _stage_keys(a, num_classes):
        out.extend(_stage_blocks(*stage))
    return tuple(out)


def _stage_keys(a: ElasticViTArch, num_classes: int) -> list[tuple[Any, ...]]:
    """One hashable key per stage; every stage's blocks are a pure function of its key."""
    hs = _SIZES[a.resolution]
    w, d = a.widths, a.depths
    keys: list[tuple[Any, ...]] = [("first", a.resolution, w[0], d[0], a.kernels[0])]
    keys.append(("C", 1, hs[1], w[0], w[1], d[1], a.kernels[1], a.expands[0]))
    keys.append(("C", 2, hs[2], w[1], w[2], d[2], a.kernels[2], a.expands[1]))
    for t in range(4):
        keys.append(("T", 3 + t, hs[3 + t], w[2 + t], w[3 + t], d[3 + t], a.mlp_ratios[t],
                     a.v_scales[t], a.attention[t]))
    keys.append(("head", hs[7], w[6], num_classes))
    return keys


def _sizes(res: int) -> tuple[int, ...]:
    """Input side of each stage (stem, C1, C2, T1..T4) and of the head, for ``res``."""
    h = _conv_out(res, 2)
    out = [h]
    for s in range(1, 7):
        h = _conv_out(h, STRIDES[s])
        out.append(h)
    # out[i] is the *output* side of stage i; stage i's input is out[i - 1]
    return (out[0], *out[:6], out[6])


_SIZES = {r: _sizes(r) for r in RESOLUTIONS}


@lru_cache(maxsize=1 << 18)
def _stage_blocks(*key: Any) -> tuple[Block, ...]:
    return tuple(_LAYERS[args][0] for args, n in _stage_layers(key) for _ in range(n))


@lru_cache(maxsize=1 << 18)
def _stage_costs(*key: Any) -> tuple[int, int, int]:
    """(flops, flops_reference, params) of a stage: the sum over its blocks' cost rules."""
    f = r = p = 0
    for args, n in _stage_layers(key):
        _, bf, br, bp = _layer(args)
        f, r, p = f + n * bf, r + n * br, p + n * bp
    return f, r, p


_LAYERS: dict[tuple[Any, ...], tuple[Block, int, int, int]] = {}


def _layer(args: tuple[Any, ...]) -> tuple[Block, int, int, int]:
    """The block of a layer key and its cost triple, memoised (few distinct layers exist)."""
    hit = _LAYERS.get(args)
    if hit is None:
        b = Block(*args[0], **dict(args[1]))
        hit = _LAYERS[args] = (b, block_flops(b), block_flops_reference(b), block_params(b))
    return hit


def _L(*pos: Any, **kw: Any) -> tuple[Any, ...]:
    key = (pos, tuple(sorted(kw.items())))
    _layer(key)
    return key


def _stage_layers(key: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], int]]:
    """The layers of a stage as (layer key, repeat count), in order."""
    if key[0] == "first":
        _, res, c0, depth, kernel = key
        h = _conv_out(res, 2)
        return [(_L("firstconv", "first", res, h, 3, c0, stride=2, kernel=3, act="hswish"), 1),
                *_cnn_layers("stem", h, c0, c0, depth, kernel, 1, 1)]
    if key[0] == "C":
        _, s, h, cin, cout, depth, kernel, e = key
        return _cnn_layers(STAGES[s], h, cin, cout, depth, kernel, e, STRIDES[s])
    if key[0] == "T":
        _, s, h, cin, cout, depth, mlp, vs, kind = key
        stage, stride = STAGES[s], STRIDES[s]
        h_out = _conv_out(h, stride)
        mid = cin * 6
        ds = _L("transds", stage, h, h_out, cin, cout, stride=stride, kernel=3, mid=mid, expand=6,
                se_mid=mid // 4, act="hswish", shortcut="avgpool_conv")
        window = min(WINDOW, h_out) if kind == "window" else 0
        grid = h_out if kind == "softmax" else window
        attn = _L("attention", stage, h_out, h_out, cout, cout, heads=cout // HEAD_DIM,
                  head_dim=HEAD_DIM, v_scale=vs, attn=kind, window=window, bias_grid=grid,
                  act="hswish", shortcut="identity")
        ffn = _L("ffn", stage, h_out, h_out, cout, cout, mid=cout * mlp, expand=mlp, act="hswish",
                 shortcut="identity")
        return [(ds, 1)] + [(attn, 1), (ffn, 1)] * depth
    _, h, c, classes = key
    return [(_L("head", "head", h, 1, c, c * HEAD_MUL, mid=c * HEAD_MUL, out_dim=HEAD_DIM_OUT,
                classes=classes, act="hswish"), 1)]


def _cnn_layers(stage: str, h: int, cin: int, cout: int, depth: int, kernel: int, e: int,
                stride0: int) -> list[tuple[tuple[Any, ...], int]]:
    out = []
    se = stage in SE_STAGES
    h_out = _conv_out(h, stride0)
    mid = cin * e
    out.append((_L("mbconv", stage, h, h_out, cin, cout, stride=stride0, kernel=kernel, mid=mid,
                   expand=e, se_mid=mid // 4 if se else 0, act="hswish",
                   shortcut="avgpool_conv"), 1))
    if depth > 1:
        mid = cout * e
        out.append((_L("mbconv", stage, h_out, h_out, cout, cout, stride=1, kernel=kernel, mid=mid,
                       expand=e, se_mid=mid // 4 if se else 0, act="hswish",
                       shortcut="avgpool_conv"), depth - 1))
    return out


# ---- cost rules ------------------------------------------------------------------------------
def _firstconv_flops(b: Block) -> int:
    return b.cin * b.cout * b.kernel**2 * b.hw_out**2


def _firstconv_params(b: Block) -> int:
    return b.cin * b.cout * b.kernel**2 + 2 * b.cout


def _firstconv_ref(b: Block) -> int:
    # the repo's `3 * C0 * r//2 * r//2 * 9` (Python precedence, left to right)
    return ((3 * b.cout * b.hw_in) // 2 * b.hw_in) // 2 * 9


def _mbconv_flops(b: Block) -> int:
    total = 0
    if b.expand > 1:
        total += b.cin * b.mid * b.hw_in**2
    total += b.mid * b.kernel**2 * b.hw_out**2 + 2 * b.mid * b.se_mid + b.mid * b.cout * b.hw_out**2
    if b.shortcut == "avgpool_conv" and b.cin != b.cout:
        total += b.cin * b.cout * b.hw_out**2
    return total


def _mbconv_params(b: Block) -> int:
    total = 0
    if b.expand > 1:
        total += b.cin * b.mid + 2 * b.mid
    total += b.mid * b.kernel**2 + 2 * b.mid + b.mid * b.cout + 2 * b.cout
    if b.se_mid:
        total += 2 * b.mid * b.se_mid + b.se_mid + b.mid
    if b.shortcut == "avgpool_conv" and b.cin != b.cout:
        total += b.cin * b.cout
    return total


def _mbconv_ref(b: Block) -> int:
    r = b.hw_out
    r_in = 2 * r if b.stride > 1 else r
    total = b.cin * b.mid * r_in**2 if b.expand > 1 else 0
    total += b.mid * b.kernel**2 * r**2 + b.mid * b.cout * r**2 + 2 * b.mid * (b.mid // 4) * (
        b.se_mid > 0)
    if b.stride == 2:
        total += b.cin * b.cout * r**2
    return total


def _transds_ref(b: Block) -> int:
    r = b.hw_out
    r_in = 2 * r if b.stride > 1 else r
    return b.cin * b.mid * r_in**2 + b.mid * 9 * r**2 + b.mid * b.cout * r**2


def _attention_flops(b: Block) -> int:
    n, c, h, d = b.hw_in**2, b.cin, b.heads, b.head_dim
    v = d * b.v_scale
    total = n * c * h * (2 * d + v) + 9 * n * h * v + n * h * v * c  # qkv, dw on V, proj
    if b.attn == "softmax":
        total += h * n * n * (d + v)
    elif b.attn == "window":
        nw = math.ceil(b.hw_in / b.window) ** 2
        total += nw * h * b.window**4 * (d + v)
    elif b.attn == "linear":
        total += 2 * h * n * d * v + h * n * d
    else:  # pragma: no cover - validated by the space
        raise ValueError(f"unknown attention kind {b.attn!r}")
    return total


def _attention_params(b: Block) -> int:
    c, h, d = b.cin, b.heads, b.head_dim
    v = d * b.v_scale
    total = 2 * c + c * h * (2 * d + v) + 9 * h * v + h * v * c + c
    if b.bias_grid:
        total += (2 * b.bias_grid - 1) ** 2 * h
    return total


def _attention_ref(b: Block) -> int:
    if b.attn != "softmax":  # ElasticViT has no rule for other kinds
        return _attention_flops(b)
    n, c, h, d = b.hw_in**2, b.cin, b.heads, b.head_dim
    v = d * b.v_scale
    return (h * n * n * d + h * n * n + h * n * n * v + n * c * (2 * d * h + v * h)
            + n * v * h * c + n * v * h)


def _ffn_flops(b: Block) -> int:
    return 2 * b.hw_in**2 * b.cin * b.mid


def _ffn_params(b: Block) -> int:
    return 2 * b.cin + b.cin * b.mid + b.mid + b.mid * b.cin + b.cin


def _head_flops(b: Block) -> int:
    return b.hw_in**2 * b.cin * b.mid + b.mid * b.out_dim + b.out_dim * b.classes


def _head_params(b: Block) -> int:
    return (b.cin * b.mid + b.mid + 2 * b.mid + b.mid * b.out_dim + b.out_dim
            + b.out_dim * b.classes + b.classes)


register_block_kind("firstconv", _firstconv_flops, _firstconv_params, _firstconv_ref)
register_block_kind("mbconv", _mbconv_flops, _mbconv_params, _mbconv_ref)
register_block_kind("transds", _mbconv_flops, _mbconv_params, _transds_ref)
register_block_kind("attention", _attention_flops, _attention_params, _attention_ref)
register_block_kind("ffn", _ffn_flops, _ffn_params)
register_block_kind("head", _head_flops, _head_params)


@register_space("elasticvit_efficient")
class ElasticViTEfficientSpace(ElasticViTSpace):
    """ElasticViT plus a per-stage attention kind: softmax, ReLU linear, or 7x7 window."""

    description: ClassVar[str] = (
        "ElasticViT + per-stage attention kind {softmax, linear, window} (arXiv 2207.13955)"
    )
    attention_kinds: ClassVar[tuple[str, ...]] = ATTENTION_KINDS
