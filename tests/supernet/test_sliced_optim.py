"""Slice-aware optimizers: stock behaviour without a store, lazy updates with one."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasforge.search_spaces import get_space
from nasforge.supernet import Supernet
from nasforge.supernet import build_supernet
from nasforge.supernet.training.optim import param_groups
from nasforge.supernet.training.sliced_optim import SlicedAdamW
from nasforge.supernet.training.sliced_optim import SlicedSGD
from nasforge.supernet.training.sliced_optim import SliceGrads
from nasforge.supernet.training.sliced_optim import clip_grad_norm_

SGD_KW = {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-2}
ADAMW_KW = {"lr": 1e-2, "betas": (0.9, 0.99), "weight_decay": 0.05}
PAIRS = [(SlicedSGD, torch.optim.SGD, SGD_KW), (SlicedAdamW, torch.optim.AdamW, ADAMW_KW)]


def _batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 10, (8,), generator=g)


@pytest.fixture(scope="module")
def supernet() -> Supernet:
    torch.manual_seed(0)
    return build_supernet(get_space("elasticvit"), num_classes=10)


@pytest.mark.parametrize(("sliced", "stock", "kw"), PAIRS)
def test_without_store_equals_stock_optimizer_bitwise(sliced: type, stock: type,
                                                      kw: dict[str, object]) -> None:
    torch.manual_seed(0)
    a = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.LazyLinear(10))
    a(torch.zeros(1, 3, 8, 8))
    b = copy.deepcopy(a)
    opt_a = sliced(param_groups(a, 0.1), None, **kw)
    opt_b = stock(param_groups(b, 0.1), **kw)
    for step in range(4):
        x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(step))
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb), name
    assert opt_a.state_dict()["state"].keys() == opt_b.state_dict()["state"].keys()


@pytest.mark.parametrize(("sliced", "stock", "kw"), PAIRS)
def test_lazy_update_inside_boxes_equals_stock_outside_untouched(
        supernet: Supernet, sliced: type, stock: type, kw: dict[str, object]) -> None:
    """Train one small subnet for 3 steps: inside its slices the weights equal a stock run's
    bitwise; outside them they keep their initial values, where the stock optimizer's weight
    decay (and momentum) moved them."""
    space = supernet.space
    arch = space.sample(np.random.default_rng(5))
    lazy, ref = copy.deepcopy(supernet).train(), copy.deepcopy(supernet).train()
    init = {k: v.clone() for k, v in lazy.named_parameters()}
    store = lazy.enable_slice_grads()
    opt_lazy = sliced(param_groups(lazy, 0.1), store, **kw)
    opt_ref = stock(param_groups(ref, 0.1), **kw)
    boxes: dict[str, tuple[slice, ...] | None] = {}
    for step in range(3):
        x, y = _batch(step)
        for net, opt in ((lazy, opt_lazy), (ref, opt_ref)):
            torch.manual_seed(step)
            opt.zero_grad()
            net.set_active(arch)
            F.cross_entropy(net(x), y).backward()
            if net is lazy:
                for name, p in lazy.named_parameters():
                    found = store.gather(p)
                    if found is not None:
                        boxes[name] = found[0]
                    elif p.grad is not None:
                        boxes[name] = None
            opt.step()
    ref_params = dict(ref.named_parameters())
    moved_outside = 0
    for name, p in lazy.named_parameters():
        want = ref_params[name]
        if name not in boxes:  # never used: untouched by the lazy optimizer
            assert torch.equal(p, init[name]), name
            continue
        box = boxes[name]
        inside = torch.zeros_like(p, dtype=torch.bool)
        inside[box if box is not None else ...] = True
        assert torch.equal(p[inside], want[inside]), name
        assert torch.equal(p[~inside], init[name][~inside]), name
        moved_outside += int(not torch.equal(want[~inside], init[name][~inside]))
    assert moved_outside > 0, "the stock optimizer moved no unused weight: test is vacuous"
    assert any(b is not None for b in boxes.values()), "no parameter was sliced"


def test_gather_sums_overlapping_slices_into_their_bounding_box() -> None:
    p = torch.zeros(4, 6)
    store = SliceGrads()
    store.add(p, (slice(0, 2), slice(0, 3)), torch.ones(2, 3))
    store.add(p, (slice(0, 3),), torch.full((3, 6), 2.0))
    box, g = store.gather(p)  # type: ignore[misc]
    assert box == (slice(0, 3), slice(0, 6))
    want = torch.full((3, 6), 2.0)
    want[:2, :3] += 1
    assert torch.equal(g, want)
    full = store.full_grad(p)
    assert full is not None and torch.equal(full[:3], want) and full[3].abs().sum() == 0
    store.clear()
    assert store.gather(p) is None and len(store) == 0


def test_store_owns_a_copy_of_shared_or_transposed_gradients() -> None:
    p, q, r = torch.zeros(3, 3), torch.zeros(3, 3), torch.zeros(3, 3)
    store = SliceGrads()
    shared = torch.ones(2, 2)
    store.add(p, (slice(0, 2), slice(0, 2)), shared)
    store.add(q, (slice(1, 3), slice(1, 3)), shared)  # the same tensor handed to two slices
    transposed = torch.arange(4.0).view(2, 2).t()
    store.add(r, (slice(0, 2), slice(0, 2)), transposed)
    for param in (q, r):
        _, g = store.gather(param)  # type: ignore[misc]
        assert g.is_contiguous()
        g.mul_(0.0)  # in place, as clipping does
    assert torch.equal(shared, torch.ones(2, 2)), "q's gradient aliased p's"
    assert torch.equal(transposed, torch.arange(4.0).view(2, 2).t())
    _, g = store.gather(p)  # type: ignore[misc]
    assert g is shared  # a fresh contiguous gradient is kept without a copy


def test_clip_grad_norm_matches_torch_on_max_size_gradients(supernet: Supernet) -> None:
    net = copy.deepcopy(supernet).train()
    ref = copy.deepcopy(supernet).train()
    store = net.enable_slice_grads()
    space = net.space
    x, y = _batch(0)
    for model in (net, ref):
        torch.manual_seed(0)
        for arch in (space.min_arch(), space.sample(np.random.default_rng(2))):
            model.set_active(arch)
            F.cross_entropy(model(x), y).backward()
    total = clip_grad_norm_(list(net.parameters()), 0.1, store)
    want = torch.nn.utils.clip_grad_norm_(list(ref.parameters()), 0.1, foreach=False)
    assert total > 0.1  # clipping happened
    torch.testing.assert_close(total, want, rtol=1e-5, atol=0)
    for (name, p), q in zip(net.named_parameters(), ref.parameters(), strict=True):
        got = store.full_grad(p)
        got = p.grad if got is None else got
        if q.grad is None:
            assert got is None, name
        else:
            torch.testing.assert_close(got, q.grad, rtol=1e-5, atol=1e-9, msg=name)


def test_unsupported_options_are_refused() -> None:
    w = nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="dampening"):
        SlicedSGD([w], None, lr=0.1, momentum=0.9, dampening=0.5)
    with pytest.raises(ValueError, match="amsgrad"):
        SlicedAdamW([w], None, lr=0.1, amsgrad=True)


def test_deepcopy_of_a_supernet_starts_with_an_empty_store(supernet: Supernet) -> None:
    net = copy.deepcopy(supernet).train()
    store = net.enable_slice_grads()
    net.set_active(net.space.min_arch())
    net(_batch(0)[0]).sum().backward()
    assert len(store) > 0
    twin = copy.deepcopy(net)
    assert twin.slice_grads is not None and len(twin.slice_grads) == 0
    op = next(m for m in twin.modules() if hasattr(m, "slice_grads") and m is not twin)
    assert op.slice_grads is twin.slice_grads


def test_adamw_step_counts_survive_a_state_dict_round_trip() -> None:
    """The step count is kept as a number beside its tensor; a loaded state (new tensors)
    must be read back, not taken from that number."""
    torch.manual_seed(0)
    a = nn.Linear(5, 3)
    b, c = copy.deepcopy(a), copy.deepcopy(a)
    opt_a, opt_b = SlicedAdamW(a.parameters(), None, **ADAMW_KW), None
    x = torch.randn(6, 5, generator=torch.Generator().manual_seed(1))
    for step in range(5):
        if step == 3:  # b continues from a's state after 3 steps
            b.load_state_dict(a.state_dict())
            opt_b = SlicedAdamW(b.parameters(), None, **ADAMW_KW)
            opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))  # as from a file
        for model, opt in ((a, opt_a), (b, opt_b)):
            if opt is None:
                continue
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
    assert opt_b is not None
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    stock = torch.optim.AdamW(c.parameters(), **ADAMW_KW)  # type: ignore[arg-type]
    for _ in range(5):
        stock.zero_grad()
        c(x).square().mean().backward()
        stock.step()
    for pa, pc in zip(a.parameters(), c.parameters(), strict=True):
        assert torch.equal(pa, pc)
    assert all(float(s["step"]) == 5.0 for s in opt_a.state.values())
