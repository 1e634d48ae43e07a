"""Block kinds of language transformers (``hat_*``, ``elastic_lm``) and their cost rules.

One :class:`~nasforge.search_spaces.block.Block` per transformer sub-layer. The generic
``Block`` fields are reused with these meanings (the contract with the decode-aware latency
model, the supernets' static twins and the FLOPs tests):

* ``stage``: ``"encoder"`` (runs once per source sentence) or ``"decoder"`` (runs once per
  generated token when decoding); ``op`` names the layer, ``"L0"``, ``"L1"``, ... (empty for
  embeddings and the output projection).
* ``hw_in``: query tokens of this forward (the sequence length ``T``; 1 for one decoding step).
* ``hw_out``: key/value tokens attended to (``T`` in a full forward; the cache length plus the
  new tokens in a decoding step; for cross attention ``S * expand``).
* ``cin``: the block's model width (embedding dim); ``cout`` the same (residual blocks).
* ``heads``, ``head_dim``: attention heads and per-head width; ``mid`` is the attention width
  ``heads * head_dim`` (HAT's ``qkv_dim``, fixed at 512 whatever the heads) or the FFN width.
* ``out_dim``: cross attention: the encoder width the K/V projections read; embeddings: the
  rows of a learned position table (0 for sinusoidal positions); output: 0.
* ``expand``: cross attention: how many encoder layers' outputs are concatenated as keys
  (HAT's ``decoder_arbitrary_ende_attn`` -1/1/2 -> 1/2/3).
* ``classes``: vocabulary rows (embedding table and output projection).
* ``kernel``: embeddings: 1 when the table is shared with another block already counted
  (HAT's shared source/target/output embedding), else 0; output projection: 1 when tied to
  the embedding (no own weight).
* ``op`` of the output projection: ``"hat"`` when the space's published rule (HAT's
  ``--profile-flops``) leaves it out of ``flops_reference`` (its reference MACs are then 0).
* ``act``: FFN activation (``relu`` for HAT, ``gelu`` for ``elastic_lm``).
* ``shortcut``: ``"post_ln"`` (HAT: residual then LayerNorm) or ``"pre_ln"``; each residual
  block owns its one LayerNorm (``2 * cin`` parameters). The output block of a pre-LN model
  owns the final LayerNorm (``se_mid`` = 1 marks it).

Kinds and what they count (MACs, the field's convention; a bias add, LayerNorm, softmax,
activations, scaling and embedding lookups are not MACs):

* ``tf_embed``: token table ``classes x cin`` (+ ``out_dim x cin`` learned positions); 0 MACs.
* ``tf_self_attn``: Q, K, V projections (``cin -> mid``, bias), ``QK^T`` and ``AV``
  (``hw_in * hw_out * mid`` each), output projection (``mid -> cin``, bias), one LayerNorm.
  MACs ``hw_in * cin * mid * 4 + 2 * hw_in * hw_out * mid`` (Q, K, V, out for the new tokens).
* ``tf_cross_attn``: Q from ``cin`` for the ``hw_in`` decoder tokens; K and V from ``out_dim``
  for the ``hw_out`` encoder tokens (computed once per sentence; a decoding step reads them
  from the cache, see :func:`cross_kv_flops`), the two matmuls and the output projection.
* ``tf_ffn``: ``cin -> mid -> cin`` with biases, one LayerNorm; MACs ``2 * hw_in * cin * mid``.
* ``tf_output``: ``cin -> classes`` without bias (tied: no weight of its own) for ``hw_in``
  tokens.

A decoding step of one token at position ``t`` (0-based) is the same blocks with ``hw_in = 1``,
``hw_out = t + 1`` for self attention; :func:`decode_step_flops` gives its MACs. Generation
splits into what runs once per sequence (:func:`encoder_flops`: the encoder and the
cross-attention K/V of the source; for a decoder-only LM, the prefill is the space's blocks at
the prompt length) and the cached decoding steps (:func:`decode_flops`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from nasforge.search_spaces.block import Block
from nasforge.search_spaces.block import block_flops
from nasforge.search_spaces.block import register_block_kind

__all__ = [
    "TF_KINDS",
    "cross_kv_flops",
    "decode_flops",
    "decode_step_block",
    "decode_step_flops",
    "encoder_flops",
]

TF_KINDS = ("tf_embed", "tf_self_attn", "tf_cross_attn", "tf_ffn", "tf_output")


def _ln(width: int) -> int:
    return 2 * width


def _embed_flops(b: Block) -> int:
    return 0


def _embed_params(b: Block) -> int:
    table = 0 if b.kernel else b.classes * b.cin
    return table + b.out_dim * b.cin


def _self_attn_flops(b: Block) -> int:
    return 4 * b.hw_in * b.cin * b.mid + 2 * b.hw_in * b.hw_out * b.mid


def _self_attn_params(b: Block) -> int:
    return 3 * (b.cin * b.mid + b.mid) + b.mid * b.cin + b.cin + _ln(b.cin)


def cross_kv_flops(b: Block) -> int:
    """MACs of a cross-attention block's K and V projections (once per source sentence)."""
    return 2 * b.hw_out * b.out_dim * b.mid


