"""Transformer layers shared by the language supernets and their static twins.

Papers:
    Attention Is All You Need, https://arxiv.org/abs/1706.03762
    HAT: Hardware-Aware Transformers for Efficient Natural Language Processing,
    https://arxiv.org/abs/2005.14187

The *containers* here (:class:`PreNormBlock` of the decoder-only LM, :class:`PostNormEncoderLayer`
and :class:`PostNormDecoderLayer` of HAT) are written once and hold either static leaves
(``nn.Linear``, ``nn.LayerNorm``: the extracted twin) or the elastic leaves of
:mod:`nasforge.supernet.layers_transformer` (the supernet): a leaf only has to keep the call
signature, so the supernet and its twin run the same code, call by call. The attention math
(:class:`AttentionBase`) is likewise one piece of code; a subclass only says how q, k, v and the
output are projected.

Shapes: activations are batch-first ``(B, T, C)``; per-head tensors ``(B, H, T, d)``. Masks are
additive float tensors broadcast to the scores ``(B, H, T_q, T_k)``: ``0`` where a key is seen,
``-inf`` where it is not.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.supernet.kv_cache import KV
from nasforge.supernet.kv_cache import KVCache

__all__ = [
    "FFN",
    "AttentionBase",
    "MultiheadAttention",
    "PostNormDecoderLayer",
    "PostNormEncoderLayer",
    "PreNormBlock",
    "causal_mask",
    "padding_mask",
    "sinusoidal_table",
]


def causal_mask(new: int, past: int, like: torch.Tensor) -> torch.Tensor | None:
    """Additive mask of ``new`` queries after ``past`` cached keys: (new, past + new).

    Query ``i`` (position ``past + i``) sees keys ``0 .. past + i``. ``None`` for one new token
    (it sees every key).
    """
    if new == 1:
        return None
    full = torch.full((new, past + new), float("-inf"), dtype=like.dtype, device=like.device)
    return torch.triu(full, diagonal=past + 1)


def padding_mask(pad: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Additive key mask (B, 1, 1, S) from a bool ``pad`` (B, S) that is True at padding."""
    zeros = torch.zeros(pad.shape, dtype=like.dtype, device=like.device)
    return zeros.masked_fill(pad, float("-inf"))[:, None, None, :]


def sinusoidal_table(positions: int, dim: int, padding_idx: int | None = None) -> torch.Tensor:
    """fairseq's (tensor2tensor's) sinusoids: (positions, dim), ``[sin | cos]`` halves.

    Row ``padding_idx`` is zero, as in fairseq's ``SinusoidalPositionalEmbedding``.
    """
    half = dim // 2
    scale = math.log(10000) / (half - 1)
    freq = torch.exp(torch.arange(half, dtype=torch.float) * -scale)
    angles = torch.arange(positions, dtype=torch.float).unsqueeze(1) * freq.unsqueeze(0)
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    if dim % 2 == 1:
        table = torch.cat([table, torch.zeros(positions, 1)], dim=1)
    if padding_idx is not None:
        table[padding_idx] = 0
    return table


def _split(t: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, T, H * d) -> (B, H, T, d)."""
    b, n, c = t.shape
    return t.view(b, n, heads, c // heads).transpose(1, 2)


class AttentionBase(nn.Module):
    """Multi-head attention with a KV cache; subclasses supply :meth:`project` and ``heads``.

    The scaled dot product is fairseq's: ``q`` is multiplied by ``d ** -0.5`` before ``q k^T``.
    """

    heads: int

    def project(self, which: str, x: torch.Tensor, out: int) -> torch.Tensor:
        """``which`` in ``q, k, v, out``: x (..., C_in) -> (..., width); ``out`` is the width
        the output projection must give (the query's ``C``); q/k/v ignore it."""
        raise NotImplementedError

    def memory(self, mem: torch.Tensor) -> KV:
        """Keys and values of an encoder memory (B, S, C_mem): each (B, H, S, d)."""
        return (_split(self.project("k", mem, 0), self.heads),
                _split(self.project("v", mem, 0), self.heads))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                cache: KVCache | None = None, layer: int = 0, memory: KV | None = None
                ) -> torch.Tensor:
        """Attend from ``x`` (B, T, C) to itself (plus ``cache``'s past) or to ``memory``.

        Args:
            x: queries (and, without ``memory``, keys/values) (B, T, C).
            mask: additive mask broadcast to (B, H, T, T_k), or ``None``.
            cache: self-attention: append this call's keys/values to slot ``layer`` and attend
                over all of them.
            layer: the cache slot.
            memory: cross-attention: precomputed keys/values (:meth:`memory`).

        Returns:
            (B, T, C).
        """
        heads = self.heads
        q = _split(self.project("q", x, 0), heads)
        if memory is not None:
            k, v = memory
        else:
            k, v = _split(self.project("k", x, 0), heads), _split(self.project("v", x, 0), heads)
            if cache is not None:
                k, v = cache.append(layer, k, v)
        scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
        if mask is not None:
            scores = scores + mask
        y = scores.softmax(dim=-1) @ v  # (B, H, T, d)
        b, _, n, _ = y.shape
        return self.project("out", y.transpose(1, 2).reshape(b, n, -1), x.shape[-1])


