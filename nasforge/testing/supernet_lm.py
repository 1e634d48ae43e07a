"""The contract every language supernet keeps (``elastic_lm``, ``hat_*``).

The image contract (:mod:`nasforge.testing.supernet`) feeds images and plans subnets from
blocks; a language supernet takes token ids and decodes incrementally, so its contract is its own:

* the extracted static twin equals the active supernet (max abs diff <= :attr:`ATOL`, eval) for
  the min, max and random architectures, on full (teacher-forced) sequences;
* incremental decoding with a :class:`~nasforge.supernet.kv_cache.KVCache` (a prompt, then one
  token at a time) equals the full causal forward at every position, for the supernet and for
  the twin;
* forward and backward allocate no parameters, and gradients land only inside the active
  slices (layers beyond the active depth get none);
* the slice-gradient store implies exactly plain autograd's max-size gradients;
* the twin's parameter count equals ``space.params`` (as the twin is built: the tied table once);
* architectures of another space or outside the space are refused.

A concrete test module supplies a module-scoped ``supernet`` fixture (a perturbed
:class:`~nasforge.supernet._transformer.TransformerSupernet`; :func:`~nasforge.testing.supernet.
perturb_supernet`) and subclasses :class:`LMSupernetContract`. Every test leaves the fixture as
it found it.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
import pytest

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidArchitectureError
from nasforge.search_spaces.arch import Arch
from nasforge.testing.supernet import assert_slice_grads_match

if TYPE_CHECKING:
    import torch

    from nasforge.supernet._transformer import TransformerSupernet

__all__ = ["LMSupernetContract"]


@contextlib.contextmanager
def _restored(net: TransformerSupernet) -> Iterator[None]:
    """Run a block, then restore weights, gradients, mode, active subnet and slice store."""
    state = {k: v.clone() for k, v in net.state_dict().items()}
    training, active = net.training, net.active_arch()
    try:
        yield
    finally:
        net.disable_slice_grads()
        net.zero_grad(set_to_none=True)
        net.load_state_dict(state)
        net.train(training)
        if active is not None:
            net.set_active(active)


def _is_seq2seq(model: Any) -> bool:
    from nasforge.supernet.static._hat import HATForward

    return isinstance(model, HATForward)


class LMSupernetContract:
    """Language supernets: extraction, incremental decoding, slicing, gradients, rejection.

    Inputs are token ids drawn from ``[4, vocab)`` (fairseq's specials stay out), batch 2,
    :attr:`SRC_LEN` source and :attr:`TGT_LEN` target tokens; the second source row ends in
    padding (token 1) for encoder-decoder supernets.
    """

    N_RANDOM = 4
    ATOL = 1e-5
    SRC_LEN = 7
    TGT_LEN = 9
    PROMPT = 3

    def _archs(self, space: Any) -> list[Arch]:
        rng = np.random.default_rng(0)
        return [space.min_arch(), space.max_arch()] + [space.sample(rng)
                                                        for _ in range(self.N_RANDOM)]

    def _inputs(self, net: TransformerSupernet, seed: int = 0) -> dict[str, torch.Tensor]:
        import torch

        g = torch.Generator().manual_seed(seed)
        tgt = torch.randint(4, net.num_classes, (2, self.TGT_LEN), generator=g)
        if not _is_seq2seq(net):
            return {"tokens": tgt}
        src_vocab = int(getattr(net, "src_vocab", net.num_classes))
        src = torch.randint(4, src_vocab, (2, self.SRC_LEN), generator=g)
        src[1, self.SRC_LEN - 2:] = 1
        return {"src": src, "tokens": tgt}

    def _full(self, model: Any, x: dict[str, torch.Tensor]) -> torch.Tensor:
        if _is_seq2seq(model):
            return model(x["src"], x["tokens"])
        return model(x["tokens"])

    def _incremental(self, model: Any, x: dict[str, torch.Tensor]) -> torch.Tensor:
        """A prompt of :attr:`PROMPT` tokens, then one token per call: (B, T, V)."""
        import torch

        t, cache = x["tokens"], model.new_cache()
        enc = model.encode(x["src"]) if _is_seq2seq(model) else None

        def step(tokens: torch.Tensor) -> torch.Tensor:
            if enc is not None:
                return model.decode_step(tokens, enc, cache)
            return model(tokens, cache=cache)

        parts = [step(t[:, :self.PROMPT])]
        parts += [step(t[:, i:i + 1]) for i in range(self.PROMPT, t.shape[1])]
        assert cache.length == t.shape[1], "the cache must advance by the tokens given"
        return torch.cat(parts, dim=1)

    def _loss(self, net: TransformerSupernet, seed: int) -> torch.Tensor:
        import torch.nn.functional as F

        x = self._inputs(net, seed)
        logits = self._full(net, x)
        target = x["tokens"].roll(-1, dims=1)
        return F.cross_entropy(logits.flatten(0, 1), target.flatten())

    # ---- the contract --------------------------------------------------------------------
    def test_extract_matches_active_full_and_incremental(self, supernet: TransformerSupernet
                                                         ) -> None:
        import torch

        with _restored(supernet):
            net = supernet.eval()
            x = self._inputs(net)
            outputs = []
            for arch in self._archs(net.space):
                net.set_active(arch)
                twin = net.extract(arch).eval()
                assert net.active_arch() == arch, "extract must not change the active subnet"
                with torch.no_grad():
                    y_net, y_twin = self._full(net, x), self._full(twin, x)
                    inc_net, inc_twin = self._incremental(net, x), self._incremental(twin, x)
                tag = f"{net.space.name} {arch.arch_id}"
                for name, got, want in (("twin", y_twin, y_net), ("cached", inc_net, y_net),
                                        ("twin cached", inc_twin, y_twin)):
                    diff = (got - want).abs().max().item()
                    assert diff <= self.ATOL, f"{tag} {name}: max |diff| = {diff}"
                outputs.append(y_net)
            assert not torch.allclose(outputs[0], outputs[1]), "min and max subnets agree: trivial"

    def _blocks(self, net: TransformerSupernet, arch: Arch) -> list[Any]:
        """The space's blocks of one forward at the test lengths and the net's vocabularies."""
        space: Any = net.space
        if _is_seq2seq(net):
            return space.blocks_for(arch, src_len=self.SRC_LEN, tgt_len=self.TGT_LEN,
                                    src_vocab=getattr(net, "src_vocab", net.num_classes),
                                    tgt_vocab=net.num_classes)
        return space.blocks_for(arch, seq_len=self.TGT_LEN, vocab_size=net.num_classes)

    def test_twin_params_and_flops_equal_the_space_count(self, supernet: TransformerSupernet
                                                         ) -> None:
        import torch
        from torch.utils.flop_counter import FlopCounterMode

        from nasforge.search_spaces.block import total_flops
        from nasforge.search_spaces.block import total_params

        x = self._inputs(supernet)
        for arch in self._archs(supernet.space)[:3]:
            twin = supernet.extract(arch).eval()
            blocks = self._blocks(supernet, arch)
            counted = sum(p.numel() for p in twin.parameters())
            assert counted == total_params(blocks), (supernet.space.name, arch.arch_id, counted)
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                self._full(twin, x)
            macs = counter.get_total_flops() // 2 // x["tokens"].shape[0]
            assert macs == total_flops(blocks), (supernet.space.name, arch.arch_id, macs)

    def test_gradients_only_in_active_slices(self, supernet: TransformerSupernet) -> None:
        import torch

        with _restored(supernet):
            net = supernet.train()
            arch = net.space.sample(np.random.default_rng(1))
            net.set_active(arch)
            params = dict(net.named_parameters())
            before = {n: (p.data_ptr(), tuple(p.shape)) for n, p in params.items()}
            net.zero_grad(set_to_none=True)
            self._loss(net, seed=1).backward()
            after = {n: (p.data_ptr(), tuple(p.shape)) for n, p in net.named_parameters()}
            assert after == before, "forward/backward must not replace or allocate parameters"
            exported = [v for v in net.export(arch).values() if v.requires_grad]
            total: Any = sum(v.sum() for v in exported)
            names = list(params)
            deps = torch.autograd.grad(total, [params[n] for n in names], allow_unused=True)
            touched = 0
            for name, dep in zip(names, deps, strict=True):
                grad = params[name].grad
                if grad is None:
                    continue
                inside = torch.zeros_like(grad, dtype=torch.bool) if dep is None else dep != 0
                outside = torch.count_nonzero(grad[~inside])
                assert outside == 0, f"gradient outside the slice: {name}"
                touched += 1
            assert touched > 0

    def test_slice_gradients_equal_autograd_gradients(self, supernet: TransformerSupernet
                                                      ) -> None:

        with _restored(supernet):
            net = supernet.train()
            space = net.space
            archs = [space.max_arch(), space.sample(np.random.default_rng(3)), space.min_arch()]
            params = dict(net.named_parameters())

            def step() -> None:
                for i, arch in enumerate(archs):
                    net.set_active(arch)
                    self._loss(net, seed=i).backward()

            net.zero_grad(set_to_none=True)
            step()
            plain = {n: None if p.grad is None else p.grad.clone() for n, p in params.items()}
            net.zero_grad(set_to_none=True)
            store = net.enable_slice_grads()
            step()
            assert_slice_grads_match(params, plain, store, atol=1e-6)

    def test_rejects_foreign_and_invalid_archs(self, supernet: TransformerSupernet) -> None:
        from nasforge.search_spaces import get_space

        space: Any = supernet.space
        other = get_space("elastic_lm" if space.name != "elastic_lm" else "hat_wmt14ende")
        with _restored(supernet):
            with pytest.raises(IncompatibleComponentsError, match=space.name):
                supernet.set_active(other.min_arch())
            field = "embed_dim" if hasattr(space.min_arch(), "embed_dim") else "encoder_embed_dim"
            bad = dataclasses.replace(space.min_arch(), **{field: 7})
            with pytest.raises(InvalidArchitectureError, match=field):
                supernet.set_active(bad)
            with pytest.raises(InvalidArchitectureError, match=field):
                supernet.extract(bad)

    def test_config_rebuilds(self, supernet: TransformerSupernet) -> None:
        cfg = supernet.config()
        assert cfg["space"] == supernet.space.name
        assert cfg["num_classes"] == supernet.num_classes
