"""HAT's SubTransformer spaces (``hat_wmt14ende``, ``hat_wmt14enfr``, ``hat_wmt19ende``,
``hat_iwslt14deen``).

Paper:
    HAT: Hardware-Aware Transformers for Efficient Natural Language Processing (ACL 2020),
    https://arxiv.org/abs/2005.14187

The spaces are HAT's ``configs/<task>/supertransformer/space0.yml`` (``space1.yml`` for
IWSLT'14) in mit-han-lab/hardware-aware-transformers; the model is its
``fairseq/models/transformer_super.py`` at the SubTransformer's sampled widths:

* WMT (three tasks): embed dims {512, 640} for encoder and decoder, FFN {1024, 2048, 3072}
  per layer, heads {4, 8} per layer (self, and encoder-decoder attention of each decoder
  layer), 6 encoder layers, 1..6 decoder layers, ``decoder_arbitrary_ende_attn`` {-1, 1, 2}
  per decoder layer. IWSLT'14 De-En: FFN {512, 1024, 2048}, heads {2, 4}.
* Attention width is ``qkv_dim = 512`` whatever the heads (head dim ``512 / heads``): Q, K, V
  project ``embed -> 512`` with biases, the output ``512 -> embed`` with bias. Each sub-layer
  is post-LN (residual, then LayerNorm); no final encoder/decoder LayerNorm; sinusoidal
  positions (no parameters), at most ``max_positions = 1024`` tokens; ReLU FFNs.
* ``decoder_arbitrary_ende_attn``: the keys of a decoder layer's encoder-decoder attention are
  the last encoder layer's output (-1), the last two (1) or three (2) layers' outputs
  concatenated along time (``S``, ``2S`` or ``3S`` keys).
* Embeddings: WMT tasks share one table between encoder, decoder and output projection
  (``share-all-embeddings``); the encoder reads its first ``encoder_embed_dim`` columns, the
  decoder its first ``decoder_embed_dim`` columns, so the table holds
  ``vocab x max(encoder_embed_dim, decoder_embed_dim)`` weights. IWSLT'14 has separate source
  and target tables and a separate output matrix (``vocab_tgt x decoder_embed_dim``, no bias).

Canonical architecture: per-layer tuples hold the active layers only (``len ==
decoder_layer_num``); see :mod:`nasforge.search_spaces._elastic_depth`. Vocabulary sizes are
not part of the architecture: they are options of the space (HAT's dictionaries by default)
and arguments of :meth:`HATSpace.blocks_for`.

Counting:

* ``flops`` (MACs) of one teacher-forced forward with ``src_len`` source and ``tgt_len`` target
  tokens (HAT's dummy sentence: 30 tokens for WMT, 23 for IWSLT): every projection, the
  attention matmuls and the output projection (as the built module executes them).
* ``flops_reference``: HAT's rule (``train.py --profile-flops``): the same forward without the
  output projection (HAT prints ``2 x`` these MACs as "FLOPs").
* ``params``: every weight of the built SubTransformer, embeddings included.
* :meth:`HATSpace.params_reference`: HAT's ``get_sampled_params_numel``, which leaves out the
  embedding tables and the output projection (the #Params of HAT's README).

Example:
    >>> from nasforge.search_spaces import get_space
    >>> space = get_space("hat_wmt14ende")
    >>> a = space.max_arch()
    >>> a.decoder_layer_num, len(a.decoder_ffn_embed_dim), space.hat_features(a).shape
    (6, 6, (10,))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from functools import partial
from typing import ClassVar

import numpy as np

from nasforge.errors import InvalidInputError
from nasforge.search_spaces import _transformer_blocks  # noqa: F401  (registers block kinds)
from nasforge.search_spaces._elastic_depth import ElasticDepthSpace
from nasforge.search_spaces.arch import Arch
from nasforge.search_spaces.block import Block
from nasforge.search_spaces.block import total_flops
from nasforge.search_spaces.block import total_flops_reference
from nasforge.search_spaces.block import total_params
from nasforge.search_spaces.choice import Choice
from nasforge.search_spaces.registry import register_space_factory

__all__ = [
    "ARBITRARY_ENDE_ATTN",
    "HAT_CFGS",
    "HAT_FEATURE_NAMES",
    "HATArch",
    "HATCfg",
    "HATSpace",
]

#: HAT's ``decoder_arbitrary_ende_attn`` options -> encoder layers attended (1, 2, 3).
ARBITRARY_ENDE_ATTN = {-1: 1, 1: 2, 2: 3}

#: HAT's latency features, in the column order of its latency CSVs (``utils.get_feature_info``).
HAT_FEATURE_NAMES = (
    "encoder_embed_dim", "encoder_layer_num", "encoder_ffn_embed_dim_avg",
    "encoder_self_attention_heads_avg", "decoder_embed_dim", "decoder_layer_num",
    "decoder_ffn_embed_dim_avg", "decoder_self_attention_heads_avg",
    "decoder_ende_attention_heads_avg", "decoder_arbitrary_ende_attn_avg",
)


@dataclass(frozen=True)
class HATArch(Arch):
    """A HAT SubTransformer (names as HAT's ``*-subtransformer`` keys, underscores).

    Attributes:
        encoder_embed_dim: encoder width.
        decoder_embed_dim: decoder width.
        encoder_layer_num: encoder layers.
        decoder_layer_num: decoder layers.
        encoder_ffn_embed_dim: FFN width per encoder layer (``encoder_layer_num`` entries).
        encoder_self_attention_heads: heads per encoder layer.
        decoder_ffn_embed_dim: FFN width per decoder layer (``decoder_layer_num`` entries).
        decoder_self_attention_heads: self-attention heads per decoder layer.
        decoder_ende_attention_heads: encoder-decoder attention heads per decoder layer.
        decoder_arbitrary_ende_attn: per decoder layer, -1 / 1 / 2: attend to the last 1 / 2 /
            3 encoder layers.
    """

    encoder_embed_dim: int = 640
    decoder_embed_dim: int = 640
    encoder_layer_num: int = 6
    decoder_layer_num: int = 6
    encoder_ffn_embed_dim: tuple[int, ...] = ()
    encoder_self_attention_heads: tuple[int, ...] = ()
    decoder_ffn_embed_dim: tuple[int, ...] = ()
    decoder_self_attention_heads: tuple[int, ...] = ()
    decoder_ende_attention_heads: tuple[int, ...] = ()
    decoder_arbitrary_ende_attn: tuple[int, ...] = ()


@dataclass(frozen=True)
class HATCfg:
    """One HAT task's space and fixed numbers (a row of :data:`HAT_CFGS`).

    Attributes:
        task: HAT's task directory (``wmt14.en-de``, ...).
        embed_dims: encoder and decoder embed dim options.
        ffn_dims: FFN width options (per layer).
        heads: attention head options (per layer, all three attention kinds).
        encoder_layers: encoder depth options.
        decoder_layers: decoder depth options.
        arbitrary_ende_attn: ``decoder_arbitrary_ende_attn`` options.
        qkv_dim: attention width (fixed).
        max_positions: longest source/target sequence (fairseq's default, sinusoidal).
        src_len: source tokens of HAT's dummy sentence for FLOPs and latency.
        tgt_len: target tokens (decoder steps) of HAT's dummy sentence.
        src_vocab: source dictionary size.
        tgt_vocab: target dictionary size.
        shared_embeddings: one table for encoder, decoder and output (``share-all-embeddings``).
        super_embed_dim: the SuperTransformer's embed dim (the supernet's width).
        super_ffn_dim: the SuperTransformer's FFN width.
        super_heads: the SuperTransformer's heads.
    """

    task: str
    embed_dims: tuple[int, ...] = (512, 640)
    ffn_dims: tuple[int, ...] = (1024, 2048, 3072)
    heads: tuple[int, ...] = (4, 8)
    encoder_layers: tuple[int, ...] = (6,)
    decoder_layers: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
    arbitrary_ende_attn: tuple[int, ...] = (-1, 1, 2)
    qkv_dim: int = 512
    max_positions: int = 1024
    src_len: int = 30
    tgt_len: int = 30
    src_vocab: int = 32768
    tgt_vocab: int = 32768
    shared_embeddings: bool = True
    super_embed_dim: int = 640
    super_ffn_dim: int = 3072
    super_heads: int = 8


_ENC_LAYER_FIELDS = ("encoder_ffn_embed_dim", "encoder_self_attention_heads")
_DEC_LAYER_FIELDS = ("decoder_ffn_embed_dim", "decoder_self_attention_heads",
                     "decoder_ende_attention_heads", "decoder_arbitrary_ende_attn")


class HATSpace(ElasticDepthSpace):
    """HAT's SubTransformer space of one task (arXiv 2005.14187).

    Args:
        name: the registered variant (a key of :data:`HAT_CFGS`).
        cfg: the variant's numbers (defaults to ``HAT_CFGS[name]``).
        src_vocab: source dictionary size (defaults to the task's).
        tgt_vocab: target dictionary size (defaults to the task's).
    """

    arch_cls: ClassVar[type[Arch]] = HATArch
    modality: ClassVar[str] = "text"
    description: ClassVar[str] = ("HAT SubTransformer encoder-decoder (embed, FFN, heads per "
                                  "layer, decoder depth 1-6, arbitrary enc-dec attention)")

    def __init__(self, name: str = "hat_wmt14ende", cfg: HATCfg | None = None,
                 src_vocab: int | None = None, tgt_vocab: int | None = None) -> None:
        self.name = name
        self.cfg = HAT_CFGS[name] if cfg is None else cfg
        self.src_vocab = self.cfg.src_vocab if src_vocab is None else src_vocab
        self.tgt_vocab = self.cfg.tgt_vocab if tgt_vocab is None else tgt_vocab
        _check_cfg(self.cfg)
        super().__init__()

    def choices(self) -> list[Choice]:
        c = self.cfg
        n_enc, n_dec = max(c.encoder_layers), max(c.decoder_layers)
        return [
            Choice.one("encoder_embed_dim", c.embed_dims),
            Choice.one("decoder_embed_dim", c.embed_dims),
            Choice.one("encoder_layer_num", c.encoder_layers),
            Choice.one("decoder_layer_num", c.decoder_layers),
            Choice.repeat("encoder_ffn_embed_dim", c.ffn_dims, n_enc),
            Choice.repeat("encoder_self_attention_heads", c.heads, n_enc),
            Choice.repeat("decoder_ffn_embed_dim", c.ffn_dims, n_dec),
            Choice.repeat("decoder_self_attention_heads", c.heads, n_dec),
            Choice.repeat("decoder_ende_attention_heads", c.heads, n_dec),
            Choice.repeat("decoder_arbitrary_ende_attn", c.arbitrary_ende_attn, n_dec),
        ]

    def layer_fields(self) -> dict[str, str]:
        out = dict.fromkeys(_ENC_LAYER_FIELDS, "encoder_layer_num")
        out.update(dict.fromkeys(_DEC_LAYER_FIELDS, "decoder_layer_num"))
        return out

    # ---- blocks and counting ---------------------------------------------------------------
    def blocks(self, arch: Arch) -> list[Block]:
        """The blocks of a forward at the task's dummy sentence lengths (see :meth:`blocks_for`)."""
        return self.blocks_for(arch)

    def blocks_for(self, arch: Arch, *, src_len: int | None = None, tgt_len: int | None = None,
                   src_vocab: int | None = None, tgt_vocab: int | None = None) -> list[Block]:
        """The blocks of one teacher-forced forward (block fields: :mod:`._transformer_blocks`).

        Args:
            arch: an architecture of this space.
            src_len: source tokens ``S`` (default: the task's dummy length).
            tgt_len: target tokens ``T`` (default: the task's dummy length).
            src_vocab: source dictionary size (default: the space's).
            tgt_vocab: target dictionary size (default: the space's).

        Returns:
            Source embedding, encoder layers (self attention, FFN), target embedding, decoder
            layers (self attention, cross attention, FFN), output projection.
        """
        a: HATArch = arch  # type: ignore[assignment]
        return list(_hat_blocks(
            a, self.cfg, self.cfg.src_len if src_len is None else src_len,
            self.cfg.tgt_len if tgt_len is None else tgt_len,
            self.src_vocab if src_vocab is None else src_vocab,
            self.tgt_vocab if tgt_vocab is None else tgt_vocab))

    def flops(self, arch: Arch) -> int:
        return total_flops(self.blocks_for(arch))

    def flops_reference(self, arch: Arch) -> int:
        """HAT's MACs (``train.py --profile-flops``): the forward without the output layer."""
        return total_flops_reference(self.blocks_for(arch))

    def params(self, arch: Arch) -> int:
        return total_params(self.blocks_for(arch))

    def params_reference(self, arch: Arch) -> int:
        """HAT's ``get_sampled_params_numel``: parameters without embeddings and output."""
        return total_params(b for b in self.blocks_for(arch)
                            if b.kind not in ("tf_embed", "tf_output"))

    # ---- HAT's latency features -------------------------------------------------------------
    def hat_features(self, arch: Arch) -> np.ndarray:
        """HAT's 10 latency features (``utils.get_config_features``), CSV column order.

        Per-layer choices are averaged over the active layers; ``decoder_arbitrary_ende_attn``
        is averaged after mapping -1/1/2 to 1/2/3 (encoder layers attended).

        Returns:
            float64 array of shape (10,), columns :data:`HAT_FEATURE_NAMES`.
        """
        return self.hat_features_many([arch])[0]

    def hat_features_many(self, archs: Sequence[Arch]) -> np.ndarray:
        """:meth:`hat_features` of each arch: float64 array of shape (len(archs), 10)."""
        out = np.zeros((len(archs), len(HAT_FEATURE_NAMES)), dtype=np.float64)
        for i, arch in enumerate(archs):
            self.check_arch_type(arch)
            a: HATArch = arch  # type: ignore[assignment]
            out[i] = (
                a.encoder_embed_dim, a.encoder_layer_num, np.mean(a.encoder_ffn_embed_dim),
                np.mean(a.encoder_self_attention_heads), a.decoder_embed_dim,
                a.decoder_layer_num, np.mean(a.decoder_ffn_embed_dim),
                np.mean(a.decoder_self_attention_heads),
                np.mean(a.decoder_ende_attention_heads),
                np.mean([ARBITRARY_ENDE_ATTN[x] for x in a.decoder_arbitrary_ende_attn]),
            )
        return out


def _check_cfg(cfg: HATCfg) -> None:
    """Raise when a variant's numbers cannot build a SubTransformer."""
    bad_heads = [h for h in cfg.heads if cfg.qkv_dim % h]
    if bad_heads:
        raise InvalidInputError(
            f"HAT task {cfg.task}: heads must divide qkv_dim = {cfg.qkv_dim}, but heads "
            f"{bad_heads} do not")
    need = max(ARBITRARY_ENDE_ATTN[x] for x in cfg.arbitrary_ende_attn)
    if min(cfg.encoder_layers) < need:
        raise InvalidInputError(
            f"HAT task {cfg.task}: decoder_arbitrary_ende_attn options "
            f"{list(cfg.arbitrary_ende_attn)} attend up to {need} encoder layers, but "
            f"encoder_layer_num may be {min(cfg.encoder_layers)}")


@lru_cache(maxsize=1 << 14)
def _hat_blocks(a: HATArch, cfg: HATCfg, src_len: int, tgt_len: int, src_vocab: int,
                tgt_vocab: int) -> tuple[Block, ...]:
    e, d, q = a.encoder_embed_dim, a.decoder_embed_dim, cfg.qkv_dim
    shared = cfg.shared_embeddings
    table_dim = max(e, d)
    out = [Block("tf_embed", "encoder", src_len, src_len, table_dim if shared else e,
                 table_dim if shared else e, classes=src_vocab)]
    for i in range(a.encoder_layer_num):
        h = a.encoder_self_attention_heads[i]
        out.append(Block("tf_self_attn", "encoder", src_len, src_len, e, e, mid=q, heads=h,
                         head_dim=q // h, shortcut="post_ln", op=f"L{i}"))
        out.append(Block("tf_ffn", "encoder", src_len, src_len, e, e,
                         mid=a.encoder_ffn_embed_dim[i], act="relu", shortcut="post_ln",
                         op=f"L{i}"))
    out.append(Block("tf_embed", "decoder", tgt_len, tgt_len, d, d, classes=tgt_vocab,
                     kernel=1 if shared else 0))
    for i in range(a.decoder_layer_num):
        h, hx = a.decoder_self_attention_heads[i], a.decoder_ende_attention_heads[i]
        n_enc = ARBITRARY_ENDE_ATTN[a.decoder_arbitrary_ende_attn[i]]
        out.append(Block("tf_self_attn", "decoder", tgt_len, tgt_len, d, d, mid=q, heads=h,
                         head_dim=q // h, shortcut="post_ln", op=f"L{i}"))
        out.append(Block("tf_cross_attn", "decoder", tgt_len, src_len * n_enc, d, d, mid=q,
                         heads=hx, head_dim=q // hx, out_dim=e, expand=n_enc,
                         shortcut="post_ln", op=f"L{i}"))
        out.append(Block("tf_ffn", "decoder", tgt_len, tgt_len, d, d,
                         mid=a.decoder_ffn_embed_dim[i], act="relu", shortcut="post_ln",
                         op=f"L{i}"))
    out.append(Block("tf_output", "decoder", tgt_len, tgt_len, d, tgt_vocab, classes=tgt_vocab,
                     kernel=1 if shared else 0, op="hat"))
    return tuple(out)


# Dictionary sizes: WMT'14 En-De is HAT's preprocess.sh (--nwordssrc/--nwordstgt 32768, joined).
# IWSLT'14 De-En: fairseq's prepare-iwslt14 output (10k BPE; de 8848, en 6632 types), which HAT's
# binarised data follows (not checked against HAT's files). WMT'14 En-Fr and WMT'19 En-De use
# dictionaries HAT ships only inside its binarised data (40k BPE merges, joined): 40008 is a
# placeholder of that size, NOT a verified count; pass src_vocab/tgt_vocab for exact numbers.
HAT_CFGS: dict[str, HATCfg] = {
    "hat_wmt14ende": HATCfg("wmt14.en-de"),
    "hat_wmt14enfr": HATCfg("wmt14.en-fr", src_vocab=40008, tgt_vocab=40008),
    "hat_wmt19ende": HATCfg("wmt19.en-de", src_vocab=40008, tgt_vocab=40008),
    "hat_iwslt14deen": HATCfg(
        "iwslt14.de-en", ffn_dims=(512, 1024, 2048), heads=(2, 4), src_len=23, tgt_len=23,
        src_vocab=8848, tgt_vocab=6632, shared_embeddings=False, super_ffn_dim=2048,
        super_heads=4),
}

for _name in HAT_CFGS:
    register_space_factory(_name, partial(HATSpace, _name))
