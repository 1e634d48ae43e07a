"""The ``elastic_lm`` supernet: a decoder-only LM with nested widths, heads, depth and context.

Paper:
    MatFormer: Nested Transformer for Elastic Inference, https://arxiv.org/abs/2310.07707

One max-size model (the space's ``max_arch()``): token and position tables ``(V, D)`` and
``(C, D)``, ``L`` pre-norm blocks each with q/k/v/out weights for ``H`` heads of the space's fixed
head dim and an FFN of the largest hidden width, a final LayerNorm, and the output projection
tied to the token table (``tied=False``: a separate ``(D, V)`` linear). A subnet reads:

* embed dim ``D'``: the first ``D'`` columns of every table and LayerNorm, rows of every
  projection into the residual stream;
* per layer ``h`` heads: the first ``h * head_dim`` q/k/v units (whole heads, in order);
* per layer FFN ``f``: the first ``f`` hidden units (MatFormer's nested FFN);
* depth ``L'``: the first ``L'`` blocks;
* context ``C'``: the first ``C'`` position rows (longer inputs are refused).

API (also the static twin's, :class:`~nasforge.supernet.static._lm.StaticLM`):

* ``ElasticLMSupernet(space, vocab_size, tied=True, dropout=0.0)``;
* ``set_active(arch)``; ``forward(tokens (B, T)) -> logits (B, T, V)``;
* ``cache = net.new_cache()``; ``net(tokens (B, T_new), cache=cache)``: incremental decoding
  (one or more new tokens; logits of the new tokens);
* ``extract(arch)`` -> :class:`~nasforge.supernet.static._lm.StaticLM` with the slices copied.

Example:
    >>> import torch
    >>> from nasforge.search_spaces import get_space
    >>> space = get_space("elastic_lm")
    >>> net = ElasticLMSupernet(space, vocab_size=260).eval()
    >>> net.set_active(space.min_arch())
    >>> net(torch.zeros(1, 8, dtype=torch.long)).shape
    torch.Size([1, 8, 260])
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.search_spaces._elastic_lm import ElasticLMArch
from nasforge.supernet._transformer import TransformerSupernet
from nasforge.supernet.base import SupernetSpec
from nasforge.supernet.layers_transformer import ElasticEmbedding
from nasforge.supernet.layers_transformer import ElasticFFN
from nasforge.supernet.layers_transformer import ElasticMultiheadAttention
from nasforge.supernet.ops import DynamicLayerNorm
from nasforge.supernet.ops import DynamicLinear
from nasforge.supernet.registry import register_supernet
from nasforge.supernet.static._lm import LMForward
from nasforge.supernet.static._lm import StaticLM
from nasforge.supernet.static._transformer import PreNormBlock

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = ["ElasticLMSupernet"]

Tensors = dict[str, torch.Tensor]
_INIT_STD = 0.02  # GPT-2's embedding initialisation


def _prefixed(prefix: str, tensors: Tensors) -> Tensors:
    return {f"{prefix}.{k}": v for k, v in tensors.items()}


def lm_head_dim(space: SearchSpace) -> int:
    """The space's fixed attention head width."""
    return int(space.head_dim)  # type: ignore[attr-defined]


class ElasticLMSupernet(LMForward, TransformerSupernet):
    """The ``elastic_lm`` supernet (see the module docstring).

    Args:
        space: the ``elastic_lm`` space (or a variant of it).
        vocab_size: vocabulary size ``V`` (a build argument, like ``num_classes``).
        tied: tie the output projection to the token embedding.
        dropout: residual dropout in training mode.
    """

    def __init__(self, space: SearchSpace, vocab_size: int, tied: bool = True,
                 dropout: float = 0.0) -> None:
        TransformerSupernet.__init__(self, space, vocab_size, ElasticLMArch)
        top: ElasticLMArch = space.max_arch()  # type: ignore[assignment]
        d, hd = top.embed_dim, lm_head_dim(space)
        heads, ffn = max(top.self_attention_heads), max(top.ffn_embed_dim)
        self.head_dim = hd
        self.tied = tied
        self.embed = ElasticEmbedding(vocab_size, d, _INIT_STD)
        self.pos = ElasticEmbedding(top.context_length, d, _INIT_STD)
        self.blocks = nn.ModuleList([
            PreNormBlock(DynamicLayerNorm(d), ElasticMultiheadAttention(d, d, heads * hd, heads),
                         DynamicLayerNorm(d), ElasticFFN(d, ffn, "gelu"), dropout)
            for _ in range(top.layer_num)
        ])
        self.ln_f = DynamicLayerNorm(d)
        self.head = None if tied else DynamicLinear(d, vocab_size, bias=False)
        self._context = top.context_length

    # ---- LMForward -------------------------------------------------------------------------
    @property
    def context_length(self) -> int:
        return self._context

    def running_blocks(self) -> list[PreNormBlock]:
        arch: ElasticLMArch = self._require_active()  # type: ignore[assignment]
        return list(self.blocks[:arch.layer_num])  # type: ignore[arg-type]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        embed: ElasticEmbedding = self.embed  # type: ignore[assignment]
        if self.head is None:
            return F.linear(x, embed.active_weight())
        return self.head(x, self.num_classes)

    # ---- TransformerSupernet ---------------------------------------------------------------
    def _activate(self, arch: Arch) -> None:
        a: ElasticLMArch = arch  # type: ignore[assignment]
        embed: Any = self.embed
        pos: Any = self.pos
        embed.dim = pos.dim = a.embed_dim
        self._context = a.context_length
        blocks: list[Any] = list(self.blocks)
        for block, f, h in zip(blocks, a.ffn_embed_dim, a.self_attention_heads, strict=False):
            block.attn.set_active(h, h * self.head_dim)
            block.ffn.hidden = f

    def export(self, arch: Arch) -> Tensors:
        a: ElasticLMArch = arch  # type: ignore[assignment]
        d = a.embed_dim
        embed: Any = self.embed
        pos: Any = self.pos
        ln_f: Any = self.ln_f
        out = {**_prefixed("embed", embed.export(d)),
               **_prefixed("pos", pos.export(d, a.context_length)),
               **_prefixed("ln_f", ln_f.export(d))}
        for i, (f, h) in enumerate(zip(a.ffn_embed_dim, a.self_attention_heads, strict=True)):
            block: Any = self.blocks[i]
            inner = h * self.head_dim
            out.update(_prefixed(f"blocks.{i}", {
                **_prefixed("ln1", block.ln1.export(d)),
                **_prefixed("attn", block.attn.export(d, d, inner)),
                **_prefixed("ln2", block.ln2.export(d)),
                **_prefixed("ffn", block.ffn.export(d, f)),
            }))
        if self.head is not None:
            out.update(_prefixed("head", self.head.export(d, self.num_classes)))
        return out

    def build_twin(self, arch: Arch) -> StaticLM:
        a: ElasticLMArch = arch  # type: ignore[assignment]
        return StaticLM(self.num_classes, a.embed_dim, tuple(a.ffn_embed_dim),
                        tuple(a.self_attention_heads), self.head_dim, a.context_length,
                        tied=self.tied)

    def forward(self, tokens: torch.Tensor, cache: Any = None) -> torch.Tensor:
        """See :meth:`LMForward.forward`; raises ``NoActiveSubnetError`` before ``set_active``."""
        self._require_active()
        return LMForward.forward(self, tokens, cache)


register_supernet("elastic_lm", SupernetSpec(
    description="decoder-only LM supernet (MatFormer-style nested FFN, heads, depth, context)",
    builder=ElasticLMSupernet,
))
