"""Every registered space passes the space contract (sampling, validation, round trips)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from nasforge.search_spaces import SPACES
from nasforge.search_spaces import SearchSpace
from nasforge.search_spaces import get_space
from nasforge.testing.contracts import SpaceContract


@pytest.fixture(params=SPACES.list())
def space(request: pytest.FixtureRequest) -> SearchSpace:
    return get_space(request.param)


class TestEverySpace(SpaceContract):
    pass


@pytest.mark.parametrize("name", SPACES.list())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), prob=st.floats(0.0, 1.0))
def test_property_every_operator_yields_valid_archs(name: str, seed: int, prob: float) -> None:
    import numpy as np

    space = get_space(name)
    rng = np.random.default_rng(seed)
    a, b = space.sample(rng), space.sample(rng)
    for arch in (a, space.mutate(a, rng, prob), space.crossover(a, b, rng)):
        space.validate(arch)
        assert space.arch_from_dict(arch.to_dict()) == arch
        assert space.encode(arch).shape == (len(space.encoding_names()),)


@pytest.mark.parametrize("name", SPACES.list())
def test_arch_id_is_stable_across_runs(name: str) -> None:
    """arch_id is a pure function of the canonical JSON (same in a fresh interpreter)."""
    import subprocess
    import sys

    code = (f"from nasforge.search_spaces import get_space; s = get_space({name!r}); "
            "print(s.max_arch().arch_id, s.min_arch().to_json())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split(" ", 1)
    space = get_space(name)
    assert out[0] == space.max_arch().arch_id
    assert out[1].strip() == space.min_arch().to_json()
