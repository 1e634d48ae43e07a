"""HAT's SubTransformer (encoder-decoder for translation): its forward, once, and its twin.

Paper:
    HAT: Hardware-Aware Transformers for Efficient Natural Language Processing,
    https://arxiv.org/abs/2005.14187 (code: mit-han-lab/hardware-aware-transformers, MIT)

As HAT's fairseq model (``transformer_super.py``): token embeddings scaled by ``sqrt(embed_dim)``
plus fairseq's sinusoidal positions (the table is built at the SuperTransformer's width and a
SubTransformer reads its first ``embed_dim`` columns; positions start at ``padding_idx + 1``, a
padding token gets the zero row), post-norm layers with ReLU FFNs, no final LayerNorm, the
output projection tied to the (shared) embedding for WMT or a separate ``embed_out`` (IWSLT).
Arbitrary encoder-decoder attention: decoder layer ``i`` attends over the last encoder layer's
output (``-1``), concatenated along time with the second-to-last (``1``) and also the third-to-last
(``2``); the source padding mask is repeated accordingly. HAT's encoder depth is fixed at 6 in
every task's space, so "last" layers are the arch's own.

Deviation: target positions are ``padding_idx + 1 + t`` for every target token (fairseq skips
padding in the count); targets are right-padded, so the tokens that matter get the same rows, and
the cached decode and the full forward agree.

:class:`HATForward` is shared by :class:`StaticHAT` (the twin) and
:class:`~nasforge.supernet._hat.HATSupernet`:

* ``encode(src (B, S)) -> EncoderOut`` (every encoder layer's output and the padding mask);
* ``decode(tgt (B, T), enc, cache=None) -> logits (B, T, V)`` (with a :class:`KVCache`: new
  tokens only; the projected encoder memory is cached on the first call);
* ``forward(src, tgt_in)`` = ``decode(tgt_in, encode(src))`` (teacher forcing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import InvalidInputError
from nasforge.supernet.kv_cache import KVCache
from nasforge.supernet.static._transformer import FFN
from nasforge.supernet.static._transformer import MultiheadAttention
from nasforge.supernet.static._transformer import PostNormDecoderLayer
from nasforge.supernet.static._transformer import PostNormEncoderLayer
from nasforge.supernet.static._transformer import causal_mask
from nasforge.supernet.static._transformer import padding_mask
from nasforge.supernet.static._transformer import sinusoidal_table

__all__ = ["PADDING_IDX", "EncoderOut", "HATForward", "StaticHAT"]

#: fairseq's dictionary: ``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3.
PADDING_IDX = 1


@dataclass
class EncoderOut:
    """What the decoder reads from the encoder.

    Attributes:
        states: every running encoder layer's output, each (B, S, C_enc), first to last.
        pad: additive key mask of the source padding (B, 1, 1, S).
    """

    states: list[torch.Tensor]
    pad: torch.Tensor

    def memory(self, ende: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The memory of a decoder layer with arbitrary-attention choice ``ende`` in
        ``{-1, 1, 2}``: (B, k * S, C_enc) and its mask (B, 1, 1, k * S), k = 1, 2, 3."""
        k = 1 if ende == -1 else ende + 1
        n = len(self.states)
        mems = [self.states[max(n - 1 - j, 0)] for j in range(k)]
        if k == 1:
            return mems[0], self.pad
        return torch.cat(mems, dim=1), torch.cat([self.pad] * k, dim=-1)


