"""Static (fixed-shape) layers that the block builders compose.

Every layer maps ``(B, C, H, W) -> (B, C', H', W')``; transformer layers flatten to tokens
internally. Parameter layouts are chosen so that a supernet's max-size weights slice to them
by prefix (``weight[:out, :in]``): attention keeps separate ``q``, ``k`` and ``v`` projections,
and V of width ``v_scale * C`` is split into ``C // head_dim`` consecutive head chunks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "FFN",
    "Attention",
    "ConvBNAct",
    "ElasticViTHead",
    "MBConv",
    "SqueezeExcite",
    "make_act",
    "relative_position_index",
]


def make_act(name: str) -> nn.Module:
    """``relu`` | ``hswish`` | ``none`` -> module."""
    if name == "relu":
        return nn.ReLU(inplace=False)
    if name == "hswish":
        return nn.Hardswish()
    if name == "none":
        return nn.Identity()
    raise ValueError(f"activation must be one of relu, hswish, none, but got {name!r}")


class ConvBNAct(nn.Module):
    """Conv (no bias) + BatchNorm + activation; ``padding = kernel // 2``."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
                 act: str = "none") -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = make_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, cin, H, W) -> (B, cout, H', W')."""
        return self.act(self.bn(self.conv(x)))


class SqueezeExcite(nn.Module):
    """SE: global pool, 1x1 reduce (ReLU), 1x1 expand (Hardsigmoid), scale."""

    def __init__(self, channels: int, mid: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, mid, 1, bias=True)
        self.expand = nn.Conv2d(mid, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        s = F.adaptive_avg_pool2d(x, 1)
        s = F.hardsigmoid(self.expand(F.relu(self.reduce(s))))
        return x * s


class MBConv(nn.Module):
    """Inverted bottleneck: [1x1 expand] -> kxk depthwise -> [SE] -> 1x1 project, + residual.

    Args:
        shortcut: ``identity`` adds the input when shapes match (MobileNet/OFA);
            ``avgpool_conv`` (ElasticViT) always adds a residual: the input average-pooled on
            stride 2 (padding 1 on odd sizes) and passed through a 1x1 conv when widths differ;
            ``none`` adds nothing.
    """

    def __init__(self, cin: int, cout: int, mid: int, kernel: int, stride: int, expand: int,
                 se_mid: int, act: str, shortcut: str) -> None:
        super().__init__()
        self.stride = stride
        self.shortcut = shortcut
        self.pw = ConvBNAct(cin, mid, 1, act=act) if expand > 1 else None
        self.dw = ConvBNAct(mid, mid, kernel, stride, groups=mid, act=act)
        self.se = SqueezeExcite(mid, se_mid) if se_mid else None
        self.pwl = ConvBNAct(mid, cout, 1, act="none")
        self.short_conv = (
            nn.Conv2d(cin, cout, 1, bias=False)
            if shortcut == "avgpool_conv" and cin != cout else None
        )
        self.add_identity = shortcut == "identity" and cin == cout and stride == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, cin, H, W) -> (B, cout, ceil(H / stride), ceil(W / stride))."""
        y = x if self.pw is None else self.pw(x)
        y = self.dw(y)
        if self.se is not None:
            y = self.se(y)
        y = self.pwl(y)
        if self.shortcut == "avgpool_conv":
            r = x
            if self.stride > 1:
                r = F.avg_pool2d(r, self.stride, padding=r.shape[-1] % 2)
            if self.short_conv is not None:
                r = self.short_conv(r)
            return y + r
        if self.add_identity:
            return y + x
        return y


def relative_position_index(grid: int) -> torch.Tensor:
    """Index into a ``(2*grid-1)**2`` bias table for every token pair of a ``grid x grid`` map.

    Returns:
        (grid**2, grid**2) long tensor; entry (i, j) encodes the offset of token j from i.
    """
    coords = torch.stack(torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij"))
    flat = coords.flatten(1)
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0) + (grid - 1)
    return rel[..., 0] * (2 * grid - 1) + rel[..., 1]