def _cross_attn_flops(b: Block) -> int:
    return 2 * b.hw_in * b.cin * b.mid + cross_kv_flops(b) + 2 * b.hw_in * b.hw_out * b.mid


def _cross_attn_params(b: Block) -> int:
    return (b.cin * b.mid + b.mid + 2 * (b.out_dim * b.mid + b.mid) + b.mid * b.cin + b.cin
            + _ln(b.cin))


def _ffn_flops(b: Block) -> int:
    return 2 * b.hw_in * b.cin * b.mid


def _ffn_params(b: Block) -> int:
    return b.cin * b.mid + b.mid + b.mid * b.cin + b.cin + _ln(b.cin)


def _output_flops(b: Block) -> int:
    return b.hw_in * b.cin * b.classes


def _output_flops_reference(b: Block) -> int:
    return 0 if b.op == "hat" else _output_flops(b)


def _output_params(b: Block) -> int:
    own = 0 if b.kernel else b.cin * b.classes
    return own + (_ln(b.cin) if b.se_mid else 0)


register_block_kind("tf_embed", _embed_flops, _embed_params)
register_block_kind("tf_self_attn", _self_attn_flops, _self_attn_params)
register_block_kind("tf_cross_attn", _cross_attn_flops, _cross_attn_params)
register_block_kind("tf_ffn", _ffn_flops, _ffn_params)
register_block_kind("tf_output", _output_flops, _output_params, _output_flops_reference)


def decode_step_block(b: Block, position: int) -> Block:
    """The block as it runs in one decoding step of a single token at ``position`` (0-based).

    Self attention attends to ``position + 1`` cached tokens; cross attention keeps its
    encoder length (its K/V are cached, see :func:`decode_step_flops`); every other block
    runs on one token.

    Args:
        b: a decoder block of a full forward.
        position: the index of the generated token.
    """
    if b.kind == "tf_self_attn":
        return dataclasses.replace(b, hw_in=1, hw_out=position + 1)
    return dataclasses.replace(b, hw_in=1)


def decode_step_flops(b: Block, position: int) -> int:
    """MACs of ``b`` in one decoding step with a KV cache (cross-attention K/V excluded).

    Args:
        b: a decoder block of a full forward.
        position: the index of the generated token (0-based).
    """
    step = decode_step_block(b, position)
    flops = block_flops(step)
    if b.kind == "tf_cross_attn":
        flops -= cross_kv_flops(step)
    return flops


def encoder_flops(blocks: Iterable[Block]) -> int:
    """MACs that run once per source sentence: the encoder-stage blocks plus every
    cross-attention block's K/V projections of the encoder output.

    Args:
        blocks: the blocks of a full forward (e.g. ``space.blocks(arch)``).
    """
    total = 0
    for b in blocks:
        if b.stage == "encoder":
            total += block_flops(b)
        elif b.kind == "tf_cross_attn":
            total += cross_kv_flops(b)
    return total


def decode_flops(blocks: Iterable[Block], start: int, steps: int) -> int:
    """MACs of ``steps`` cached decoding steps of one token each, at positions ``start``,
    ``start + 1``, ... (the decoder-stage blocks; cross-attention K/V excluded).

    Args:
        blocks: the blocks of a full forward (e.g. ``space.blocks(arch)``).
        start: position of the first generated token (the prompt length; 0 for HAT).
        steps: tokens generated.
    """
    dec = [b for b in blocks if b.stage == "decoder"]
    return sum(decode_step_flops(b, p) for p in range(start, start + steps) for b in dec)
