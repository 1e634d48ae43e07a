"""The ``nasbench201`` space: arch_str format, graph functions, encoding, FLOPs/params vs torch."""

from __future__ import annotations

import itertools
from collections import Counter

import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from networkx.algorithms.isomorphism import categorical_edge_match
from networkx.algorithms.isomorphism import categorical_node_match
from torch import nn

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidArchitectureError
from nasforge.errors import InvalidInputError
from nasforge.search_spaces import SPACES
from nasforge.search_spaces import NB201Arch
from nasforge.search_spaces import NB201Space
from nasforge.search_spaces import arch_from_nb201_str
from nasforge.search_spaces import canonical_id
from nasforge.search_spaces import get_space
from nasforge.search_spaces._nasbench201_cell import NB201_EDGES
from nasforge.search_spaces._nasbench201_cell import NB201_OPS
from nasforge.search_spaces._nasbench201_cell import NB201_PATHS
from nasforge.search_spaces._nasbench201_cell import canonical_arch
from nasforge.search_spaces._nasbench201_cell import cell_graph
from nasforge.search_spaces._nasbench201_cell import is_degenerate
from nasforge.search_spaces._nasbench201_cell import live_edges
from nasforge.search_spaces._nasbench201_cell import prune
from nasforge.search_spaces._nasbench201_cell import unique_str
from nasforge.supernet.static import build_static

EXAMPLE = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
           "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
ALL = [NB201Arch("nasbench201", e) for e in itertools.product(NB201_OPS, repeat=6)]
edges_st = st.tuples(*[st.sampled_from(NB201_OPS)] * 6)


@pytest.fixture(scope="module")
def space() -> NB201Space:
    sp = get_space("nasbench201")
    assert isinstance(sp, NB201Space)
    return sp


def A(text: str) -> NB201Arch:
    return arch_from_nb201_str(text)


# ---- registration and format -----------------------------------------------------------------
def test_registered_tabular_space(space: NB201Space) -> None:
    assert "nasbench201" in SPACES
    assert space.size() == 15_625 == len(ALL)
    assert space.num_choices() == 6
    assert space.has_model is False
    with pytest.raises(IncompatibleComponentsError, match="tabular"):
        build_static(space, space.max_arch())


def test_parse_standard_string(space: NB201Space) -> None:
    a = A(EXAMPLE)
    assert a.edges == ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect",
                       "nor_conv_3x3", "skip_connect")
    assert a.to_arch_str() == EXAMPLE
    assert NB201Arch.from_arch_str(f"  {EXAMPLE}\n") == a
    space.validate(a)
    assert space.arch_from_str(EXAMPLE) == a
    # inputs listed out of order within a node map to the same edges
    shuffled = ("|nor_conv_3x3~0|+|avg_pool_3x3~1|nor_conv_3x3~0|+"
                "|skip_connect~2|skip_connect~0|nor_conv_3x3~1|")
    assert A(shuffled) == a


@settings(max_examples=200, deadline=None)
@given(edges=edges_st)
def test_property_arch_str_round_trip(edges: tuple[str, ...]) -> None:
    a = NB201Arch("nasbench201", edges)
    assert A(a.to_arch_str()) == a
    assert A(a.to_arch_str()).arch_id == a.arch_id


@pytest.mark.parametrize(("text", "token"), [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "3 node groups"),
    ("|nor_conv_3x3-0|+|none~0|none~1|+|none~0|none~1|none~2|", "'nor_conv_3x3-0'"),
    ("|none~x|+|none~0|none~1|+|none~0|none~1|none~2|", "'none~x'"),
    ("|none~0|+|none~0|none~0|+|none~0|none~1|none~2|", "'none~0'"),
    ("|none~0|+|none~0|none~2|+|none~0|none~1|none~2|", "'none~2'"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 takes 2"),
    ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "'none~0|'"),
])
def test_malformed_string_names_token(text: str, token: str) -> None:
    with pytest.raises(InvalidInputError, match=token):
        A(text)


