"""HAT's SuperTransformer: one max-size encoder-decoder whose SubTransformers are slices.

Paper:
    HAT: Hardware-Aware Transformers for Efficient Natural Language Processing,
    https://arxiv.org/abs/2005.14187 (code: mit-han-lab/hardware-aware-transformers, MIT)

Built from the space's ``max_arch()`` and fixed numbers (``space.cfg``: ``qkv_dim``,
``max_positions``, ``shared_embeddings``): an embedding table of the largest width (shared by
encoder, decoder and output on WMT; separate source, target and ``embed_out`` tables on IWSLT),
6 post-norm encoder layers and 6 decoder layers, each attention with q/k/v/out weights of width
``qkv_dim`` (HAT: the head count varies, the head dim is ``qkv_dim / heads``; only the input and
output widths are sliced), FFNs of the largest hidden width. A SubTransformer reads the first
``encoder_embed_dim`` / ``decoder_embed_dim`` columns of its tables and LayerNorms, the first
``ffn`` hidden units of each FFN, the first ``decoder_layer_num`` decoder layers; each decoder
layer attends to the last 1-3 encoder layers (``decoder_arbitrary_ende_attn``), the
cross-attention keys reading the first ``encoder_embed_dim`` inputs. Dropout follows HAT's
``calc_dropout``: ``dropout * sub_embed_dim / super_embed_dim``.

API (also the static twin's, :class:`~nasforge.supernet.static._hat.StaticHAT`):

* ``HATSupernet(space, src_vocab, tgt_vocab=None, dropout=0.0)`` (vocabularies default to the
  space's; ``build_supernet(space, V)`` gives both ``V``);
* ``set_active(arch)``; ``forward(src (B, S), tgt_in (B, T)) -> logits (B, T, V)``;
* ``enc = encode(src)``; ``cache = new_cache()``; ``decode_step(tokens (B, T_new), enc, cache)``
  (incremental decoding; the encoder memory's keys/values are cached on the first step);
* ``extract(arch)`` -> :class:`~nasforge.supernet.static._hat.StaticHAT`.

Token ``1`` is fairseq's padding symbol (:data:`~nasforge.supernet.static._hat.PADDING_IDX`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

import torch
from torch import nn

from nasforge.search_spaces._hat import HAT_CFGS
from nasforge.search_spaces._hat import HATArch
from nasforge.supernet._transformer import TransformerSupernet
from nasforge.supernet.base import SupernetSpec
from nasforge.supernet.layers_transformer import ElasticEmbedding
from nasforge.supernet.layers_transformer import ElasticFFN
from nasforge.supernet.layers_transformer import ElasticMultiheadAttention
from nasforge.supernet.ops import DynamicLayerNorm
from nasforge.supernet.registry import register_supernet
from nasforge.supernet.static._hat import PADDING_IDX
from nasforge.supernet.static._hat import HATForward
from nasforge.supernet.static._hat import StaticHAT
from nasforge.supernet.static._transformer import PostNormDecoderLayer
from nasforge.supernet.static._transformer import PostNormEncoderLayer
from nasforge.supernet.static._transformer import sinusoidal_table

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = ["HATSupernet"]

Tensors = dict[str, torch.Tensor]


def _prefixed(prefix: str, tensors: Tensors) -> Tensors:
    return {f"{prefix}.{k}": v for k, v in tensors.items()}


class HATSupernet(HATForward, TransformerSupernet):
    """HAT's SuperTransformer (see the module docstring).

    Args:
        space: a ``hat_*`` space.
        src_vocab: source dictionary size (default: the space's).
        tgt_vocab: target dictionary size (default: ``src_vocab`` when given, else the space's).
        dropout: HAT's ``--dropout`` (scaled per SubTransformer); 0 disables it.

    Raises:
        ValueError: the task shares embeddings but the vocabularies differ.
    """

    def __init__(self, space: SearchSpace, src_vocab: int | None = None,
                 tgt_vocab: int | None = None, dropout: float = 0.0) -> None:
        cfg = space.cfg  # type: ignore[attr-defined]
        src = int(space.src_vocab if src_vocab is None else src_vocab)  # type: ignore[attr-defined]
        tgt = int((space.tgt_vocab if src_vocab is None else src)  # type: ignore[attr-defined]
                  if tgt_vocab is None else tgt_vocab)
        TransformerSupernet.__init__(self, space, tgt, HATArch)
        if cfg.shared_embeddings and src != tgt:
            raise ValueError(f"{space.name} shares one embedding between source and target, so "
                             f"`src_vocab == tgt_vocab` must hold, but got {src=}, {tgt=}")
        top: HATArch = space.max_arch()  # type: ignore[assignment]
        de, dd, q = top.encoder_embed_dim, top.decoder_embed_dim, cfg.qkv_dim
        self.src_vocab, self.qkv_dim, self.max_positions = src, q, cfg.max_positions
        self.share_all = bool(cfg.shared_embeddings)
        self.super_dropout = dropout
        self.pos_dim = max(de, dd)
        std = self.pos_dim ** -0.5
        if self.share_all:
            self.embed = ElasticEmbedding(tgt, self.pos_dim, std, PADDING_IDX)
        else:
            self.encoder_embed = ElasticEmbedding(src, de, de ** -0.5, PADDING_IDX)
            self.decoder_embed = ElasticEmbedding(tgt, dd, dd ** -0.5, PADDING_IDX)
            self.embed_out = ElasticEmbedding(tgt, dd, dd ** -0.5)
        self.register_buffer("positions", sinusoidal_table(
            cfg.max_positions + PADDING_IDX + 1, self.pos_dim, PADDING_IDX), persistent=False)
        hs, fs = max(top.encoder_self_attention_heads), max(top.encoder_ffn_embed_dim)
        self.encoder = nn.ModuleList([
            PostNormEncoderLayer(ElasticMultiheadAttention(de, de, q, hs), DynamicLayerNorm(de),
                                 ElasticFFN(de, fs, "relu"), DynamicLayerNorm(de))
            for _ in range(top.encoder_layer_num)
        ])
        hd, hx = max(top.decoder_self_attention_heads), max(top.decoder_ende_attention_heads)
        fd = max(top.decoder_ffn_embed_dim)
        self.decoder = nn.ModuleList([
            PostNormDecoderLayer(ElasticMultiheadAttention(dd, dd, q, hd), DynamicLayerNorm(dd),
                                 ElasticMultiheadAttention(dd, de, q, hx), DynamicLayerNorm(dd),
                                 ElasticFFN(dd, fd, "relu"), DynamicLayerNorm(dd))
            for _ in range(top.decoder_layer_num)
        ])
        self._dims = {"encoder": de, "decoder": dd}

    # ---- HATForward ------------------------------------------------------------------------
    def _arch_or_raise(self) -> HATArch:
        return self._require_active()  # type: ignore[return-value]

    def token_embedding(self, part: str, tokens: torch.Tensor) -> torch.Tensor:
        if self.share_all:
            table: ElasticEmbedding = self.embed
        else:
            table = self.encoder_embed if part == "encoder" else self.decoder_embed
        return table(tokens, self._dims[part])

    def output_weight(self) -> torch.Tensor:
        table: ElasticEmbedding = self.embed if self.share_all else self.embed_out
        return table.active_weight(self._dims["decoder"])

    def running_encoder(self) -> list[PostNormEncoderLayer]:
        return list(self.encoder[:self._arch_or_raise().encoder_layer_num])  # type: ignore[arg-type]

    def running_decoder(self) -> list[PostNormDecoderLayer]:
        return list(self.decoder[:self._arch_or_raise().decoder_layer_num])  # type: ignore[arg-type]

    def ende(self) -> tuple[int, ...]:
        return tuple(self._arch_or_raise().decoder_arbitrary_ende_attn)

    # ---- TransformerSupernet ---------------------------------------------------------------
    def _activate(self, arch: Arch) -> None:
        a: HATArch = arch  # type: ignore[assignment]
        de, dd, q = a.encoder_embed_dim, a.decoder_embed_dim, self.qkv_dim
        self._dims = {"encoder": de, "decoder": dd}
        top = self.space.max_arch()
        dec_p = self.super_dropout * dd / top.decoder_embed_dim  # type: ignore[attr-defined]
        enc_p = self.super_dropout * de / top.encoder_embed_dim  # type: ignore[attr-defined]
        self.dropout = {"encoder": enc_p, "decoder": dec_p}
        encoder: list[Any] = list(self.encoder)
        decoder: list[Any] = list(self.decoder)
        for layer, f, h in zip(encoder, a.encoder_ffn_embed_dim,
                               a.encoder_self_attention_heads, strict=False):
            layer.self_attn.set_active(h, q)
            layer.ffn.hidden = f
            layer.dropout = enc_p
        for layer, f, h, hx in zip(decoder, a.decoder_ffn_embed_dim,
                                   a.decoder_self_attention_heads,
                                   a.decoder_ende_attention_heads, strict=False):
            layer.self_attn.set_active(h, q)
            layer.encoder_attn.set_active(hx, q)
            layer.ffn.hidden = f
            layer.dropout = dec_p

    def export(self, arch: Arch) -> Tensors:
        a: HATArch = arch  # type: ignore[assignment]
        de, dd, q = a.encoder_embed_dim, a.decoder_embed_dim, self.qkv_dim
        if self.share_all:
            out = _prefixed("embed", self.embed.export(max(de, dd)))
        else:
            out = {**_prefixed("encoder_embed", self.encoder_embed.export(de)),
                   **_prefixed("decoder_embed", self.decoder_embed.export(dd)),
                   **_prefixed("embed_out", self.embed_out.export(dd))}
        for i, f in enumerate(a.encoder_ffn_embed_dim):
            layer: Any = self.encoder[i]
            out.update(_prefixed(f"encoder.{i}", {
                **_prefixed("self_attn", layer.self_attn.export(de, de, q)),
                **_prefixed("self_attn_layer_norm", layer.self_attn_layer_norm.export(de)),
                **_prefixed("ffn", layer.ffn.export(de, f)),
                **_prefixed("final_layer_norm", layer.final_layer_norm.export(de))}))
        for i, f in enumerate(a.decoder_ffn_embed_dim):
            layer = self.decoder[i]
            out.update(_prefixed(f"decoder.{i}", {
                **_prefixed("self_attn", layer.self_attn.export(dd, dd, q)),
                **_prefixed("self_attn_layer_norm", layer.self_attn_layer_norm.export(dd)),
                **_prefixed("encoder_attn", layer.encoder_attn.export(dd, de, q)),
                **_prefixed("encoder_attn_layer_norm", layer.encoder_attn_layer_norm.export(dd)),
                **_prefixed("ffn", layer.ffn.export(dd, f)),
                **_prefixed("final_layer_norm", layer.final_layer_norm.export(dd))}))
        return out

    def build_twin(self, arch: Arch) -> StaticHAT:
        return StaticHAT(arch, self.src_vocab, self.num_classes, self.qkv_dim, self.pos_dim,
                         self.max_positions, self.share_all)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor  # type: ignore[override]
                ) -> torch.Tensor:
        """Teacher-forced logits (see :meth:`HATForward.forward`)."""
        self._require_active()
        return HATForward.forward(self, src, tgt_in)

    def config(self) -> dict[str, Any]:
        """``{"space", "num_classes" (the target vocabulary), "src_vocab"}``."""
        return {**super().config(), "src_vocab": self.src_vocab}


def _build(space: SearchSpace, num_classes: int) -> HATSupernet:
    """``build_supernet``'s entry: target vocabulary ``num_classes``; the source vocabulary is
    the same for a shared-embedding task (WMT) and the space's ``src_vocab`` otherwise (IWSLT:
    ``get_space("hat_iwslt14deen", src_vocab=...)``)."""
    shared = space.cfg.shared_embeddings  # type: ignore[attr-defined]
    return HATSupernet(space, num_classes if shared else space.src_vocab,  # type: ignore[attr-defined]
                       num_classes)


for _name in HAT_CFGS:
    register_supernet(_name, SupernetSpec(description=f"HAT SuperTransformer ({_name})",
                                          builder=_build))
