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
@pytest.mark.parametrize("name", ["hat_wmt14ende", "hat_iwslt14deen"])
def test_real_hat_size_contract(name: str) -> None:
    """HAT's real widths (640 / 3072 or 2048 / qkv 512, 6 + 6 layers), a small vocabulary:
    extract = active and cached decode = full forward for min, max and a random arch; the
    twin's parameters and MACs equal the space's count."""
    from torch.utils.flop_counter import FlopCounterMode

    from nasforge.search_spaces.block import total_flops
    from nasforge.search_spaces.block import total_params

    space = get_space(name, src_vocab=64, tgt_vocab=64)
    torch.manual_seed(0)
    net = build_supernet(space, 64).eval()
    perturb_supernet(net, 0)
    src, tgt = torch.randint(4, 64, (1, 6)), torch.randint(4, 64, (1, 5))
    for arch in (space.min_arch(), space.max_arch(), space.sample(np.random.default_rng(0))):
        net.set_active(arch)
        twin = net.extract(arch).eval()
        with torch.no_grad():
            full = net(src, tgt)
            assert (full - twin(src, tgt)).abs().max().item() <= 1e-5
            enc, cache = twin.encode(src), twin.new_cache()
            steps = [twin.decode_step(tgt[:, i:i + 1], enc, cache) for i in range(5)]
            assert (torch.cat(steps, 1) - full).abs().max().item() <= 1e-5
            with FlopCounterMode(display=False) as counter:
                twin(src, tgt)
        blocks = space.blocks_for(arch, src_len=6, tgt_len=5)  # type: ignore[attr-defined]
        assert sum(p.numel() for p in twin.parameters()) == total_params(blocks)
        assert counter.get_total_flops() // 2 == total_flops(blocks)


def test_sandwich_inplace_distillation_with_sliced_adamw_learns() -> None:
    """The training recipe's pieces on the LM supernet: the sandwich sampler, in-place
    distillation (the max subnet's logits teach the others) and the slice-aware AdamW over the
    slice-gradient store; the smallest subnet learns a periodic sequence."""
    import torch.nn.functional as F

    from nasforge.supernet import SlicedAdamW
    from nasforge.supernet import create_sampler
    from nasforge.supernet.training.losses import soft_target_ce

    space = get_space("elastic_lm")
    torch.manual_seed(0)
    net = ElasticLMSupernet(space, vocab_size=12).train()
    store = net.enable_slice_grads()
    opt = SlicedAdamW(net.parameters(), slice_grads=store, lr=3e-3)
    sampler = create_sampler("sandwich", space, np.random.default_rng(0))
    seq = (torch.arange(4 * 33) % 7).view(4, 33)
    x, y = seq[:, :-1], seq[:, 1:]

    def ce(arch: object) -> float:
        net.set_active(arch)  # type: ignore[arg-type]
        with torch.no_grad():
            return F.cross_entropy(net(x).flatten(0, 1), y.flatten()).item()

    before, before_max = ce(space.min_arch()), ce(space.max_arch())
    roles = set()
    for _ in range(40):
        opt.zero_grad()
        teacher = None
        for item in sampler.sample():
            roles.add(item.role)
            net.set_active(item.arch)
            logits = net(x).flatten(0, 1)
            if teacher is None:
                loss = F.cross_entropy(logits, y.flatten())
                teacher = logits.detach()
            else:
                loss = soft_target_ce(logits, teacher)
            loss.backward()
        opt.step()
    after = ce(space.min_arch())
    assert {"max", "min"} <= roles
    assert after < 0.5 * before, (before, after)
    assert ce(space.max_arch()) < 0.5 * before_max


def test_kv_cache_reorder_follows_the_batch() -> None:
    """Beam search keeps rows of the cache: decoding on after reorder(index) equals decoding
    the reordered batch from the start."""
    space = get_space("elastic_lm")
    torch.manual_seed(0)
    net = ElasticLMSupernet(space, vocab_size=20).eval()
    net.set_active(space.sample(np.random.default_rng(2)))
    x = torch.randint(0, 20, (3, 6))
    index = torch.tensor([2, 2, 0])
    with torch.no_grad():
        cache = net.new_cache()
        net(x[:, :4], cache=cache)
        cache.reorder(index)
        got = net(x[index, 4:], cache=cache)
        want = net(x[index])[:, 4:]
    assert (got - want).abs().max().item() <= 1e-5


def test_build_supernet_hat_vocabularies() -> None:
    iwslt = HATSpace("hat_iwslt14deen", cfg=tiny_hat_space("hat_iwslt14deen").cfg, src_vocab=33)
    net = build_supernet(iwslt, 21)
    assert isinstance(net, HATSupernet) and (net.src_vocab, net.num_classes) == (33, 21)
    wmt = build_supernet(tiny_hat_space("hat_wmt14ende"), 21)
    assert (wmt.src_vocab, wmt.num_classes) == (21, 21)  # type: ignore[attr-defined]


def test_dropout_only_in_training_mode() -> None:
    """HAT's scaled dropout and the LM's residual dropout act in train mode; eval (and the
    twin) is deterministic and equal."""
    hat_space = tiny_hat_space("hat_wmt14ende")
    lm_space = get_space("elastic_lm")
    torch.manual_seed(0)
    nets = [(HATSupernet(hat_space, dropout=0.3), hat_space,
             (torch.randint(4, 40, (2, 5)), torch.randint(4, 40, (2, 4)))),
            (ElasticLMSupernet(lm_space, vocab_size=20, dropout=0.3), lm_space,
             (torch.randint(0, 20, (2, 6)),))]
    for net, space, x in nets:
        arch = space.min_arch()
        net.set_active(arch)
        net.train()
        assert not torch.equal(net(*x), net(*x))
        net.eval()
        twin = net.extract(arch).eval()
        with torch.no_grad():
            assert (net(*x) - twin(*x)).abs().max().item() <= 1e-5
