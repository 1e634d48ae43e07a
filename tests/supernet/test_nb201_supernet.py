"""The NAS-Bench-201 one-shot supernet: the shared contract, and one path per edge."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasforge.errors import InvalidArchitectureError
from nasforge.search_spaces import get_space
from nasforge.supernet import Supernet
from nasforge.supernet import build_supernet
from nasforge.testing.contracts import SupernetContract
from nasforge.testing.contracts import perturb_supernet


@pytest.fixture(scope="module")
def supernet() -> Supernet:
    space = get_space("nasbench201_net")
    net = build_supernet(space, num_classes=space.num_classes)  # type: ignore[attr-defined]
    perturb_supernet(net, seed=0)
    return net.eval()


class TestNB201Supernet(SupernetContract):
    pass


def test_every_edge_holds_both_convs_and_one_runs(supernet: Supernet) -> None:
    space = supernet.space
    arch = space.arch_from_str(  # type: ignore[attr-defined]
        "|nor_conv_1x1~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|")
    supernet.set_active(arch)
    supernet.zero_grad(set_to_none=True)
    supernet.train()
    try:
        supernet(torch.randn(2, 3, 32, 32)).sum().backward()
    finally:
        supernet.eval()
    edges = [m for m in supernet.layers if type(m).__name__ == "DynamicNB201Edge"]
    assert len(edges) == 3 * 5 * 6
    first = edges[0]  # 1<-0: nor_conv_1x1
    assert first.nor_conv_1x1.conv.weight.grad is not None
    assert first.nor_conv_3x3.conv.weight.grad is None
    pool = edges[2]  # 2<-1: avg_pool_3x3 has no weights; its conv slots stay untouched
    assert pool.nor_conv_1x1.conv.weight.grad is None
    assert pool.nor_conv_3x3.conv.weight.grad is None
    supernet.zero_grad(set_to_none=True)


@pytest.mark.slow
def test_extracted_twin_of_a_cell_equals_the_supernet_on_50_cells(supernet: Supernet) -> None:
    """Within 1e-5 relative to the logits' scale: cells of skips and pools (no BN on the path)
    grow the activations up to ~4x per cell, so some perturbed networks give logits of ~1e3,
    where float32 itself resolves only ~1e-4."""
    space = supernet.space
    rng = np.random.default_rng(11)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    for _ in range(50):
        arch = space.sample(rng)
        supernet.set_active(arch)
        with torch.no_grad():
            y = supernet(x)
            diff = (y - supernet.extract(arch).eval()(x)).abs().max().item()
        scale = max(1.0, y.abs().max().item())
        assert diff <= 1e-5 * scale, (arch.to_arch_str(), diff, scale)  # type: ignore[attr-defined]


def test_a_tabular_cell_is_refused(supernet: Supernet) -> None:
    from nasforge.errors import IncompatibleComponentsError

    with pytest.raises(IncompatibleComponentsError, match="nasbench201_net"):
        supernet.set_active(get_space("nasbench201").max_arch())
    with pytest.raises(InvalidArchitectureError, match="resolution"):
        supernet.set_active(supernet.space.max_arch().replace(resolution=28))
