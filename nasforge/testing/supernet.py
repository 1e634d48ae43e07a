"""The contract every supernet keeps: the active subnet equals its extracted static twin,
counted FLOPs equal the space's, forward slices without allocating parameters, slice-sized
gradients equal autograd's max-size ones, and bad archs are rejected.

A concrete test module supplies a ``supernet`` fixture (module scope keeps the suite fast),
parametrised over the supernet registry::

    @pytest.fixture(scope="module",  # language supernets: nasforge.testing.supernet_lm
                    params=[n for n in SUPERNETS.list() if SUPERNETS.get(n).builder is None])
    def supernet(request):
        space = get_space(request.param)
        net = build_supernet(space, num_classes=space.num_classes)
        perturb_supernet(net, seed=0)
        return net.eval()

    class TestEverySupernet(SupernetContract): pass

The fixture is shared by the tests of a module, so every test that changes the supernet (its
weights, BN statistics, mode, active subnet or slice-gradient store) restores it on the way out
(:func:`_restored`): each test sees the fixture as built, whatever ran before it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING
from typing import Any
from typing import cast

import numpy as np
import pytest

from nasforge.errors import InvalidArchitectureError
from nasforge.search_spaces.arch import Arch
from nasforge.search_spaces.base import SearchSpace

if TYPE_CHECKING:
    import torch

    from nasforge.supernet.base import DynamicLayer
    from nasforge.supernet.base import Supernet

__all__ = ["SupernetContract", "assert_slice_grads_match", "perturb_supernet"]


def perturb_supernet(net: torch.nn.Module, seed: int = 0) -> None:
    """Give every 1-D parameter (norm affines, biases), every relative-position bias table
    (parameters named ``*_bias``) and every BatchNorm's running statistics seeded non-trivial
    values, so that a wrong slice or crop changes the output.

    Args:
        net: a ``torch.nn.Module`` (a supernet or a static model).
        seed: seed of the private generator.
    """
    import torch
    from torch.nn.modules.batchnorm import _BatchNorm

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.dim() == 1:
                p.add_(0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("_bias"):
                p.add_(torch.randn(p.shape, generator=g))
        for m in net.modules():
            if isinstance(m, _BatchNorm) and m.running_mean is not None and (
                    m.running_var is not None):
                m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


@contextlib.contextmanager
def _restored(net: Supernet) -> Iterator[None]:
    """Run a block, then put back the supernet's state (weights, BN statistics, gradients),
    mode, active subnet and slice-gradient store as they were before it."""
    state = {k: v.clone() for k, v in net.state_dict().items()}
    training = net.training
    active = net.active_arch()
    try:
        yield
    finally:
        net.disable_slice_grads()
        net.zero_grad(set_to_none=True)
        net.load_state_dict(state)
        net.train(training)
        if active is not None:
            net.set_active(active)


class SupernetContract:
    """Every supernet: the active subnet equals its extracted static twin, costs agree with the
    space, forward slices without allocating parameters, slice-sized gradients equal autograd's
    max-size ones, and bad archs are rejected.

    Subclasses provide a ``supernet`` fixture returning a perturbed
    (:func:`perturb_supernet`) :class:`~nasforge.supernet.Supernet` built with
    ``num_classes == space.num_classes`` (so counted FLOPs equal ``space.flops``); a module
    scope keeps the suite fast, and every test leaves the supernet as it found it. Outputs are
    compared on a small proxy input (:attr:`INPUT` px, batch 2); FLOPs are counted on the
    extracted model at the arch's resolution, batch 1.
    """

    INPUT = 32
    N_RANDOM = 5
    ATOL = 1e-5

    def _archs(self, space: SearchSpace) -> list[Arch]:
        rng = np.random.default_rng(0)
        return [space.min_arch(), space.max_arch()] + [space.sample(rng)
                                                        for _ in range(self.N_RANDOM)]

    def _input(self, batch: int = 2, seed: int = 0) -> torch.Tensor:
        import torch

        g = torch.Generator().manual_seed(seed)
        return torch.randn(batch, 3, self.INPUT, self.INPUT, generator=g)

    def test_extract_matches_active_and_flops(self, supernet: Supernet) -> None:
        import torch
        from torch.utils.flop_counter import FlopCounterMode

        with _restored(supernet):
            net = supernet.eval()
            space = net.space
            x = self._input()
            outputs = []
            for arch in self._archs(space):
                net.set_active(arch)
                twin = net.extract(arch).eval()
                assert net.active_arch() == arch, "extract must not change the active subnet"
                with torch.no_grad():
                    y_net, y_twin = net(x), twin(x)
                    diff = (y_net - y_twin).abs().max().item()
                    assert diff <= self.ATOL, f"{space.name} {arch.arch_id}: max |diff| = {diff}"
                    r = arch.resolution  # type: ignore[attr-defined]
                    with FlopCounterMode(display=False) as counter:
                        twin(torch.zeros(1, 3, r, r))
                counted = counter.get_total_flops() // 2
                assert counted == space.flops(arch), (space.name, arch.arch_id, counted)
                outputs.append(y_net)
                del twin
            assert not torch.allclose(outputs[0], outputs[1]), "min and max subnets agree: trivial"

    def test_forward_slices_without_allocating_parameters(self, supernet: Supernet) -> None:
        import torch

        with _restored(supernet):
            net = supernet.train()
            space = net.space
            arch = space.sample(np.random.default_rng(1))
            net.set_active(arch)
            params = dict(net.named_parameters())
            before = {n: (p.data_ptr(), tuple(p.shape)) for n, p in params.items()}
            net.zero_grad(set_to_none=True)
            net(self._input(seed=1)).square().mean().backward()
            after = {n: (p.data_ptr(), tuple(p.shape)) for n, p in net.named_parameters()}
            assert after == before, "forward/backward must not replace or allocate parameters"
            # the region each parameter's active slices cover: where the exported tensors
            # (views, or crops of them) depend on it
            plan = net._plan(arch)
            exported = [v for i, block in plan
                        for v in cast("DynamicLayer", net.layers[i]).export(block).values()
                        if v.requires_grad]
            names = list(params)
            total = cast("torch.Tensor", sum(v.sum() for v in exported))
            deps = torch.autograd.grad(total, [params[n] for n in names], allow_unused=True)
            masks = {n: (torch.zeros_like(params[n], dtype=torch.bool) if d is None else d != 0)
                     for n, d in zip(names, deps, strict=True)}
            active_layers = {i for i, _ in plan}
            touched = 0
            for name, p in params.items():
                if p.grad is None:
                    continue
                outside = p.grad[~masks[name]]
                assert torch.count_nonzero(outside) == 0, f"gradient outside the slice: {name}"
                touched += int(torch.count_nonzero(p.grad[masks[name]]) > 0)
            assert touched > 0
            for name, _ in params.items():
                layer = int(name.split(".")[1])
                if layer not in active_layers:
                    assert params[name].grad is None, f"inactive layer got a gradient: {name}"

    def test_slice_gradients_equal_autograd_gradients(self, supernet: Supernet) -> None:
        """A step of min, max and a random subnet: the slice-gradient store implies exactly the
        max-size gradients plain autograd accumulates (bitwise: same kernels, same order)."""
        import torch

        with _restored(supernet):
            net = supernet.train()
            space = net.space
            archs = [space.max_arch(), space.sample(np.random.default_rng(3)), space.min_arch()]
            params = dict(net.named_parameters())
            state = {k: v.clone() for k, v in net.state_dict().items()}  # BN stats move in train

            def step() -> None:
                torch.manual_seed(0)  # dropout
                for i, arch in enumerate(archs):
                    net.set_active(arch)
                    net(self._input(seed=i)).square().mean().backward()

            net.zero_grad(set_to_none=True)
            step()
            plain = {n: None if p.grad is None else p.grad.clone() for n, p in params.items()}
            net.zero_grad(set_to_none=True)
            net.load_state_dict(state)
            store = net.enable_slice_grads()
            step()
            assert_slice_grads_match(params, plain, store)

    def test_rejects_foreign_and_invalid_archs(self, supernet: Supernet) -> None:
        import dataclasses

        from nasforge.errors import IncompatibleComponentsError
        from nasforge.search_spaces import SPACES
        from nasforge.search_spaces import get_space

        space = supernet.space
        other = next(n for n in SPACES.list() if n != space.name)
        with _restored(supernet):
            with pytest.raises(IncompatibleComponentsError, match=space.name):
                supernet.set_active(get_space(other).min_arch())
            bad = dataclasses.replace(space.min_arch(), resolution=7)  # type: ignore[call-arg]
            with pytest.raises(InvalidArchitectureError, match="resolution"):
                supernet.set_active(bad)
            with pytest.raises(InvalidArchitectureError, match="resolution"):
                supernet.extract(bad)

    def test_recalibrate_bn_matches_extracted_twin(self, supernet: Supernet) -> None:
        import torch

        from nasforge.supernet import recalibrate_bn

        with _restored(supernet):
            net = supernet.eval()
            arch = net.space.min_arch()
            net.set_active(arch)
            twin = net.extract(arch).eval()
            batches = [self._input(batch=4, seed=s) for s in range(3)]
            recalibrate_bn(net, batches, num_batches=3)
            stats = [b.clone() for n, b in net.named_buffers() if n.endswith("running_mean")]
            recalibrate_bn(net, batches, num_batches=3)
            again = [b for n, b in net.named_buffers() if n.endswith("running_mean")]
            assert all(torch.equal(a, b) for a, b in zip(stats, again, strict=True))
            assert not net.training, "recalibrate_bn must restore the mode"
            recalibrate_bn(twin, batches, num_batches=3)
            x = self._input(seed=9)
            with torch.no_grad():
                diff = (net(x) - twin(x)).abs().max().item()
            assert diff <= self.ATOL, diff

    def test_config(self, supernet: Supernet) -> None:
        space = supernet.space
        assert supernet.config() == {"space": space.name, "num_classes": supernet.num_classes}


def assert_slice_grads_match(params: dict[str, Any], plain: dict[str, Any], store: Any, *,
                             atol: float = 0.0) -> None:
    """The gradients a slice-gradient ``store`` holds (else ``.grad``) equal ``plain``
    autograd's, parameter by parameter: bitwise for ``atol == 0``, else within ``atol``; at
    least one parameter went through the store, and none has both."""
    import torch

    sliced = 0
    for name, p in params.items():
        got = store.full_grad(p)
        if got is None:
            got = p.grad
        else:
            sliced += 1
            assert p.grad is None, f"{name}: sliced parameter also has a .grad"
        want = plain[name]
        assert (got is None) == (want is None), f"{name}: gradient presence differs"
        if got is not None and want is not None:
            if atol == 0.0:
                assert torch.equal(got, want), f"{name}: max |diff| {(got - want).abs().max()}"
            else:
                torch.testing.assert_close(got, want, rtol=0, atol=atol, msg=name)
    assert sliced > 0, "no parameter went through the slice-gradient store"
