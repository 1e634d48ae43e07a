"""The decoder-only language model (``elastic_lm``): its forward, once, and its static twin.

Paper:
    MatFormer: Nested Transformer for Elastic Inference, https://arxiv.org/abs/2310.07707

A GPT-style model: token embedding plus a learned position embedding (``context_length``
rows), pre-norm blocks (:class:`~nasforge.supernet.static._transformer.PreNormBlock`: causal
multi-head self-attention, GELU FFN), a final LayerNorm and an output projection tied to the
token embedding (or a separate bias-free linear). :class:`LMForward` is the forward shared by
:class:`StaticLM` (the extracted twin) and :class:`~nasforge.supernet._elastic_lm.
ElasticLMSupernet`: the full causal sequence, or new tokens after a :class:`KVCache`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import InvalidInputError
from nasforge.supernet.kv_cache import KVCache
from nasforge.supernet.static._transformer import FFN
from nasforge.supernet.static._transformer import MultiheadAttention
from nasforge.supernet.static._transformer import PreNormBlock
from nasforge.supernet.static._transformer import causal_mask

__all__ = ["LMForward", "StaticLM"]


class LMForward(nn.Module):
    """Forward of the decoder-only LM over ``embed``, ``pos``, the running blocks, ``ln_f``.

    Subclasses provide the modules, :meth:`running_blocks`, :meth:`logits` and
    :attr:`context_length`.
    """

    embed: nn.Module
    pos: nn.Module
    ln_f: nn.Module

    @property
    def context_length(self) -> int:
        """Positions the model can attend over (the arch's context length)."""
        raise NotImplementedError

    def running_blocks(self) -> list[PreNormBlock]:
        """The blocks that run, in order."""
        raise NotImplementedError

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D) final features -> (B, T, V)."""
        raise NotImplementedError

    def new_cache(self) -> KVCache:
        """An empty :class:`KVCache` for incremental decoding with this model."""
        return KVCache(len(self.running_blocks()))

    def forward(self, tokens: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Next-token logits.

        Args:
            tokens: (B, T) token ids: the whole sequence, or (with ``cache``) the new tokens.
            cache: the keys/values of the tokens before ``tokens`` (:meth:`new_cache`); it is
                extended by this call.

        Returns:
            (B, T, V) logits; row ``t`` predicts the token after ``tokens[:, t]``.

        Raises:
            InvalidInputError: the sequence (cached plus new) is longer than the context, or
                the cache was made for another depth.
        """
        blocks = self.running_blocks()
        t = tokens.shape[1]
        past = 0 if cache is None else cache.length
        if past + t > self.context_length:
            raise InvalidInputError(
                f"{past + t} tokens exceed the context length {self.context_length}; feed at "
                f"most {self.context_length} tokens (cached plus new)"
            )
        if cache is not None and cache.num_layers != len(blocks):
            raise InvalidInputError(f"the cache has {cache.num_layers} layers, the model "
                                    f"{len(blocks)}; make it with new_cache() after set_active")
        positions = torch.arange(past, past + t, device=tokens.device)
        x = self.embed(tokens) + self.pos(positions).unsqueeze(0)
        mask = causal_mask(t, past, x)
        for i, block in enumerate(blocks):
            x = block(x, mask, cache, i)
        if cache is not None:
            cache.advance(t)
        return self.logits(self.ln_f(x))


class StaticLM(LMForward):
    """A plain decoder-only LM: the twin of one ``elastic_lm`` architecture.

    Args:
        vocab_size: vocabulary size.
        embed_dim: model width.
        ffn_dims: per layer, the FFN hidden width.
        heads: per layer, the attention heads.
        head_dim: width of one head.
        context_length: positions (learned position rows).
        tied: output projection tied to the token embedding.
    """

    def __init__(self, vocab_size: int, embed_dim: int, ffn_dims: tuple[int, ...],
                 heads: tuple[int, ...], head_dim: int, context_length: int, tied: bool = True
                 ) -> None:
        super().__init__()
        d = embed_dim
        self._context = context_length
        self.embed = nn.Embedding(vocab_size, d)
        self.pos = nn.Embedding(context_length, d)
        self.blocks = nn.ModuleList([
            PreNormBlock(nn.LayerNorm(d), MultiheadAttention(d, d, h * head_dim, h),
                         nn.LayerNorm(d), FFN(d, f, "gelu"))
            for f, h in zip(ffn_dims, heads, strict=True)
        ])
        self.ln_f = nn.LayerNorm(d)
        self.head = None if tied else nn.Linear(d, vocab_size, bias=False)

    @property
    def context_length(self) -> int:
        return self._context

    def running_blocks(self) -> list[PreNormBlock]:
        return list(self.blocks)  # type: ignore[arg-type]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.head is None:
            return F.linear(x, self.embed.weight)  # type: ignore[arg-type]
        return self.head(x)
