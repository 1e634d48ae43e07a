"""``elastic_lm``: a decoder-only language model space in MatFormer's shape.

Papers:
    MatFormer: Nested Transformer for Elastic Inference, https://arxiv.org/abs/2310.07707
    (nested FFN: every FFN width is a prefix slice of one maximal FFN);
    Flextron: Many-in-One Flexible Large Language Model, https://arxiv.org/abs/2406.10260
    (elastic heads, width and depth of one trained model).

Sized so a quick supernet trains on 2 CPU cores in minutes on bytes (the numbers are ours):

* ``embed_dim`` {64, 96, 128}; ``layer_num`` {2, 3, 4} (a subnet keeps the first layers);
* ``ffn_embed_dim`` per layer {64, 128, 256, 512}: MatFormer's granularities, the fractions
  1/8, 1/4, 1/2, 1 of the maximal FFN ``4 x 128 = 512``, each a prefix of the next;
* ``self_attention_heads`` per layer {2, 4}, head dim fixed at 32 (attention width 64 or 128,
  the first heads of the maximal 4);
* ``context_length`` {64, 128, 256}: the tokens the model attends over (and the learned
  position rows it uses).

The module (the contract with the supernet and its static twin): a byte-level token table
``vocab x embed_dim`` tied with the output projection (no bias); learned positions
``context_length x embed_dim`` (the first rows of the maximal 256-row table); per layer pre-LN
self attention (LayerNorm, Q/K/V ``embed -> heads*32`` with biases, causal softmax attention,
output ``heads*32 -> embed`` with bias, residual) and pre-LN FFN (LayerNorm, ``embed -> ffn``
GELU ``ffn -> embed``, biases, residual); a final LayerNorm; logits ``embed -> vocab``.
``vocab`` (256 bytes + 3 specials: pad, bos, eos = 259 by default) is an option of the space.

``flops`` (MACs) counts one forward over ``context_length`` tokens: projections, the two
attention matmuls (full ``T x T``, as the masked module computes them) and the logits; a
decoding step is costed from the same blocks (:func:`~._transformer_blocks.decode_step_flops`).
``params`` counts every weight (tied table once, positions at ``context_length`` rows).

Example:
    >>> from nasforge.search_spaces import get_space
    >>> space = get_space("elastic_lm")
    >>> a = space.min_arch()
    >>> a.embed_dim, a.layer_num, a.ffn_embed_dim, a.context_length
    (64, 2, (64, 64), 64)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nasforge.search_spaces import _transformer_blocks  # noqa: F401  (registers block kinds)
from nasforge.search_spaces._elastic_depth import ElasticDepthSpace
from nasforge.search_spaces.arch import Arch
from nasforge.search_spaces.block import Block
from nasforge.search_spaces.block import total_flops
from nasforge.search_spaces.block import total_params
from nasforge.search_spaces.choice import Choice
from nasforge.search_spaces.registry import register_space

__all__ = [
    "BYTE_VOCAB",
    "CONTEXT_LENGTHS",
    "EMBED_DIMS",
    "FFN_DIMS",
    "HEADS",
    "HEAD_DIM",
    "LAYER_NUMS",
    "ElasticLMArch",
    "ElasticLMSpace",
]

EMBED_DIMS = (64, 96, 128)
LAYER_NUMS = (2, 3, 4)
MAX_FFN = 4 * max(EMBED_DIMS)
FFN_DIMS = (MAX_FFN // 8, MAX_FFN // 4, MAX_FFN // 2, MAX_FFN)  # MatFormer's nested widths
HEADS = (2, 4)
HEAD_DIM = 32
CONTEXT_LENGTHS = (64, 128, 256)
BYTE_VOCAB = 256 + 3  # bytes + pad, bos, eos


@dataclass(frozen=True)
class ElasticLMArch(Arch):
    """A decoder-only LM of ``elastic_lm``.

    Attributes:
        embed_dim: model width.
        layer_num: transformer layers.
        ffn_embed_dim: FFN width per layer (``layer_num`` entries; prefixes of the max FFN).
        self_attention_heads: heads per layer (``layer_num`` entries; head dim fixed).
        context_length: tokens attended over (learned position rows used).
    """

    embed_dim: int = 128
    layer_num: int = 4
    ffn_embed_dim: tuple[int, ...] = ()
    self_attention_heads: tuple[int, ...] = ()
    context_length: int = 256


@register_space("elastic_lm")
class ElasticLMSpace(ElasticDepthSpace):
    """Decoder-only byte LM with MatFormer-nested FFNs, elastic heads, depth and context.

    Args:
        vocab_size: token table rows (256 bytes + 3 specials by default).
    """

    arch_cls: ClassVar[type[Arch]] = ElasticLMArch
    modality: ClassVar[str] = "text"
    description: ClassVar[str] = ("decoder-only byte LM, MatFormer-nested FFN, elastic heads, "
                                  "depth 2-4, width 64-128, context 64-256")
    head_dim: ClassVar[int] = HEAD_DIM
    max_context: ClassVar[int] = max(CONTEXT_LENGTHS)

    def __init__(self, vocab_size: int = BYTE_VOCAB) -> None:
        self.vocab_size = vocab_size
        super().__init__()

    def choices(self) -> list[Choice]:
        n = max(LAYER_NUMS)
        return [
            Choice.one("embed_dim", EMBED_DIMS),
            Choice.one("layer_num", LAYER_NUMS),
            Choice.repeat("ffn_embed_dim", FFN_DIMS, n),
            Choice.repeat("self_attention_heads", HEADS, n),
            Choice.one("context_length", CONTEXT_LENGTHS),
        ]

    def layer_fields(self) -> dict[str, str]:
        return {"ffn_embed_dim": "layer_num", "self_attention_heads": "layer_num"}

    def blocks(self, arch: Arch) -> list[Block]:
        """The blocks of one forward over ``context_length`` tokens (see :meth:`blocks_for`)."""
        return self.blocks_for(arch)

    def blocks_for(self, arch: Arch, *, seq_len: int | None = None,
                   vocab_size: int | None = None) -> list[Block]:
        """Blocks of one forward over ``seq_len`` tokens (fields: :mod:`._transformer_blocks`).

        Args:
            arch: an architecture of this space.
            seq_len: tokens ``T`` (default: the arch's ``context_length``).
            vocab_size: token table rows (default: the space's).

        Returns:
            Embedding, per layer self attention and FFN (stage ``decoder``), output (with
            the final LayerNorm).
        """
        a: ElasticLMArch = arch  # type: ignore[assignment]
        t = a.context_length if seq_len is None else seq_len
        v = self.vocab_size if vocab_size is None else vocab_size
        e = a.embed_dim
        out = [Block("tf_embed", "decoder", t, t, e, e, classes=v, out_dim=a.context_length)]
        for i in range(a.layer_num):
            h = a.self_attention_heads[i]
            out.append(Block("tf_self_attn", "decoder", t, t, e, e, mid=h * HEAD_DIM, heads=h,
                             head_dim=HEAD_DIM, shortcut="pre_ln", op=f"L{i}"))
            out.append(Block("tf_ffn", "decoder", t, t, e, e, mid=a.ffn_embed_dim[i],
                             act="gelu", shortcut="pre_ln", op=f"L{i}"))
        out.append(Block("tf_output", "decoder", t, t, e, v, classes=v, kernel=1, se_mid=1))
        return out

    def flops(self, arch: Arch) -> int:
        return total_flops(self.blocks_for(arch))

    def params(self, arch: Arch) -> int:
        return total_params(self.blocks_for(arch))