def test_unknown_op_names_edge_and_allowed_set() -> None:
    with pytest.raises(InvalidArchitectureError) as e:
        A("|none~0|+|none~0|conv_5x5~1|+|none~0|none~1|none~2|")
    msg = str(e.value)
    assert "edge 2<-1" in msg and "'conv_5x5'" in msg and "nor_conv_3x3" in msg


def test_validate_names_edge(space: NB201Space) -> None:
    bad = NB201Arch("nasbench201", ("none",) * 5 + ("sep_conv",))
    with pytest.raises(InvalidArchitectureError, match=r"edges\[5\] \(edge 3<-2\)"):
        space.validate(bad)
    with pytest.raises(InvalidArchitectureError, match="6 ops"):
        space.validate(NB201Arch("nasbench201", ("none",) * 5))
    with pytest.raises(InvalidArchitectureError, match="edges"):
        space.arch_from_dict({"space": "nasbench201", "edges": ["none"] * 5 + ["sep_conv"]})


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), prob=st.floats(0.0, 1.0))
def test_property_operators_yield_valid_archs(seed: int, prob: float) -> None:
    space = get_space("nasbench201")
    rng = np.random.default_rng(seed)
    a, b = space.sample(rng), space.sample(rng)
    for x in (a, b, space.mutate(a, rng, prob), space.crossover(a, b, rng)):
        space.validate(x)
        assert A(x.to_arch_str()) == x
    child = space.crossover(a, b, rng)
    assert all(c in (x, y) for c, x, y in zip(child.edges, a.edges, b.edges, strict=True))


def test_sampling_is_seeded_and_covers_ops(space: NB201Space) -> None:
    s1 = [space.sample(np.random.default_rng(5)) for _ in range(3)]
    s2 = [space.sample(np.random.default_rng(5)) for _ in range(3)]
    assert s1 == s2
    rng = np.random.default_rng(0)
    seen = Counter(op for _ in range(300) for op in space.sample(rng).edges)
    assert set(seen) == set(NB201_OPS)


# ---- graph functions ---------------------------------------------------------------------------
def _path_live(a: NB201Arch) -> list[bool]:
    return [all(a.edges[k] != "none" for k in p) for p in NB201_PATHS]


def test_degenerate_matches_path_enumeration() -> None:
    for a in ALL:
        assert is_degenerate(a) == (not any(_path_live(a)))
        # an edge is live iff it lies on a live path
        on_live = {k for p, ok in zip(NB201_PATHS, _path_live(a), strict=True) if ok for k in p}
        assert live_edges(a) == tuple(k in on_live for k in range(6))
    assert sum(is_degenerate(a) for a in ALL) == 341


def test_graph_and_pruning_examples() -> None:
    g = cell_graph(A(EXAMPLE))
    assert isinstance(g, nx.DiGraph) and g.number_of_edges() == 6
    assert g.edges[1, 2]["op"] == "avg_pool_3x3" and g.nodes[0]["role"] == "input"
    # node 1 feeds nothing: 1<-0 is dead
    a = A("|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|"
          "nor_conv_3x3~2|")
    assert prune(a) == A("|none~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|"
                         "nor_conv_3x3~2|")
    # node 1 is never reached from the input: 3<-1 reads zeros
    b = A("|none~0|+|nor_conv_1x1~0|none~1|+|none~0|nor_conv_3x3~1|skip_connect~2|")
    assert prune(b).edges == ("none", "nor_conv_1x1", "none", "none", "none", "skip_connect")
    d = A("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|avg_pool_3x3~2|")
    assert is_degenerate(d) and prune(d).edges == ("none",) * 6
    assert not is_degenerate(A(EXAMPLE)) and prune(A(EXAMPLE)) == A(EXAMPLE)


