"""The language supernets pass the LM supernet contract (extract = active, full sequence and
incremental decoding, slices, gradients), at test size; the real HAT size is a slow test."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from nasforge.errors import InvalidInputError
from nasforge.search_spaces import get_space
from nasforge.search_spaces._hat import HAT_CFGS
from nasforge.search_spaces._hat import HATSpace
from nasforge.supernet import SUPERNETS
from nasforge.supernet import ElasticLMSupernet
from nasforge.supernet import HATSupernet
from nasforge.supernet import NoActiveSubnetError
from nasforge.supernet import TransformerSupernet
from nasforge.supernet import build_supernet
from nasforge.testing.contracts import LMSupernetContract
from nasforge.testing.contracts import perturb_supernet


def tiny_hat_space(name: str) -> HATSpace:
    """``name``'s space with HAT's structure at toy widths (same choices' shapes, 3 layers)."""
    real = HAT_CFGS[name]
    cfg = dataclasses.replace(
        real, embed_dims=(16, 24), ffn_dims=(16, 32, 48), heads=(2, 4), encoder_layers=(3,),
        decoder_layers=(1, 2, 3), qkv_dim=16, max_positions=64, src_vocab=40,
        tgt_vocab=40 if real.shared_embeddings else 30, super_embed_dim=24, super_ffn_dim=48,
        super_heads=4)
    return HATSpace(name, cfg=cfg)


SPACES = ["elastic_lm", "hat_wmt14ende", "hat_iwslt14deen"]


@pytest.fixture(scope="module", params=SPACES)
def supernet(request: pytest.FixtureRequest) -> TransformerSupernet:
    torch.manual_seed(0)
    if request.param == "elastic_lm":
        net: TransformerSupernet = ElasticLMSupernet(get_space("elastic_lm"), vocab_size=50)
    else:
        net = HATSupernet(tiny_hat_space(request.param))
    perturb_supernet(net, seed=0)
    return net.eval()


class TestLanguageSupernets(LMSupernetContract):
    pass


def test_registered_and_built_by_name() -> None:
    for name in ["elastic_lm", *HAT_CFGS]:
        assert SUPERNETS.get(name).builder is not None
    net = build_supernet(get_space("elastic_lm"), 40)
    assert isinstance(net, ElasticLMSupernet) and net.config() == {"space": "elastic_lm",
                                                                  "num_classes": 40}
    with pytest.raises(NoActiveSubnetError):
        net(torch.zeros(1, 4, dtype=torch.long))


def test_lm_refuses_longer_than_context() -> None:
    space = get_space("elastic_lm")
    net = ElasticLMSupernet(space, vocab_size=20).eval()
    arch = space.min_arch()
    net.set_active(arch)
    with pytest.raises(InvalidInputError, match="context length"):
        net(torch.zeros(1, arch.context_length + 1, dtype=torch.long))  # type: ignore[attr-defined]
    cache = net.new_cache()
    net(torch.zeros(1, arch.context_length, dtype=torch.long), cache=cache)  # type: ignore[attr-defined]
    with pytest.raises(InvalidInputError, match="context length"):
        net(torch.zeros(1, 1, dtype=torch.long), cache=cache)


def test_untied_lm_head_extracts() -> None:
    space = get_space("elastic_lm")
    net = ElasticLMSupernet(space, vocab_size=30, tied=False).eval()
    perturb_supernet(net)
    arch = space.sample(np.random.default_rng(5))
    net.set_active(arch)
    twin = net.extract(arch).eval()
    x = torch.randint(0, 30, (2, 12))
    with torch.no_grad():
        assert (net(x) - twin(x)).abs().max().item() <= 1e-5


def test_hat_shared_embedding_needs_one_vocabulary() -> None:
    with pytest.raises(ValueError, match="src_vocab == tgt_vocab"):
        HATSupernet(tiny_hat_space("hat_wmt14ende"), src_vocab=40, tgt_vocab=30)


def test_hat_arbitrary_attention_reads_more_encoder_layers() -> None:
    """-1 / 1 / 2 change the output (the decoder sees 1, 2 or 3 encoder layers)."""
    space = tiny_hat_space("hat_wmt14ende")
    torch.manual_seed(0)
    net = HATSupernet(space).eval()
    base = dataclasses.replace(space.max_arch(), decoder_layer_num=1,
                               decoder_ffn_embed_dim=(48,), decoder_self_attention_heads=(4,),
                               decoder_ende_attention_heads=(4,))
    src, tgt = torch.randint(4, 40, (1, 6)), torch.randint(4, 40, (1, 5))
    outs = []
    for ende in (-1, 1, 2):
        arch = dataclasses.replace(base, decoder_arbitrary_ende_attn=(ende,))
        net.set_active(arch)
        enc = net.encode(src)
        assert enc.memory(ende)[0].shape[1] == 6 * (1 if ende == -1 else ende + 1)
        with torch.no_grad():
            outs.append(net(src, tgt))
    assert not torch.allclose(outs[0], outs[1]) and not torch.allclose(outs[1], outs[2])


@pytest.mark.slow
def test_real_hat_size_extracts_min_and_max() -> None:
    """hat_wmt14ende at HAT's widths (640/3072/qkv 512, 6+6 layers), a small vocabulary."""
    space = get_space("hat_wmt14ende")
    torch.manual_seed(0)
    net = build_supernet(space, 64).eval()
    src, tgt = torch.randint(4, 64, (1, 5)), torch.randint(4, 64, (1, 4))
    for arch in (space.min_arch(), space.max_arch()):
        net.set_active(arch)
        twin = net.extract(arch).eval()
        with torch.no_grad():
            assert (net(src, tgt) - twin(src, tgt)).abs().max().item() <= 1e-5
