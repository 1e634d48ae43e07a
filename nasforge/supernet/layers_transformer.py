"""Elastic transformer leaves: embedding, multi-head attention and FFN sliced from one max weight.

Papers:
    HAT: Hardware-Aware Transformers for Efficient Natural Language Processing,
    https://arxiv.org/abs/2005.14187 (elastic embed dim, FFN width, heads at a fixed qkv dim)
    MatFormer: Nested Transformer for Elastic Inference, https://arxiv.org/abs/2310.07707
    (the FFN hidden units as nested prefixes)

The OFA rule holds: each leaf keeps one max-size parameter per role and reads prefix slices of it
in ``forward`` (views through :func:`nasforge.supernet.ops.take`, so the slice-gradient store
works); nothing is copied or allocated. Input widths come from the input's shape; output widths
from the leaf's *active* attributes, which the supernet sets in ``set_active`` — so a leaf has
the call signature of its static counterpart (``nn.Embedding``, :class:`~nasforge.supernet.
static._transformer.MultiheadAttention`, :class:`~nasforge.supernet.static._transformer.FFN`) and
the containers of :mod:`nasforge.supernet.static._transformer` run both.

Slices (``D`` embed, ``I`` q/k/v width, ``F`` FFN hidden):

* embedding ``weight[:, :D]`` (the tied output projection reads the same view);
* attention ``q/k/v.weight[:I, :D]``, ``out.weight[:D, :I]``. HAT keeps ``I = qkv_dim`` fixed and
  varies the head count (head dim ``I / H``); the elastic LM fixes the head dim ``d`` and takes
  ``I = H * d`` (the first ``H`` heads);
* FFN ``fc1.weight[:F, :D]``, ``fc2.weight[:D, :F]`` (MatFormer's nesting).

``export(...)`` returns the views the static twin needs, keyed by its ``state_dict`` names.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.supernet.ops import DynamicLinear
from nasforge.supernet.ops import SlicedOp
from nasforge.supernet.static._transformer import AttentionBase

__all__ = ["ElasticEmbedding", "ElasticFFN", "ElasticMultiheadAttention"]

Tensors = dict[str, torch.Tensor]


def _prefixed(prefix: str, tensors: Tensors) -> Tensors:
    return {f"{prefix}.{k}": v for k, v in tensors.items()}


class ElasticEmbedding(SlicedOp, nn.Module):
    """An embedding table ``(num, max_dim)`` read at the active width ``dim`` (a column prefix).

    Args:
        num: rows (vocabulary size, or positions).
        max_dim: largest width.
        std: init standard deviation (HAT: ``max_dim ** -0.5``; GPT: 0.02).
        padding_idx: a row initialised to zero (fairseq's padding symbol), or ``None``.
    """

    def __init__(self, num: int, max_dim: int, std: float, padding_idx: int | None = None
                 ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num, max_dim))
        nn.init.normal_(self.weight, mean=0.0, std=std)
        if padding_idx is not None:
            with torch.no_grad():
                self.weight[padding_idx].zero_()
        self.dim = max_dim

    def active_weight(self, dim: int | None = None) -> torch.Tensor:
        """The view ``weight[:, :dim]`` (num, dim); ``dim`` defaults to the active width."""
        width = self.dim if dim is None else dim
        return self.take(self.weight, slice(0, self.weight.shape[0]), slice(0, width))

    def forward(self, index: torch.Tensor, dim: int | None = None) -> torch.Tensor:
        """index: (B, T) integers -> (B, T, dim) (``dim`` defaults to the active width)."""
        return F.embedding(index, self.active_weight(dim))

    def export(self, dim: int, rows: int | None = None) -> Tensors:
        """View of the first ``rows`` rows (all by default) at width ``dim``: ``weight``."""
        return {"weight": self.weight[:rows, :dim]}


class ElasticMultiheadAttention(AttentionBase):
    """Attention over max-size q/k/v/out weights, at the active ``heads`` and width ``inner``.

    Args:
        max_q_dim: largest query (and output) width.
        max_kv_dim: largest key/value input width.
        max_inner: largest q/k/v width.
        heads: the initial head count (set per subnet).
        bias: projections with biases.
    """

    def __init__(self, max_q_dim: int, max_kv_dim: int, max_inner: int, heads: int,
                 bias: bool = True) -> None:
        super().__init__()
        self.q = DynamicLinear(max_q_dim, max_inner, bias=bias)
        self.k = DynamicLinear(max_kv_dim, max_inner, bias=bias)
        self.v = DynamicLinear(max_kv_dim, max_inner, bias=bias)
        self.out = DynamicLinear(max_inner, max_q_dim, bias=bias)
        self.heads = heads
        self.inner = max_inner

    def set_active(self, heads: int, inner: int) -> None:
        """Use ``heads`` heads over the first ``inner`` q/k/v units (head dim inner / heads)."""
        self.heads, self.inner = heads, inner

    def project(self, which: str, x: torch.Tensor, out: int) -> torch.Tensor:
        layer: DynamicLinear = getattr(self, which)
        return layer(x, out if which == "out" else self.inner)

    def export(self, q_dim: int, kv_dim: int, inner: int) -> Tensors:
        """Views keyed ``q.*``, ``k.*``, ``v.*``, ``out.*`` (static ``MultiheadAttention``)."""
        return {**_prefixed("q", self.q.export(q_dim, inner)),
                **_prefixed("k", self.k.export(kv_dim, inner)),
                **_prefixed("v", self.v.export(kv_dim, inner)),
                **_prefixed("out", self.out.export(inner, q_dim))}


class ElasticFFN(nn.Module):
    """Feed-forward ``D -> hidden -> D`` over max-size weights; ``hidden`` is a prefix.

    Args:
        max_dim: largest model width.
        max_hidden: largest hidden width.
        act: ``relu`` (HAT) or ``gelu`` (the elastic LM).
    """

    def __init__(self, max_dim: int, max_hidden: int, act: str) -> None:
        super().__init__()
        self.act = act
        self.fc1 = DynamicLinear(max_dim, max_hidden)
        self.fc2 = DynamicLinear(max_hidden, max_dim)
        self.hidden = max_hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D) -> (B, T, D) through the first ``hidden`` units."""
        h = self.fc1(x, self.hidden)
        return self.fc2(F.gelu(h) if self.act == "gelu" else F.relu(h), x.shape[-1])

    def export(self, dim: int, hidden: int) -> Tensors:
        """Views keyed ``fc1.*``, ``fc2.*`` (static ``FFN``)."""
        return {**_prefixed("fc1", self.fc1.export(dim, hidden)),
                **_prefixed("fc2", self.fc2.export(hidden, dim))}
