"""The contract every search space keeps: sampling, mutation, crossover, validation, encoding,
round trips and cost counting.

A concrete test module supplies a ``space`` fixture, parametrised over the space registry::

    @pytest.fixture(params=SPACES.list())
    def space(request): return get_space(request.param)

    class TestEverySpace(SpaceContract): pass

Each test draws its architectures from its own seeded generator; none depends on another's
side effects.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from nasforge.errors import InvalidArchitectureError
from nasforge.search_spaces.arch import Arch
from nasforge.search_spaces.base import SearchSpace

__all__ = ["SpaceContract"]


class SpaceContract:
    """Every search space: sampling, mutation, crossover, validation, encoding, counting.

    Subclasses provide a ``space`` fixture returning a :class:`SearchSpace`.
    """

    N = 40

    def _archs(self, space: SearchSpace, seed: int = 0) -> list[Arch]:
        rng = np.random.default_rng(seed)
        return [space.min_arch(), space.max_arch()] + [space.sample(rng) for _ in range(self.N)]

    def test_sample_mutate_crossover_validate(self, space: SearchSpace) -> None:
        rng = np.random.default_rng(1)
        archs = self._archs(space)
        for a in archs:
            space.validate(a)
            space.validate(space.mutate(a, rng, prob=0.5))
        for a, b in itertools.pairwise(archs):
            space.validate(space.crossover(a, b, rng))

    def test_same_seed_same_archs(self, space: SearchSpace) -> None:
        a = [x.arch_id for x in self._archs(space, seed=7)]
        b = [x.arch_id for x in self._archs(space, seed=7)]
        c = [x.arch_id for x in self._archs(space, seed=8)]
        assert a == b
        assert a != c

    def test_round_trips_are_identities(self, space: SearchSpace) -> None:
        import yaml

        for a in self._archs(space):
            assert space.arch_from_dict(json.loads(a.to_json())) == a
            assert space.arch_from_dict(yaml.safe_load(a.to_yaml())) == a
            assert space.arch_from_dict(json.loads(a.to_json())).arch_id == a.arch_id

    def test_encode_fixed_length(self, space: SearchSpace) -> None:
        n = len(space.encoding_names())
        enc = space.encode_many(self._archs(space))
        assert enc.shape == (self.N + 2, n)
        assert np.isfinite(enc).all()

    def test_min_max_bracket_flops(self, space: SearchSpace) -> None:
        lo, hi = space.flops(space.min_arch()), space.flops(space.max_arch())
        assert 0 < lo < hi
        for a in self._archs(space):
            assert lo <= space.flops(a) <= hi
            assert space.params(a) > 0

    def test_out_of_space_value_names_field(self, space: SearchSpace) -> None:
        d = space.min_arch().to_dict()
        field = next(k for k in d if k != "space")
        v = d[field]
        d[field] = [999_999] * len(v) if isinstance(v, list) else 999_999
        with pytest.raises(InvalidArchitectureError, match=field):
            space.arch_from_dict(d)

    def test_size_and_choices(self, space: SearchSpace) -> None:
        assert space.size() >= 2
        assert space.num_choices() >= 1
