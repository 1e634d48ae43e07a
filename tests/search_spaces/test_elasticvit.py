"""ElasticViT: the repository's FLOPs rule, the 10-field tuple, widths rule, space size."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nasforge.errors import InvalidArchitectureError
from nasforge.errors import InvalidInputError
from nasforge.search_spaces import get_space
from nasforge.search_spaces._elasticvit_io import arch_from_elasticvit_tuple
from nasforge.search_spaces._elasticvit_io import arch_to_elasticvit_tuple
from nasforge.search_spaces.io import ARCH_FORMATS


def test_reference_flops_of_min_arch_is_37_37_mflops() -> None:
    """ElasticViT's counting rule (its repo's compute_flops) gives 37.37 MFLOPs for the
    all-minimum architecture at resolution 128 (DESIGN §4.1)."""
    space = get_space("elasticvit")
    mflops = space.flops_reference(space.min_arch()) / 1e6
    assert mflops == pytest.approx(37.37, rel=0.005)


def test_max_arch_is_about_3_2_gflops() -> None:
    space = get_space("elasticvit")
    assert space.flops_reference(space.max_arch()) / 1e9 == pytest.approx(3.2, rel=0.02)


def test_reference_rule_for_a_published_tuple_matches_hand_computation() -> None:
    # min_archs[200] of ElasticViT's configs/final_3min_space.yaml
    t = [128, [16, 16, 16, 48, 80, 144, 160], [1, 2, 2, 1, 1, 1, 1], [1, 3, 3, 3, 3],
         [3, 3, 3, 3, 3], [2, 2, 2, 2], [3, 5, 9, 10], [1, 1, 1, 1], [1, 1, 1, 1], [2, 2, 2, 2]]
    space = get_space("elasticvit")
    arch = arch_from_elasticvit_tuple(space, t)
    assert arch == space.min_arch()
    # hand computation of one transformer layer of T1 (N = 8*8 tokens, C = 48, H = 3, v = 32)
    n, c, h, v = 64, 48, 3, 32
    t1_attn = h * n * n * 16 + h * n * n + h * n * n * v + n * c * (2 * 16 * h + v * h) \
        + n * v * h * c + n * v * h
    attn_blocks = [b for b in space.blocks(arch) if b.kind == "attention" and b.stage == "T1"]
    from nasforge.search_spaces.block import block_flops_reference

    assert block_flops_reference(attn_blocks[0]) == t1_attn


def test_tuple_round_trip_and_format_registry() -> None:
    space = get_space("elasticvit")
    rng = np.random.default_rng(0)
    fmt = ARCH_FORMATS.get("elasticvit-tuple")
    for _ in range(30):
        a = space.sample(rng)
        t = arch_to_elasticvit_tuple(a)
        assert len(t) == 10
        assert arch_from_elasticvit_tuple(space, t) == a
        assert fmt.load(fmt.dump(a)) == [a]  # type: ignore[misc]
    # Python-literal tuple text as stored by the repo
    text = str(tuple(arch_to_elasticvit_tuple(space.max_arch())))
    assert fmt.load(text) == [space.max_arch()]


@pytest.mark.parametrize(
    ("mutate", "error", "match"),
    [
        (lambda t: t[:9], InvalidInputError, "10 fields"),
        (lambda t: [t[0], t[1][:6], *t[2:]], InvalidInputError, "7 stages"),
        (lambda t: [*t[:3], t[3][:-1], *t[4:]], InvalidInputError, "conv_ratio"),
        (lambda t: [100, *t[1:]], InvalidArchitectureError, "resolution = 100"),
        (lambda t: [*t[:6], [h + 1 for h in t[6]], *t[7:]], InvalidArchitectureError,
         "num_heads"),
    ],
)
def test_malformed_tuples_are_named(mutate, error, match) -> None:  # type: ignore[no-untyped-def]
    space = get_space("elasticvit")
    t = arch_to_elasticvit_tuple(space.min_arch())
    with pytest.raises(error, match=match):
        arch_from_elasticvit_tuple(space, mutate(json.loads(json.dumps(t))))


def test_layerwise_values_within_a_stage_are_rejected() -> None:
    space = get_space("elasticvit")
    t = arch_to_elasticvit_tuple(space.max_arch())
    t[4][3] = 3 if t[4][3] == 5 else 5  # kernel of one C1 layer differs from its stage
    with pytest.raises(InvalidArchitectureError, match="within stage"):
        arch_from_elasticvit_tuple(space, t)


def test_widths_must_be_non_decreasing() -> None:
    space = get_space("elasticvit")
    d = space.max_arch().to_dict()
    d["widths"] = [24, 16, 48, 96, 160, 288, 320]
    with pytest.raises(InvalidArchitectureError, match=r"widths\[1\] = 16"):
        space.arch_from_dict(d)


def test_size_counts_non_decreasing_width_chains_exactly() -> None:
    # brute force over the width chains on a reduced copy: count chains by enumeration
    import itertools

    from nasforge.search_spaces._elasticvit import WIDTHS

    chains = sum(1 for w in itertools.product(*WIDTHS)
                 if all(a <= b for a, b in itertools.pairwise(w)))
    space = get_space("elasticvit")
    rest = 6 * 2 * 4 * 5 * 5 * 6 * 6 * 6 * 2**3 * 4**2 * 4**4 * 3**4
    assert space.size() == chains * rest


def test_efficient_space_has_attention_kinds_and_elasticvit_rejects_them() -> None:
    eff, base = get_space("elasticvit_efficient"), get_space("elasticvit")
    rng = np.random.default_rng(3)
    kinds = {k for _ in range(50) for k in eff.sample(rng).attention}  # type: ignore[attr-defined]
    assert kinds == {"softmax", "linear", "window"}
    d = base.min_arch().to_dict()
    d["attention"] = ["linear", "softmax", "softmax", "softmax"]
    with pytest.raises(InvalidArchitectureError, match=r"attention\[0\] = 'linear'"):
        base.arch_from_dict(d)


def test_window_and_linear_attention_cost_less_at_large_token_counts() -> None:
    eff = get_space("elasticvit_efficient")
    a = eff.max_arch()
    soft = eff.flops(a)
    lin = eff.flops(a.replace(attention=("linear",) * 4))
    assert lin < soft