class MultiheadAttention(AttentionBase):
    """Static attention: ``q_dim -> inner`` (``heads`` heads of ``inner / heads``) -> ``q_dim``.

    Args:
        q_dim: query (and output) width.
        kv_dim: key/value input width (the encoder's, for cross-attention).
        inner: q/k/v width (HAT: its fixed ``qkv_dim``; the LM: heads * head dim).
        heads: number of heads.
        bias: projections with biases.
    """

    def __init__(self, q_dim: int, kv_dim: int, inner: int, heads: int, bias: bool = True
                 ) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(q_dim, inner, bias=bias)
        self.k = nn.Linear(kv_dim, inner, bias=bias)
        self.v = nn.Linear(kv_dim, inner, bias=bias)
        self.out = nn.Linear(inner, q_dim, bias=bias)

    def project(self, which: str, x: torch.Tensor, out: int) -> torch.Tensor:
        layer: nn.Linear = getattr(self, which)
        return layer(x)


class FFN(nn.Module):
    """Static feed-forward ``dim -> hidden -> dim`` with ``act`` (``relu`` or ``gelu``)."""

    def __init__(self, dim: int, hidden: int, act: str) -> None:
        super().__init__()
        self.act = act
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, dim) -> (B, T, dim)."""
        h = self.fc1(x)
        return self.fc2(F.gelu(h) if self.act == "gelu" else F.relu(h))


class PreNormBlock(nn.Module):
    """GPT-style decoder block: ``x + attn(ln1(x))``, then ``x + ffn(ln2(x))``.

    Args:
        ln1, attn, ln2, ffn: the leaves (static or elastic).
        dropout: residual-branch dropout rate.
    """

    def __init__(self, ln1: nn.Module, attn: AttentionBase, ln2: nn.Module, ffn: nn.Module,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.ln1, self.attn, self.ln2, self.ffn = ln1, attn, ln2, ffn
        self.dropout = dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, cache: KVCache | None,
                layer: int) -> torch.Tensor:
        """x: (B, T, C) -> (B, T, C); ``cache`` slot ``layer`` gets this call's keys/values."""
        p = self.dropout if self.training else 0.0
        x = x + F.dropout(self.attn(self.ln1(x), mask, cache, layer), p, self.training)
        return x + F.dropout(self.ffn(self.ln2(x)), p, self.training)


class PostNormEncoderLayer(nn.Module):
    """HAT's (fairseq's default) encoder layer: ``ln(x + attn(x))``, then ``ln(x + ffn(x))``.

    Names follow fairseq: ``self_attn``, ``self_attn_layer_norm``, ``ffn`` (``fc1``/``fc2``),
    ``final_layer_norm``.
    """

    def __init__(self, self_attn: AttentionBase, self_attn_layer_norm: nn.Module, ffn: nn.Module,
                 final_layer_norm: nn.Module, dropout: float = 0.0) -> None:
        super().__init__()
        self.self_attn, self.self_attn_layer_norm = self_attn, self_attn_layer_norm
        self.ffn, self.final_layer_norm = ffn, final_layer_norm
        self.dropout = dropout

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        """x: (B, S, C), ``pad`` an additive key mask (B, 1, 1, S) or ``None`` -> (B, S, C)."""
        p = self.dropout if self.training else 0.0
        x = self.self_attn_layer_norm(x + F.dropout(self.self_attn(x, pad), p, self.training))
        return self.final_layer_norm(x + F.dropout(self.ffn(x), p, self.training))


class PostNormDecoderLayer(nn.Module):
    """HAT's decoder layer: self-attention, encoder-decoder attention, FFN; each post-norm."""

    def __init__(self, self_attn: AttentionBase, self_attn_layer_norm: nn.Module,
                 encoder_attn: AttentionBase, encoder_attn_layer_norm: nn.Module, ffn: nn.Module,
                 final_layer_norm: nn.Module, dropout: float = 0.0) -> None:
        super().__init__()
        self.self_attn, self.self_attn_layer_norm = self_attn, self_attn_layer_norm
        self.encoder_attn, self.encoder_attn_layer_norm = encoder_attn, encoder_attn_layer_norm
        self.ffn, self.final_layer_norm = ffn, final_layer_norm
        self.dropout = dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, cache: KVCache | None,
                layer: int, memory: KV, memory_mask: torch.Tensor | None) -> torch.Tensor:
        """x: (B, T, C) -> (B, T, C).

        Args:
            x: decoder states.
            mask: causal additive mask (T, T_k) or ``None``.
            cache: self-attention cache (slot ``layer``).
            layer: the cache slot.
            memory: the encoder memory's keys/values for this layer (:meth:`AttentionBase.memory`).
            memory_mask: additive padding mask of the memory (B, 1, 1, S_mem) or ``None``.
        """
        p = self.dropout if self.training else 0.0
        a = self.self_attn(x, mask, cache, layer)
        x = self.self_attn_layer_norm(x + F.dropout(a, p, self.training))
        a = self.encoder_attn(x, memory_mask, memory=memory)
        x = self.encoder_attn_layer_norm(x + F.dropout(a, p, self.training))
        return self.final_layer_norm(x + F.dropout(self.ffn(x), p, self.training))