class HATForward(nn.Module):
    """Encoder-decoder forward over the subclass's embeddings and running layers."""

    positions: torch.Tensor  # (max positions, super embed dim) sinusoids, a buffer
    #: embedding dropout per part (the supernet scales HAT's rate per SubTransformer)
    dropout: dict[str, float] = {"encoder": 0.0, "decoder": 0.0}  # noqa: RUF012 (read-only)

    def token_embedding(self, part: str, tokens: torch.Tensor) -> torch.Tensor:
        """``part`` in ``encoder, decoder``: (B, T) ids -> (B, T, D_part)."""
        raise NotImplementedError

    def output_weight(self) -> torch.Tensor:
        """The output projection (V_tgt, D_dec)."""
        raise NotImplementedError

    def running_encoder(self) -> list[PostNormEncoderLayer]:
        raise NotImplementedError

    def running_decoder(self) -> list[PostNormDecoderLayer]:
        raise NotImplementedError

    def ende(self) -> tuple[int, ...]:
        """Per running decoder layer, HAT's ``decoder_arbitrary_ende_attn`` choice."""
        raise NotImplementedError

    def new_cache(self) -> KVCache:
        """An empty :class:`KVCache` for incremental decoding with this model."""
        return KVCache(len(self.running_decoder()))

    def _embed(self, part: str, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        x = self.token_embedding(part, tokens)
        d = x.shape[-1]
        x = math.sqrt(d) * x + F.embedding(positions, self.positions[:, :d])
        return F.dropout(x, self.dropout[part], self.training)

    def encode(self, src: torch.Tensor) -> EncoderOut:
        """src: (B, S) ids (``PADDING_IDX`` pads) -> every encoder layer's output (B, S, C)."""
        if src.shape[1] + PADDING_IDX + 1 > self.positions.shape[0]:
            raise InvalidInputError(f"a source of {src.shape[1]} tokens exceeds the "
                                    f"{self.positions.shape[0] - PADDING_IDX - 1} positions")
        keep = src.ne(PADDING_IDX).long()
        x = self._embed("encoder", src, torch.cumsum(keep, dim=1) * keep + PADDING_IDX)
        pad = padding_mask(src.eq(PADDING_IDX), x)
        states = []
        for layer in self.running_encoder():
            x = layer(x, pad)
            states.append(x)
        return EncoderOut(states, pad)

    def decode(self, tgt: torch.Tensor, enc: EncoderOut, cache: KVCache | None = None
               ) -> torch.Tensor:
        """Logits of the target tokens.

        Args:
            tgt: (B, T) previous target tokens (teacher forcing), or the new ones with ``cache``.
            enc: :meth:`encode`'s output.
            cache: keys/values of the earlier target tokens (:meth:`new_cache`), extended here.

        Returns:
            (B, T, V_tgt) logits.
        """
        layers = self.running_decoder()
        if cache is not None and cache.num_layers != len(layers):
            raise InvalidInputError(f"the cache has {cache.num_layers} layers, the decoder "
                                    f"{len(layers)}; make it with new_cache() after set_active")
        t = tgt.shape[1]
        past = 0 if cache is None else cache.length
        if past + t + PADDING_IDX + 1 > self.positions.shape[0]:
            raise InvalidInputError(f"{past + t} target tokens exceed the "
                                    f"{self.positions.shape[0] - PADDING_IDX - 1} positions")
        pos = torch.arange(past, past + t, device=tgt.device) + PADDING_IDX + 1
        x = self._embed("decoder", tgt, pos.unsqueeze(0).expand(tgt.shape[0], t))
        mask = causal_mask(t, past, x)
        for i, (layer, ende) in enumerate(zip(layers, self.ende(), strict=True)):
            mem, mem_mask = enc.memory(ende)
            kv = None if cache is None else cache.cross_kv[i]
            if kv is None:
                kv = layer.encoder_attn.memory(mem)
                if cache is not None:
                    cache.cross_kv[i] = kv
            x = layer(x, mask, cache, i, kv, mem_mask)
        if cache is not None:
            cache.advance(t)
        return F.linear(x, self.output_weight())

    def decode_step(self, tgt: torch.Tensor, enc: EncoderOut, cache: KVCache) -> torch.Tensor:
        """Incremental decoding: :meth:`decode` of the new tokens ``tgt`` (B, T_new) after
        ``cache``; returns (B, T_new, V_tgt)."""
        return self.decode(tgt, enc, cache)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits: src (B, S), tgt_in (B, T) -> (B, T, V_tgt)."""
        return self.decode(tgt_in, self.encode(src))


class StaticHAT(HATForward):
    """A plain SubTransformer: the twin of one HAT architecture.

    Args:
        arch: the HAT architecture (``HATArch`` fields).
        src_vocab: source vocabulary (== ``tgt_vocab`` when ``share_all``).
        tgt_vocab: target vocabulary.
        qkv_dim: HAT's fixed q/k/v width.
        pos_dim: the SuperTransformer's embed dim (the sinusoid table's width).
        max_positions: positions the table holds (fairseq: 1024).
        share_all: one embedding for encoder, decoder and output (WMT); else separate
            ``encoder_embed``, ``decoder_embed`` and ``embed_out`` (IWSLT).
    """

    def __init__(self, arch: object, src_vocab: int, tgt_vocab: int, qkv_dim: int,
                 pos_dim: int, max_positions: int, share_all: bool) -> None:
        super().__init__()
        a = arch
        de, dd = a.encoder_embed_dim, a.decoder_embed_dim  # type: ignore[attr-defined]
        self.share_all = share_all
        if share_all:
            self.embed = nn.Embedding(tgt_vocab, max(de, dd))
        else:
            self.encoder_embed = nn.Embedding(src_vocab, de)
            self.decoder_embed = nn.Embedding(tgt_vocab, dd)
            self.embed_out = nn.Linear(dd, tgt_vocab, bias=False)
        self.register_buffer("positions", sinusoidal_table(max_positions + PADDING_IDX + 1,
                                                           pos_dim, PADDING_IDX), persistent=False)
        self.encoder = nn.ModuleList([
            PostNormEncoderLayer(MultiheadAttention(de, de, qkv_dim, h), nn.LayerNorm(de),
                                 FFN(de, f, "relu"), nn.LayerNorm(de))
            for f, h in zip(a.encoder_ffn_embed_dim,  # type: ignore[attr-defined]
                            a.encoder_self_attention_heads, strict=True)  # type: ignore[attr-defined]
        ])
        self.decoder = nn.ModuleList([
            PostNormDecoderLayer(MultiheadAttention(dd, dd, qkv_dim, h), nn.LayerNorm(dd),
                                 MultiheadAttention(dd, de, qkv_dim, he), nn.LayerNorm(dd),
                                 FFN(dd, f, "relu"), nn.LayerNorm(dd))
            for f, h, he in zip(a.decoder_ffn_embed_dim,  # type: ignore[attr-defined]
                                a.decoder_self_attention_heads,  # type: ignore[attr-defined]
                                a.decoder_ende_attention_heads, strict=True)  # type: ignore[attr-defined]
        ])
        self._ende = tuple(a.decoder_arbitrary_ende_attn)  # type: ignore[attr-defined]
        self._dims = {"encoder": de, "decoder": dd}

    def token_embedding(self, part: str, tokens: torch.Tensor) -> torch.Tensor:
        if self.share_all:
            return F.embedding(tokens, self.embed.weight[:, :self._dims[part]])
        table: nn.Embedding = self.encoder_embed if part == "encoder" else self.decoder_embed
        return table(tokens)

    def output_weight(self) -> torch.Tensor:
        if self.share_all:
            return self.embed.weight[:, :self._dims["decoder"]]
        return self.embed_out.weight

    def running_encoder(self) -> list[PostNormEncoderLayer]:
        return list(self.encoder)  # type: ignore[arg-type]

    def running_decoder(self) -> list[PostNormDecoderLayer]:
        return list(self.decoder)  # type: ignore[arg-type]

    def ende(self) -> tuple[int, ...]:
        return self._ende
