"""Dynamic ops, the supernet's errors, extraction hygiene and BN recalibration."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.search_spaces import get_space
from nasforge.search_spaces.block import Block
from nasforge.supernet import NoActiveSubnetError
from nasforge.supernet import Supernet
from nasforge.supernet import SupernetSpec
from nasforge.supernet import build_supernet
from nasforge.supernet import recalibrate_bn
from nasforge.supernet.layers_attention import DynamicAttention
from nasforge.supernet.ops import DynamicBatchNorm2d
from nasforge.supernet.ops import DynamicDepthwiseConv2d
from nasforge.supernet.ops import DynamicLayerNorm
from nasforge.supernet.ops import DynamicLinear
from nasforge.supernet.static import build_static


@pytest.fixture(scope="module")
def ofa() -> Supernet:
    torch.manual_seed(0)
    return build_supernet(get_space("ofa_mbv3"), num_classes=10).eval()


def test_depthwise_kernel_is_centre_crop_and_gets_centre_gradient() -> None:
    torch.manual_seed(0)
    op = DynamicDepthwiseConv2d(8, 7, stride=2)
    x = torch.randn(2, 6, 9, 9)
    y = op(x, 3)
    ref = F.conv2d(x, op.weight[:6, :, 2:5, 2:5], None, 2, 1, 1, 6)
    assert torch.equal(y, ref)
    y.sum().backward()
    mask = torch.zeros_like(op.weight, dtype=torch.bool)
    mask[:6, :, 2:5, 2:5] = True
    assert op.weight.grad is not None
    assert torch.count_nonzero(op.weight.grad[~mask]) == 0
    assert torch.count_nonzero(op.weight.grad[mask]) > 0


def test_linear_and_layernorm_slice_by_prefix() -> None:
    torch.manual_seed(0)
    lin, ln = DynamicLinear(8, 12), DynamicLayerNorm(8)
    nn.init.normal_(ln.weight)
    x = torch.randn(3, 5)
    assert torch.equal(lin(x, 7), F.linear(x, lin.weight[:7, :5], lin.bias[:7]))
    assert torch.equal(ln(x), F.layer_norm(x, (5,), ln.weight[:5], ln.bias[:5]))


def test_dynamic_bn_matches_batchnorm_and_updates_its_slice_only() -> None:
    torch.manual_seed(0)
    dyn, ref = DynamicBatchNorm2d(8), nn.BatchNorm2d(5)
    with torch.no_grad():
        dyn.weight.uniform_(0.5, 1.5)
        ref.weight.copy_(dyn.weight[:5])
    x = torch.randn(4, 5, 3, 3)
    assert torch.allclose(dyn.train()(x), ref.train()(x), atol=1e-6)
    assert torch.allclose(dyn.running_mean[:5], ref.running_mean, atol=1e-7)
    assert torch.allclose(dyn.running_var[:5], ref.running_var, atol=1e-6)
    assert torch.count_nonzero(dyn.running_mean[5:]) == 0
    assert torch.equal(dyn.running_var[5:], torch.ones(3))
    assert torch.allclose(dyn.eval()(x), ref.eval()(x), atol=1e-6)


def test_attention_bias_uses_central_offsets_of_the_big_table() -> None:
    big, small, heads = 4, 2, 2
    block = Block("attention", "T1", big, big, 32, 32, heads=heads, head_dim=16, v_scale=2,
                  attn="softmax", bias_grid=big, act="hswish", shortcut="identity")
    layer = DynamicAttention(block, SupernetSpec())
    table = layer.attention_bias
    assert table is not None and table.shape == ((2 * big - 1) ** 2, heads)
    sub = Block("attention", "T1", small, small, 16, 16, heads=1, head_dim=16, v_scale=2,
                attn="softmax", bias_grid=small, act="hswish", shortcut="identity")
    got = layer.export(sub)["attention_bias"]
    rows = [(dy + big - 1) * (2 * big - 1) + (dx + big - 1)
            for dy in range(-small + 1, small) for dx in range(-small + 1, small)]
    assert torch.equal(got, table[rows, :1])


def test_forward_without_active_subnet_raises(ofa: Supernet) -> None:
    fresh = build_supernet(get_space("ofa_mbv3"), num_classes=10)
    with pytest.raises(NoActiveSubnetError, match="set_active"):
        fresh(torch.zeros(1, 3, 32, 32))


def test_tabular_space_has_no_supernet() -> None:
    with pytest.raises(IncompatibleComponentsError, match="no supernet"):
        build_supernet(get_space("nasbench201"), num_classes=10)


def test_extract_shares_no_storage_and_changes_nothing(ofa: Supernet) -> None:
    space = ofa.space
    ofa.set_active(space.max_arch())
    twin = ofa.extract(space.min_arch())
    assert ofa.active_arch() == space.max_arch()
    ptrs = {p.untyped_storage().data_ptr() for p in ofa.parameters()}
    assert not ptrs & {p.untyped_storage().data_ptr() for p in twin.parameters()}
    before = [p.clone() for p in ofa.parameters()]
    with torch.no_grad():
        for p in twin.parameters():
            p.add_(1.0)
    assert all(torch.equal(a, b) for a, b in zip(before, ofa.parameters(), strict=True))
    assert all(p.requires_grad for p in twin.parameters())


def test_recalibrate_bn_is_the_cumulative_batch_average() -> None:
    torch.manual_seed(0)
    space = get_space("elasticvit")
    model = build_static(space, space.min_arch(), num_classes=10).eval()
    batches = [torch.randn(4, 3, 32, 32) for _ in range(3)]
    first = model.layers[0]
    with torch.no_grad():
        expect = torch.stack([first.conv(x).mean(dim=(0, 2, 3)) for x in batches]).mean(0)
    recalibrate_bn(model, [(x, torch.zeros(4)) for x in batches] + batches, num_batches=3)
    assert torch.allclose(first.bn.running_mean, expect, atol=1e-5)
    assert int(first.bn.num_batches_tracked) == 3
    assert not model.training and not first.bn.training
    assert first.bn.momentum == 0.1
    stats = [b.clone() for b in model.buffers()]
    recalibrate_bn(model.train(), iter(batches), num_batches=3)
    assert model.training and first.bn.training
    assert all(torch.equal(a, b) for a, b in zip(stats, model.buffers(), strict=True))


def test_recalibrate_bn_errors() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    with pytest.raises(ValueError, match="num_batches"):
        recalibrate_bn(model, [torch.zeros(1, 3, 2, 2)], num_batches=0)
    with pytest.raises(InvalidInputError, match="no batch"):
        recalibrate_bn(model, [], num_batches=2)
    with pytest.raises(InvalidInputError, match="images"):
        recalibrate_bn(model, ["x"], num_batches=1)  # type: ignore[list-item]


@pytest.mark.parametrize(("kind", "grid", "side"), [("softmax", 5, 5), ("window", 7, 9),
                                                    ("window", 7, 7), ("linear", 0, 6)])
def test_attention_kinds_match_static_layer(kind: str, grid: int, side: int) -> None:
    """Layer level, on maps larger than the contract's proxy input reaches (window padding)."""
    from nasforge.supernet.static import build_block
    from nasforge.testing.contracts import perturb_supernet

    torch.manual_seed(0)
    big = Block("attention", "T1", 9, 9, 48, 48, heads=3, head_dim=16, v_scale=4,
                attn="softmax", bias_grid=9, act="hswish", shortcut="identity")
    layer = DynamicAttention(big, SupernetSpec(attention_kinds=("softmax", "linear", "window")))
    perturb_supernet(layer, seed=1)
    sub = Block("attention", "T1", side, side, 32, 32, heads=2, head_dim=16, v_scale=3,
                attn=kind, window=7 if kind == "window" else 0, bias_grid=grid, act="hswish",
                shortcut="identity")
    layer.check(sub)
    layer.set_active(sub)
    static = build_block(sub)
    static.load_state_dict({k: v.detach().clone() for k, v in layer.export(sub).items()})
    x = torch.randn(2, 32, side, side)
    with torch.no_grad():
        assert (layer(x) - static(x)).abs().max().item() <= 1e-5
