"""The index-matrix view of ChoiceSpaces agrees with the per-arch API."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from nasforge.errors import InvalidArchitectureError
from nasforge.errors import InvalidInputError
from nasforge.search_spaces import get_space
from nasforge.search_spaces.choice_space import ChoiceSpace

SPACES = ["elasticvit", "elasticvit_efficient", "ofa_mbv3", "ofa_mbv3_w12", "nasbench201"]
_CACHE: dict[str, ChoiceSpace] = {}


def _space(name: str) -> ChoiceSpace:
    if name not in _CACHE:
        space = get_space(name)
        assert isinstance(space, ChoiceSpace)
        _CACHE[name] = space
    return _CACHE[name]


def _archs(space: ChoiceSpace, seed: int, n: int = 20) -> list:  # type: ignore[type-arg]
    rng = np.random.default_rng(seed)
    return [space.min_arch(), space.max_arch()] + [space.sample(rng) for _ in range(n)]


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(SPACES), seed=st.integers(0, 2**32 - 1))
def test_round_trip_and_encoding(name: str, seed: int) -> None:
    space = _space(name)
    archs = _archs(space, seed)
    idx = space.to_indices(archs)
    assert idx.shape == (len(archs), space.num_choices()) and idx.dtype == np.int64
    assert space.from_indices(idx) == archs
    per_arch = np.stack([space.encode(a) for a in archs])
    np.testing.assert_array_equal(space.encode_indices(idx), per_arch)
    np.testing.assert_array_equal(space.encode_many(archs), per_arch)


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(SPACES), seed=st.integers(0, 2**32 - 1),
       prob=st.floats(0.0, 1.0), n=st.integers(0, 40))
def test_vectorised_operators_give_valid_archs(name: str, seed: int, prob: float, n: int) -> None:
    space = _space(name)
    rng = np.random.default_rng(seed)
    a = space.sample_indices(rng, n)
    b = space.sample_indices(rng, n)
    for m in (a, b, space.mutate_indices(a, rng, prob), space.crossover_indices(a, b, rng)):
        assert m.shape == (n, space.num_choices())
        archs = space.from_indices(m)  # checks the cross-field rules too
        for arch in archs:
            space.validate(arch)
        np.testing.assert_array_equal(space.to_indices(archs), m)


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(SPACES), seed=st.integers(0, 2**32 - 1))
def test_repair_indices_matches_per_arch_repair(name: str, seed: int) -> None:
    """Deterministic repair (rng None) of random, possibly rule-breaking rows equals the
    one-row repair the per-arch operators use (``_from_row``)."""
    space = _space(name)
    rng = np.random.default_rng(seed)
    raw = (rng.random((30, space.num_choices())) * space.index_sizes()).astype(np.int64)
    fixed = space.repair_indices(raw, None)
    expected = [space._from_row(row, None) for row in raw.tolist()]
    assert space.from_indices(fixed) == expected


def test_mutate_prob_zero_and_one() -> None:
    space = _space("elasticvit")
    rng = np.random.default_rng(0)
    a = space.sample_indices(rng, 50)
    np.testing.assert_array_equal(space.mutate_indices(a, rng, 0.0), a)
    assert (space.mutate_indices(a, rng, 1.0) != a).any()
    with pytest.raises(ValueError, match="prob"):
        space.mutate_indices(a, rng, 1.5)


def test_sampling_distribution_matches_per_arch() -> None:
    """Vectorised and per-arch sampling draw the same marginal width distribution."""
    space = _space("elasticvit")
    cols = space.columns("widths")
    vec = space.sample_indices(np.random.default_rng(0), 4000)[:, cols]
    rng = np.random.default_rng(1)
    one = space.to_indices([space.sample(rng) for _ in range(4000)])[:, cols]
    for j in range(vec.shape[1]):
        k = int(space.index_sizes()[cols][j])
        p = np.bincount(vec[:, j], minlength=k) / len(vec)
        q = np.bincount(one[:, j], minlength=k) / len(one)
        assert np.abs(p - q).max() < 0.05


def test_index_errors_are_named() -> None:
    space = _space("elasticvit")
    idx = space.sample_indices(np.random.default_rng(0), 3)
    with pytest.raises(InvalidInputError, match="index matrix"):
        space.from_indices(idx[:, :5])
    bad = idx.copy()
    bad[1, 0] = 99
    with pytest.raises(InvalidArchitectureError, match=r"row 1, column resolution = 99"):
        space.from_indices(bad)
    broken = idx.copy()
    broken[:, space.columns("widths")] = [1, 0, 0, 0, 0, 0, 0]  # widths 24 > 16
    with pytest.raises(InvalidArchitectureError, match="non-decreasing"):
        space.from_indices(broken)
    other = _space("nasbench201").sample(np.random.default_rng(0))
    with pytest.raises(InvalidArchitectureError, match="space"):
        space.to_indices([other])
    with pytest.raises(InvalidInputError, match="no choice field"):
        space.columns("nope")


def test_empty_inputs() -> None:
    space = _space("ofa_mbv3")
    assert space.to_indices([]).shape == (0, space.num_choices())
    assert space.from_indices(np.zeros((0, space.num_choices()), dtype=np.int64)) == []
    assert space.encode_indices(np.zeros((0, space.num_choices()), dtype=np.int64)).shape == (
        0, len(space.encoding_names()))
    assert space.sample_indices(np.random.default_rng(0), 0).shape == (0, space.num_choices())