def bias_index_for(full: torch.Tensor, table_grid: int, grid: int) -> torch.Tensor:
    """Sub-grid of a ``table_grid`` index for a smaller ``grid`` map: (grid**2, grid**2)."""
    if grid == table_grid:
        return full
    g = table_grid
    return full.view(g, g, g, g)[:grid, :grid, :grid, :grid].reshape(grid * grid, grid * grid)


class Attention(nn.Module):
    """Pre-norm multi-head attention of ElasticViT with a residual connection.

    q and k are ``head_dim`` wide per head, V ``head_dim * v_scale``; a 3x3 depthwise conv runs
    on V; Hardswish precedes the output projection. ``kind``: ``softmax`` (global, with a learned
    relative-position bias), ``linear`` (ReLU-kernel linear attention, no bias), ``window``
    (non-overlapping ``window`` x ``window`` windows, zero padding, padded keys masked, bias per
    window offset).
    """

    def __init__(self, dim: int, heads: int, head_dim: int, v_scale: int, kind: str,
                 window: int = 0, bias_grid: int = 0) -> None:
        super().__init__()
        if kind not in ("softmax", "linear", "window"):
            raise ValueError(f"attention kind must be softmax, linear or window, got {kind!r}")
        self.heads, self.head_dim, self.kind, self.window = heads, head_dim, kind, window
        self.vdim = head_dim * v_scale
        vw = heads * self.vdim
        self.norm = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, heads * head_dim, bias=False)
        self.k = nn.Linear(dim, heads * head_dim, bias=False)
        self.v = nn.Linear(dim, vw, bias=False)
        self.dw_v = nn.Conv2d(vw, vw, 3, 1, 1, groups=vw, bias=False)
        self.act = nn.Hardswish()
        self.proj = nn.Linear(vw, dim)
        self.bias_grid = bias_grid
        if bias_grid:
            self.attention_bias = nn.Parameter(torch.zeros((2 * bias_grid - 1) ** 2, heads))
            nn.init.trunc_normal_(self.attention_bias, std=0.02)
            self.register_buffer("bias_index", relative_position_index(bias_grid),
                                 persistent=False)

    def _bias(self, grid: int) -> torch.Tensor:
        full: torch.Tensor = self.bias_index  # type: ignore[assignment]
        idx = bias_index_for(full, self.bias_grid, grid)
        return self.attention_bias[idx.reshape(-1)].view(grid * grid, grid * grid, -1).permute(
            2, 0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)  # (B, N, C)
        y = self.norm(t)
        q, k, v = self.q(y), self.k(y), self.v(y)
        v = self.dw_v(v.transpose(1, 2).reshape(b, -1, h, w)).flatten(2).transpose(1, 2)
        if self.kind == "window":
            out = self._window(q, k, v, h, w)
        else:
            n = h * w
            qh = q.view(b, n, self.heads, self.head_dim).transpose(1, 2)
            kh = k.view(b, n, self.heads, self.head_dim).transpose(1, 2)
            vh = v.view(b, n, self.heads, self.vdim).transpose(1, 2)
            out = self._softmax(qh, kh, vh, h) if self.kind == "softmax" else _linear_attn(
                qh, kh, vh)
            out = out.transpose(1, 2).reshape(b, n, -1)
        out = self.proj(self.act(out))
        return (t + out).transpose(1, 2).reshape(b, c, h, w)

    def _softmax(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, grid: int
                 ) -> torch.Tensor:
        attn = (q @ k.transpose(-2, -1)) * (self.head_dim**-0.5)
        attn = attn + self._bias(grid).unsqueeze(0)
        return attn.softmax(dim=-1) @ v

    def _window(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, h: int, w: int
                ) -> torch.Tensor:
        b = q.shape[0]
        ws = min(self.window, h, w)
        hp, wp = math.ceil(h / ws) * ws, math.ceil(w / ws) * ws

        def part(t: torch.Tensor, d: int) -> torch.Tensor:
            m = t.transpose(1, 2).reshape(b, -1, h, w)
            m = F.pad(m, (0, wp - w, 0, hp - h))
            # at most 6-D (XNNPACK's limit): batch and heads share the first dim
            m = m.reshape(b * self.heads, d, hp // ws, ws, wp // ws, ws)
            # -> (B, heads, windows, ws*ws, d)
            return m.permute(0, 2, 4, 3, 5, 1).reshape(b, self.heads, -1, ws * ws, d)

        qw, kw, vw = part(q, self.head_dim), part(k, self.head_dim), part(v, self.vdim)
        attn = (qw @ kw.transpose(-2, -1)) * (self.head_dim**-0.5)
        attn = attn + self._bias(ws).unsqueeze(0).unsqueeze(2)
        if hp != h or wp != w:  # padded keys: -inf added (a constant of the shapes)
            attn = attn + _padding_mask(h, w, hp, wp, ws, q.device)
        out = attn.softmax(dim=-1) @ vw  # (B, heads, windows, ws*ws, vdim)
        out = out.reshape(b * self.heads, hp // ws, wp // ws, ws, ws, self.vdim)
        out = out.permute(0, 1, 3, 2, 4, 5).reshape(b, self.heads, hp, wp, self.vdim)
        out = out.permute(0, 2, 3, 1, 4).reshape(b, hp, wp, -1)
        if hp != h or wp != w:
            out = out[:, :h, :w]
        return out.reshape(b, h * w, -1)


def _padding_mask(h: int, w: int, hp: int, wp: int, ws: int, device: torch.device
                  ) -> torch.Tensor:
    """0 for real keys, -inf for padding, per window: (1, 1, windows, 1, ws*ws)."""
    valid = torch.zeros(hp, wp, dtype=torch.bool, device=device)
    valid[:h, :w] = True
    valid = valid.view(hp // ws, ws, wp // ws, ws).permute(0, 2, 1, 3).reshape(-1, ws * ws)
    mask = torch.zeros(valid.shape, device=device).masked_fill(~valid, float("-inf"))
    return mask[None, None, :, None, :]


def _linear_attn(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """ReLU-kernel linear attention. q, k: (B, H, N, d); v: (B, H, N, dv) -> (B, H, N, dv)."""
    q, k = F.relu(q), F.relu(k)
    kv = k.transpose(-2, -1) @ v  # (B, H, d, dv)
    den = q @ k.sum(dim=-2, keepdim=True).transpose(-2, -1)  # (B, H, N, 1)
    return (q @ kv) / (den + 1e-6)


class FFN(nn.Module):
    """Pre-norm FFN ``C -> mid -> C`` with Hardswish and a residual connection."""

    def __init__(self, dim: int, mid: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mid)
        self.act = nn.Hardswish()
        self.fc2 = nn.Linear(mid, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)
        t = t + self.fc2(self.act(self.fc1(self.norm(t))))
        return t.transpose(1, 2).reshape(b, c, h, w)


class ElasticViTHead(nn.Module):
    """Per-token Linear C->6C + BN + Hardswish, token mean, Linear 6C->1984 + Hardswish,
    dropout, Linear 1984->classes."""

    def __init__(self, dim: int, mid: int, out_dim: int, classes: int, dropout: float = 0.2
                 ) -> None:
        super().__init__()
        self.fc0 = nn.Linear(dim, mid)
        self.bn = nn.BatchNorm1d(mid)
        self.fc1 = nn.Linear(mid, out_dim)
        self.act = nn.Hardswish()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(out_dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> logits (B, classes)."""
        t = self.fc0(x.flatten(2).transpose(1, 2))  # (B, N, 6C)
        t = self.act(self.bn(t.transpose(1, 2)))  # (B, 6C, N)
        # the token mean as a 4-D mean over (N, 1): the one form XNNPACK delegates
        t = t.unsqueeze(-1).mean(dim=(2, 3), keepdim=True).flatten(1)  # (B, 6C)
        return self.classifier(self.dropout(self.act(self.fc1(t))))
