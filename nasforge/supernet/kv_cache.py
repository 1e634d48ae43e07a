"""The key/value cache of incremental (autoregressive) decoding.

A transformer decoder that generates one token at a time recomputes nothing for the tokens it
has already seen: each self-attention layer keeps their keys and values, and each new token's
query attends over the cache plus itself. Encoder-decoder attention (HAT) reads a fixed memory,
whose keys and values are projected once per layer and kept too ("static" keys in fairseq).

Call protocol (the same for a supernet and its static twin):

* ``cache = model.new_cache()`` (one slot per running decoder layer), then
  ``model(tokens, cache=cache)`` with the prompt, then with each new token; every call appends
  the new tokens' keys/values and advances :attr:`KVCache.length` (the position of the next
  token) by the number of tokens given.
* :meth:`KVCache.reorder` keeps the rows of a batch (beam search).

Shapes: keys and values are ``(B, H, T, d)``: batch, heads, cached tokens, head dim.
"""

from __future__ import annotations

import torch

__all__ = ["KV", "KVCache"]

#: keys and values of one layer, each (B, H, T, d).
KV = tuple[torch.Tensor, torch.Tensor]


class KVCache:
    """Per-layer keys/values of the tokens decoded so far (and of the encoder memory).

    Args:
        num_layers: decoder layers that run (the active depth).

    Attributes:
        length: tokens cached so far, i.e. the position of the next token.
        self_kv: per layer, the self-attention keys/values (``None`` before the first call).
        cross_kv: per layer, the projected encoder memory (``None`` until projected).
    """

    def __init__(self, num_layers: int) -> None:
        if num_layers < 1:
            raise ValueError(f"`num_layers >= 1` must hold, but got {num_layers=}")
        self.length = 0
        self.self_kv: list[KV | None] = [None] * num_layers
        self.cross_kv: list[KV | None] = [None] * num_layers

    @property
    def num_layers(self) -> int:
        return len(self.self_kv)

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> KV:
        """Add the new tokens' ``k, v`` (B, H, T_new, d) to ``layer``; return all (B, H, T, d)."""
        past = self.self_kv[layer]
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        self.self_kv[layer] = (k, v)
        return k, v

    def advance(self, tokens: int) -> None:
        """Move :attr:`length` past ``tokens`` new tokens (called once per forward)."""
        self.length += tokens

    def reorder(self, index: torch.Tensor) -> None:
        """Keep batch rows ``index`` (B',) of every cached tensor (beam search)."""
        for store in (self.self_kv, self.cross_kv):
            for i, kv in enumerate(store):
                if kv is not None:
                    store[i] = (kv[0].index_select(0, index), kv[1].index_select(0, index))

    def __repr__(self) -> str:
        return f"KVCache(num_layers={self.num_layers}, length={self.length})"
