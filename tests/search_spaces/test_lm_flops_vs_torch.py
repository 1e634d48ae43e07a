"""FLOPs (MACs) and params of the language spaces equal a count over the built static twins.

The counter is PyTorch's ``torch.utils.flop_counter.FlopCounterMode`` (2 FLOPs per MAC; it
counts matmuls, linear layers and attention products, not element-wise ops), applied to one
teacher-forced forward of the twin at the lengths the space counts at: ``hat_*`` at HAT's dummy
sentence (30 source and 30 target tokens, 23 for IWSLT), ``elastic_lm`` over
``context_length`` tokens. Parameters are ``sum(p.numel())`` over the twin (the sinusoid
table of HAT is a buffer, not a parameter). The min, max and random archs of every space run
on the "meta" device (shapes only; the counter sees the same calls).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from nasforge.search_spaces import get_space
from nasforge.search_spaces._elastic_lm import ElasticLMSpace
from nasforge.search_spaces._hat import HATSpace
from nasforge.search_spaces.block import total_flops
from nasforge.supernet import StaticHAT
from nasforge.supernet import StaticLM

HAT_NAMES = ("hat_wmt14ende", "hat_wmt14enfr", "hat_wmt19ende", "hat_iwslt14deen")


def _hat_twin(space: HATSpace, arch: object) -> torch.nn.Module:
    c = space.cfg
    return StaticHAT(arch, space.src_vocab, space.tgt_vocab, c.qkv_dim, c.super_embed_dim,
                     c.max_positions, c.shared_embeddings)


def _lm_twin(space: ElasticLMSpace, arch: object) -> torch.nn.Module:
    a = arch
    return StaticLM(space.vocab_size, a.embed_dim, a.ffn_embed_dim,  # type: ignore[attr-defined]
                    a.self_attention_heads, space.head_dim,  # type: ignore[attr-defined]
                    a.context_length)  # type: ignore[attr-defined]


def _archs(space: HATSpace | ElasticLMSpace, n: int, seed: int) -> list[object]:
    rng = np.random.default_rng(seed)
    return [space.min_arch(), space.max_arch(), *(space.sample(rng) for _ in range(n))]


def _count(model: torch.nn.Module, *inputs: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(*inputs)
    return fc.get_total_flops() // 2


@pytest.mark.parametrize("name", HAT_NAMES)
def test_hat_flops_and_params_equal_the_twin(name: str) -> None:
    space = get_space(name)
    assert isinstance(space, HATSpace)
    s, t = space.cfg.src_len, space.cfg.tgt_len
    for arch in _archs(space, 6, seed=11):
        with torch.device("meta"):
            model = _hat_twin(space, arch).eval()
            src = torch.full((1, s), 7, dtype=torch.long)
            tgt = torch.full((1, t), 7, dtype=torch.long)
        assert _count(model, src, tgt) == space.flops(arch), arch  # type: ignore[arg-type]
        n = sum(p.numel() for p in model.parameters())
        assert n == space.params(arch), arch  # type: ignore[arg-type]


def test_hat_counts_follow_the_lengths() -> None:
    space = get_space("hat_wmt14ende")
    assert isinstance(space, HATSpace)
    arch = space.sample(np.random.default_rng(4))
    with torch.device("meta"):
        model = _hat_twin(space, arch).eval()
        src = torch.full((2, 17), 7, dtype=torch.long)
        tgt = torch.full((2, 9), 7, dtype=torch.long)
    blocks = space.blocks_for(arch, src_len=17, tgt_len=9)
    assert _count(model, src, tgt) == 2 * total_flops(blocks)  # batch 2


def test_elastic_lm_flops_and_params_equal_the_twin() -> None:
    space = get_space("elastic_lm")
    assert isinstance(space, ElasticLMSpace)
    for arch in _archs(space, 10, seed=12):
        t = arch.context_length  # type: ignore[attr-defined]
        with torch.device("meta"):
            model = _lm_twin(space, arch).eval()
            tokens = torch.zeros((1, t), dtype=torch.long)
        assert _count(model, tokens) == space.flops(arch), arch  # type: ignore[arg-type]
        n = sum(p.numel() for p in model.parameters())
        assert n == space.params(arch), arch  # type: ignore[arg-type]
