"""NAS-Bench-201 as a network space: the built TinyNetwork's counted FLOPs and params equal the
blocks' analytic ones, its structure is NB201's, and the tabular space is unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasforge.errors import InvalidArchitectureError
from nasforge.errors import InvalidInputError
from nasforge.search_spaces import NB201NetArch
from nasforge.search_spaces import get_space
from nasforge.supernet.static import build_static
from nasforge.supernet.static._nb201 import NB201Network
from nasforge.supernet.static._nb201 import run_cell
from tests.search_spaces.test_flops_vs_torch import _count

BEST = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
        "|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")


@pytest.mark.slow
def test_flops_and_params_equal_a_torch_count_for_50_random_cells() -> None:
    space = get_space("nasbench201_net")
    rng = np.random.default_rng(201)
    archs = [space.sample(rng) for _ in range(50)]
    assert len({a.arch_id for a in archs}) == 50
    for arch in archs:
        with torch.device("meta"):
            model = build_static(space, arch).eval()
        assert _count(model, 32, "meta") == space.flops(arch), arch
        assert sum(p.numel() for p in model.parameters()) == space.params(arch), arch


def test_max_cell_has_nb201s_published_size() -> None:
    space = get_space("nasbench201_net")
    arch = space.max_arch()
    model = build_static(space, arch).eval()
    assert _count(model, 32) == space.flops(arch) == 220_119_680  # NB201: 220.11969 M - bias
    assert sum(p.numel() for p in model.parameters()) == space.params(arch) == 1_531_546


def test_network_structure_is_tinynetwork() -> None:
    space = get_space("nasbench201_net")
    model = build_static(space, space.arch_from_str(BEST))  # type: ignore[attr-defined]
    assert isinstance(model, NB201Network)
    kinds = [b.kind for b in model.blocks]
    assert kinds[0] == "nb201_stem" and kinds[-1] == "nb201_head"
    assert kinds.count("nb201_edge") == 3 * 5 * 6
    assert kinds.count("nb201_resblock") == 2
    widths = sorted({b.cout for b in model.blocks if b.kind == "nb201_edge"})
    assert widths == [16, 32, 64]
    x = torch.randn(2, 3, 32, 32)
    assert model.eval()(x).shape == (2, 10)


def test_cell_sums_its_in_edges() -> None:
    """node1 = e0(x); node2 = e1(x) + e2(node1); node3 = e3(x) + e4(node1) + e5(node2)."""
    fns = [lambda t, k=k: t * (k + 2) for k in range(6)]

    class F(torch.nn.Module):
        def __init__(self, k: int) -> None:
            super().__init__()
            self.k = k

        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return fns[self.k](t)

    x = torch.ones(1, 1, 1, 1)
    out = run_cell([F(k) for k in range(6)], x)
    n1 = 2.0
    n2 = 3.0 + 4.0 * n1
    n3 = 5.0 + 6.0 * n1 + 7.0 * n2
    assert out.item() == n3


def test_ops_follow_nb201_definitions() -> None:
    space = get_space("nasbench201_net")
    arch = space.arch_from_str(  # type: ignore[attr-defined]
        "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|skip_connect~2|")
    model = build_static(space, arch).eval()
    edges = [m for m in model.layers if type(m).__name__ == "NB201Edge"]
    x = torch.randn(1, 16, 8, 8)
    pool = torch.nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    assert torch.equal(edges[0](x), pool)
    assert torch.equal(edges[1](x), x)
    assert torch.equal(edges[2](x), torch.zeros_like(x))
    # only pooled + identity reach the output: the cell is x (skip through node 2)
    assert torch.equal(run_cell(edges[:6], x), x)


def test_arch_str_round_trip_and_resolution() -> None:
    space = get_space("nasbench201_net")
    arch = space.arch_from_str(BEST)  # type: ignore[attr-defined]
    assert isinstance(arch, NB201NetArch)
    assert arch.resolution == 32 and arch.space == "nasbench201_net"
    assert arch.to_arch_str() == BEST
    assert len(space.encode(arch)) == len(space.encoding_names()) == 55
    with pytest.raises(InvalidArchitectureError, match="resolution"):
        space.validate(arch.replace(resolution=30))
    with pytest.raises(InvalidInputError, match="multiples of 4"):
        type(space)(resolutions=(30,))


def test_other_resolutions_cost_and_run() -> None:
    space = type(get_space("nasbench201_net"))(resolutions=(16, 32))
    small, big = space.arch_from_str(BEST, resolution=16), space.arch_from_str(BEST)  # type: ignore[attr-defined]
    head = 64 * 10  # the classifier's MACs do not scale with the resolution
    assert 4 * (space.flops(small) - head) == space.flops(big) - head
    model = build_static(space, small).eval()
    assert _count(model, 16) == space.flops(small)
    assert model(torch.randn(1, 3, 16, 16)).shape == (1, 10)


def test_tabular_space_is_unchanged() -> None:
    tab = get_space("nasbench201")
    assert tab.has_model is False
    net = get_space("nasbench201_net")
    a = net.arch_from_str(BEST)  # type: ignore[attr-defined]
    t = tab.arch_from_str(BEST)  # type: ignore[attr-defined]
    assert tab.flops(t) == net.flops(a)
    assert tab.params(t) == net.params(a)


def test_static_builder_registry_picks_the_network_by_space() -> None:
    """``nasbench201_net`` runs its cells as a DAG (its registered builder); a space without a
    registered builder gets the plain BlockNet."""
    from nasforge.supernet.static import STATIC_BUILDERS
    from nasforge.supernet.static import BlockNet

    assert STATIC_BUILDERS.get("nasbench201_net") is NB201Network
    net = get_space("nasbench201_net")
    assert type(build_static(net, net.min_arch())) is NB201Network
    vit = get_space("elasticvit")
    assert "elasticvit" not in STATIC_BUILDERS
    assert type(build_static(vit, vit.min_arch())) is BlockNet
