"""Dynamic attention of ElasticViT, with the softmax / linear / window kinds of the efficient space.

Papers:
    ElasticViT: Conflict-aware Supernet Training for Deploying Fast Vision Transformer on
    Diverse Mobile Devices, https://arxiv.org/abs/2303.09730
    Neural Architecture Search on Efficient Transformers and Beyond,
    https://arxiv.org/abs/2207.13955 (attention kinds mixed per stage)

One layer holds max-size q, k, v, depthwise-V and projection weights, shared by every kind.
Heads are prefix slices: q/k rows ``[:heads * head_dim]``; V (``v_scale * C`` wide) is the prefix
``[:heads * head_dim * v_scale]`` split into ``heads`` consecutive chunks, exactly as the static
``Attention``. The relative-position bias table is sized for the largest token grid ``G`` of the
stage (at the space's largest resolution) and the largest head count; a grid ``g`` uses the
central offsets, i.e. row ``(dy + G - 1) * (2G - 1) + (dx + G - 1)`` for offset ``(dy, dx)`` —
the static ``Attention._bias`` convention. The ``window`` kind has its own table of the window
grid. The math mirrors the static layer call by call.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import InvalidInputError
from nasforge.search_spaces.block import Block
from nasforge.supernet.base import DynamicLayer
from nasforge.supernet.base import SupernetSpec
from nasforge.supernet.base import _require
from nasforge.supernet.layers import prefixed
from nasforge.supernet.ops import DynamicDepthwiseConv2d
from nasforge.supernet.ops import DynamicLayerNorm
from nasforge.supernet.ops import DynamicLinear
from nasforge.supernet.static._layers import bias_index_for
from nasforge.supernet.static._layers import relative_position_index

__all__ = ["DynamicAttention", "linear_attention", "softmax_attention", "window_attention"]

Tensors = dict[str, torch.Tensor]


def _bias(table: torch.Tensor, index: torch.Tensor, table_grid: int, grid: int, heads: int
          ) -> torch.Tensor:
    """Bias of a ``grid`` map from a ``table_grid`` table: (heads, grid**2, grid**2)."""
    if grid > table_grid:
        raise InvalidInputError(
            f"the token grid {grid} exceeds the relative-position table's {table_grid}; feed "
            "inputs no larger than the space's largest resolution"
        )
    idx = bias_index_for(index, table_grid, grid)
    return table[idx.reshape(-1), :heads].view(grid * grid, grid * grid, heads).permute(2, 0, 1)


def softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor,
                      head_dim: int) -> torch.Tensor:
    """Global softmax attention with an additive bias.

    Args:
        q: (B, H, N, d); k: (B, H, N, d); v: (B, H, N, dv); bias: (H, N, N).

    Returns:
        (B, H, N, dv).
    """
    attn = (q @ k.transpose(-2, -1)) * (head_dim**-0.5)
    attn = attn + bias.unsqueeze(0)
    return attn.softmax(dim=-1) @ v


def linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """ReLU-kernel linear attention. q, k: (B, H, N, d); v: (B, H, N, dv) -> (B, H, N, dv)."""
    q, k = F.relu(q), F.relu(k)
    kv = k.transpose(-2, -1) @ v  # (B, H, d, dv)
    den = q @ k.sum(dim=-2, keepdim=True).transpose(-2, -1)  # (B, H, N, 1)
    return (q @ kv) / (den + 1e-6)


def window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, h: int, w: int,
                     heads: int, head_dim: int, vdim: int, ws: int, bias: torch.Tensor
                     ) -> torch.Tensor:
    """Non-overlapping ``ws x ws`` window attention, zero padding, padded keys masked.

    Args:
        q: (B, N, heads * head_dim); k: same; v: (B, N, heads * vdim); N = h * w.
        bias: (heads, ws**2, ws**2) relative-position bias per window offset.

    Returns:
        (B, N, heads * vdim).
    """
    b = q.shape[0]
    hp, wp = math.ceil(h / ws) * ws, math.ceil(w / ws) * ws

    def part(t: torch.Tensor, d: int) -> torch.Tensor:
        m = t.transpose(1, 2).reshape(b, -1, h, w)
        m = F.pad(m, (0, wp - w, 0, hp - h))
        m = m.view(b, heads, d, hp // ws, ws, wp // ws, ws)
        return m.permute(0, 1, 3, 5, 4, 6, 2).reshape(b, heads, -1, ws * ws, d)

    qw, kw, vw = part(q, head_dim), part(k, head_dim), part(v, vdim)
    attn = (qw @ kw.transpose(-2, -1)) * (head_dim**-0.5)
    attn = attn + bias.unsqueeze(0).unsqueeze(2)
    if hp != h or wp != w:
        valid = torch.zeros(hp, wp, dtype=torch.bool, device=q.device)
        valid[:h, :w] = True
        valid = valid.view(hp // ws, ws, wp // ws, ws).permute(0, 2, 1, 3).reshape(-1, ws * ws)
        attn = attn.masked_fill(~valid[None, None, :, None, :], float("-inf"))
    out = attn.softmax(dim=-1) @ vw  # (B, heads, windows, ws*ws, vdim)
    out = out.view(b, heads, hp // ws, wp // ws, ws, ws, vdim)
    out = out.permute(0, 2, 4, 3, 5, 1, 6).reshape(b, hp, wp, -1)[:, :h, :w]
    return out.reshape(b, h * w, -1)


def _crop_table(table: torch.Tensor, table_grid: int, grid: int, heads: int) -> torch.Tensor:
    """The static ``(2*grid-1)**2 x heads`` table: the central offsets of the big table."""
    g, big = grid, table_grid
    t = table.view(2 * big - 1, 2 * big - 1, -1)[big - g:big + g - 1, big - g:big + g - 1, :heads]
    return t.reshape((2 * g - 1) ** 2, heads)


class DynamicAttention(DynamicLayer):
    """``attention``: pre-norm MHSA with elastic width, heads, V scale and attention kind.

    Args:
        max_block: the position's block in the largest architecture (``bias_grid`` is the
            stage's largest token grid).
        spec: gives the attention kinds to support and the window size.
    """

    BOUNDED = ("cin", "cout", "heads")
    FIXED = ("kind", "head_dim")

    def __init__(self, max_block: Block, spec: SupernetSpec) -> None:
        super().__init__(max_block, spec)
        b = max_block
        c, hd = b.cin, b.head_dim
        v_max = b.heads * hd * b.v_scale
        self.norm = DynamicLayerNorm(c)
        self.q = DynamicLinear(c, b.heads * hd, bias=False)
        self.k = DynamicLinear(c, b.heads * hd, bias=False)
        self.v = DynamicLinear(c, v_max, bias=False)
        self.dw_v = DynamicDepthwiseConv2d(v_max, 3)
        self.act = nn.Hardswish()
        self.proj = DynamicLinear(v_max, c)
        self.grid = b.bias_grid if "softmax" in spec.attention_kinds else 0
        self.window_grid = spec.window if "window" in spec.attention_kinds else 0
        self.attention_bias: nn.Parameter | None = None
        self.window_bias: nn.Parameter | None = None
        if self.grid:
            self.attention_bias = nn.Parameter(torch.zeros((2 * self.grid - 1) ** 2, b.heads))
            nn.init.trunc_normal_(self.attention_bias, std=0.02)
            self.register_buffer("bias_index", relative_position_index(self.grid),
                                 persistent=False)
        if self.window_grid:
            self.window_bias = nn.Parameter(torch.zeros((2 * self.window_grid - 1) ** 2,
                                                        b.heads))
            nn.init.trunc_normal_(self.window_bias, std=0.02)
            self.register_buffer("window_index", relative_position_index(self.window_grid),
                                 persistent=False)

    def check(self, block: Block) -> None:
        super().check(block)
        m = self.max_block
        _require(block.attn in self.spec.attention_kinds, self, block,
                 f"attention kind {block.attn!r} not in {self.spec.attention_kinds}")
        _require(block.heads * block.v_scale <= m.heads * m.v_scale, self, block,
                 "V width exceeds the max")
        if block.attn == "softmax":
            _require(block.bias_grid <= self.grid, self, block,
                     f"bias grid exceeds the table's {self.grid}")
        if block.attn == "window":
            _require(block.bias_grid <= self.window_grid, self, block,
                     f"window exceeds the table's {self.window_grid}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H, W); ``C`` (hence heads = C / head_dim) from ``x``."""
        blk: Block = self.active  # type: ignore[assignment]
        b, c, h, w = x.shape
        hd = blk.head_dim
        heads = c // hd
        vdim = hd * blk.v_scale
        t = x.flatten(2).transpose(1, 2)  # (B, N, C)
        y = self.norm(t)
        q, k, v = self.q(y, heads * hd), self.k(y, heads * hd), self.v(y, heads * vdim)
        v = self.dw_v(v.transpose(1, 2).reshape(b, -1, h, w), 3).flatten(2).transpose(1, 2)
        if blk.attn == "window":
            ws = min(blk.window, h, w)
            bias = _bias(self.window_bias, self.window_index, self.window_grid, ws, heads)  # type: ignore[arg-type]
            out = window_attention(q, k, v, h, w, heads, hd, vdim, ws, bias)
        else:
            n = h * w
            qh = q.view(b, n, heads, hd).transpose(1, 2)
            kh = k.view(b, n, heads, hd).transpose(1, 2)
            vh = v.view(b, n, heads, vdim).transpose(1, 2)
            if blk.attn == "softmax":
                bias = _bias(self.attention_bias, self.bias_index, self.grid, h, heads)  # type: ignore[arg-type]
                out = softmax_attention(qh, kh, vh, bias, hd)
            else:
                out = linear_attention(qh, kh, vh)
            out = out.transpose(1, 2).reshape(b, n, -1)
        out = self.proj(self.act(out), c)
        return (t + out).transpose(1, 2).reshape(b, c, h, w)

    def export(self, block: Block) -> Tensors:
        c, heads, hd = block.cin, block.heads, block.head_dim
        vw = heads * hd * block.v_scale
        out = {**prefixed("norm", self.norm.export(c)),
               **prefixed("q", self.q.export(c, heads * hd)),
               **prefixed("k", self.k.export(c, heads * hd)),
               **prefixed("v", self.v.export(c, vw)),
               **prefixed("dw_v", self.dw_v.export(vw, 3)),
               **prefixed("proj", self.proj.export(vw, c))}
        if block.bias_grid and block.attn == "softmax":
            out["attention_bias"] = _crop_table(self.attention_bias, self.grid,  # type: ignore[arg-type]
                                                block.bias_grid, heads)
        elif block.bias_grid and block.attn == "window":
            out["attention_bias"] = _crop_table(self.window_bias, self.window_grid,  # type: ignore[arg-type]
                                                block.bias_grid, heads)
        return out
