"""HAT SubTransformers timed on this machine: encoder, then beam-5 incremental decoding.

HAT's protocol (its ``latency_dataset`` measurements): batch 1, a source of the task's dummy
length (30 tokens, 23 for IWSLT), the encoder once, then as many incremental decoder steps with
beam 5. Here each step runs the decoder on the 5 beams through the KV cache over the encoder
states repeated 5 times; the beam bookkeeping (top-k, reordering the cache) is left out: it is
not part of the SubTransformer's compute. :func:`hat_calls` returns the two calls the shared
interleaved protocol times: ``encode`` and ``encode + decode``; the decoder's ms are their
difference, summed over the steps as in HAT's CSVs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from nasforge.search_spaces.base import SearchSpace

__all__ = ["BEAM", "hat_calls", "hat_twin"]

#: Beams decoded at once (HAT measures beam 5).
BEAM = 5


def hat_twin(space: SearchSpace, arch: Any) -> torch.nn.Module:
    """The static twin of a HAT SubTransformer (random weights), in eval mode."""
    from nasforge.supernet.static._hat import StaticHAT

    c = space.cfg  # type: ignore[attr-defined]
    return StaticHAT(arch, space.src_vocab, space.tgt_vocab,  # type: ignore[attr-defined]
                     c.qkv_dim, c.super_embed_dim, c.max_positions,
                     c.shared_embeddings).eval()


def hat_calls(space: SearchSpace, arch: Any, seed: int
              ) -> tuple[Callable[[], object], Callable[[], object]]:
    """(encode, encode + ``src_len`` beam-5 decoder steps) of ``arch`` as zero-argument calls."""
    from nasforge.supernet.static._hat import EncoderOut

    model = hat_twin(space, arch)
    steps = space.cfg.src_len  # type: ignore[attr-defined]
    gen = torch.Generator().manual_seed(seed)
    src = torch.randint(4, 1000, (1, steps), generator=gen)  # no special ids (pad is 1)
    tok = torch.randint(4, 1000, (BEAM, 1), generator=gen)

    @torch.inference_mode()
    def encode() -> object:
        return model.encode(src)  # type: ignore[operator]

    @torch.inference_mode()
    def translate() -> object:
        enc = model.encode(src)  # type: ignore[operator]
        beams = EncoderOut([s.repeat(BEAM, 1, 1) for s in enc.states],
                           enc.pad.repeat(BEAM, 1, 1, 1))
        cache = model.new_cache()  # type: ignore[operator]
        for _ in range(steps):
            model.decode_step(tok, beams, cache)  # type: ignore[operator]
        return cache

    return encode, translate