@settings(max_examples=200, deadline=None)
@given(edges=edges_st)
def test_property_prune_is_idempotent_and_keeps_paths(edges: tuple[str, ...]) -> None:
    a = NB201Arch("nasbench201", edges)
    p = prune(a)
    assert prune(p) == p
    assert _path_live(p) == _path_live(a)
    assert canonical_id(p) == canonical_id(a)
    c = canonical_arch(a)
    assert canonical_arch(c) == c


def test_swap_of_inner_nodes_only_where_dag_allows() -> None:
    a = A("|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|none~0|skip_connect~1|nor_conv_1x1~2|")
    b = A("|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|nor_conv_1x1~1|skip_connect~2|")
    assert a != b and canonical_id(a) == canonical_id(b)
    # with a live 2<-1 edge the inner nodes are ordered: no swap
    c = A("|nor_conv_3x3~0|+|avg_pool_3x3~0|skip_connect~1|+|none~0|skip_connect~1|"
          "nor_conv_1x1~2|")
    d = A("|avg_pool_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|nor_conv_1x1~1|"
          "skip_connect~2|")
    assert canonical_id(c) != canonical_id(d)
    # ... unless that edge is dead (node 1 unreachable): then it prunes away
    e = A("|none~0|+|avg_pool_3x3~0|skip_connect~1|+|nor_conv_3x3~0|none~1|skip_connect~2|")
    f = A("|avg_pool_3x3~0|+|none~0|none~1|+|nor_conv_3x3~0|skip_connect~1|none~2|")
    assert canonical_id(e) == canonical_id(f)


def test_canonical_form_equals_graph_isomorphism_exhaustively() -> None:
    """Over all 15,625 cells: same canonical id <=> isomorphic pruned graphs (networkx)."""
    nm, em = categorical_node_match("role", None), categorical_edge_match("op", None)
    buckets: dict[tuple[object, ...], list[tuple[str, nx.DiGraph]]] = {}
    for a in ALL:
        g = cell_graph(prune(a))
        deg = {n: (g.nodes[n]["role"], g.in_degree(n), g.out_degree(n)) for n in g}
        key = tuple(sorted((d["op"], deg[u], deg[v]) for u, v, d in g.edges(data=True)))
        buckets.setdefault(key, []).append((canonical_id(a), g))
    n_classes = 0
    for items in buckets.values():
        reps: list[tuple[str, nx.DiGraph]] = []
        for cid, g in items:
            match = [rc for rc, rg in reps if nx.is_isomorphic(g, rg, node_match=nm, edge_match=em)]
            assert len(match) <= 1
            if match:
                assert cid == match[0]
            else:
                assert all(cid != rc for rc, _ in reps)
                reps.append((cid, g))
        n_classes += len(reps)
    assert n_classes == len({canonical_id(a) for a in ALL}) == 8765
    # NAS-Bench-201's coarser functional identity gives the paper's 6,466
    assert len({unique_str(a) for a in ALL}) == 6466


# ---- encoding --------------------------------------------------------------------------------
def test_encoding(space: NB201Space) -> None:
    names = space.encoding_names()
    assert len(names) == 54 == len(set(names))
    x = space.encode(A(EXAMPLE))
    assert x.shape == (54,) and x.dtype == np.float64
    assert x[:30].reshape(6, 5).sum(axis=1).tolist() == [1.0] * 6
    col = dict(zip(names, x.tolist(), strict=True))
    assert col["path0-3:skip_connect"] == 1
    assert col["path0-1-3:nor_conv_3x3"] == 2
    assert col["path0-2-3:nor_conv_3x3"] == 1 and col["path0-2-3:skip_connect"] == 1
    assert col["path0-1-2-3:avg_pool_3x3"] == 1 and col["path0-1-2-3:nor_conv_3x3"] == 1
    assert col["live_paths"] == 4 and col["conv_depth"] == 2 and col["conv3x3_depth"] == 2
    dead = space.encode(A("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"))
    assert dead[30:].sum() == 0
    enc = space.encode_many(ALL[:50])
    assert enc.shape == (50, 54)
    enc[0, 0] = 7.0  # a copy: the cache is not corrupted
    assert space.encode(ALL[0])[0] == 1.0


# ---- FLOPs and params ------------------------------------------------------------------------
def test_published_flops_and_params(space: NB201Space) -> None:
    hi, lo = space.max_arch(), space.min_arch()
    # NAS-Bench-201 (xautodl get_model_infos) cifar10: 220.11969 MFLOPs, 1.531546 M params
    assert space.flops_reference(hi) == 220_119_690
    assert space.flops(hi) == 220_119_680  # without the classifier bias adds
    assert space.params(hi) == 1_531_546
    assert space.flops_reference(lo) == 7_783_050
    assert space.params(lo) == 73_306
    flops = [space.flops_reference(a) for a in ALL[::7]]
    assert min(flops) >= 7_783_050 and max(flops) <= 220_119_690
    kinds = {b.kind for b in space.blocks(hi)}
    assert kinds == {"nb201_stem", "nb201_edge", "nb201_resblock", "nb201_head"}
    assert len(space.blocks(hi)) == 1 + 3 * 5 * 6 + 2 + 1


class _ReLUConvBN(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int, stride: int) -> None:
        super().__init__(nn.ReLU(), nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
                         nn.BatchNorm2d(cout))


class _Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0.0


def _op(name: str, c: int) -> nn.Module:
    return {"none": lambda: _Zero(), "skip_connect": nn.Identity,
            "nor_conv_1x1": lambda: _ReLUConvBN(c, c, 1, 1),
            "nor_conv_3x3": lambda: _ReLUConvBN(c, c, 3, 1),
            "avg_pool_3x3": lambda: nn.AvgPool2d(3, 1, 1, count_include_pad=False)}[name]()


class _Cell(nn.Module):
    def __init__(self, edges: tuple[str, ...], c: int) -> None:
        super().__init__()
        self.ops = nn.ModuleList(_op(op, c) for op in edges)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for i in range(1, 4):
            nodes.append(sum(self.ops[k](nodes[j]) for k, (to, j) in enumerate(NB201_EDGES)
                             if to == i))
        return nodes[3]


class _ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.a, self.b = _ReLUConvBN(cin, cout, 3, 2), _ReLUConvBN(cout, cout, 3, 1)
        self.down = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(x) + self.b(self.a(x))


def _tiny_network(edges: tuple[str, ...]) -> nn.Module:
    """NAS-Bench-201's CIFAR TinyNetwork (C=16, N=5), written out independently."""
    layers: list[nn.Module] = [nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)]
    for s, c in enumerate((16, 32, 64)):
        if s:
            layers.append(_ResBlock(c // 2, c))
        layers += [_Cell(edges, c) for _ in range(5)]
    layers += [nn.BatchNorm2d(64), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Linear(64, 10)]
    return nn.Sequential(*layers)


def _torch_counts(model: nn.Module) -> tuple[int, int]:
    macs = 0

    def hook(m: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(m, nn.Conv2d):
            macs += out.numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            macs += out.numel() * m.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, nn.Conv2d | nn.Linear)]
    with torch.no_grad():
        out = model.eval()(torch.zeros(1, 3, 32, 32))
    for h in handles:
        h.remove()
    assert out.shape == (1, 10)
    return macs, sum(p.numel() for p in model.parameters())


def test_flops_and_params_match_torch(space: NB201Space) -> None:
    rng = np.random.default_rng(0)
    archs = [space.max_arch(), space.min_arch(), A(EXAMPLE), space.sample(rng)]
    for a in archs:
        macs, params = _torch_counts(_tiny_network(a.edges))
        assert space.flops(a) == macs, a.to_arch_str()
        assert space.params(a) == params, a.to_arch_str()
