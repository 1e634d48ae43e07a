"""The contract every search strategy keeps: valid archs, cheap bounds respected, deterministic
for a seed, better than its first batch.

A concrete test module supplies a ``make_strategy`` fixture, ``fn(space, objectives, seed) ->
BaseStrategy`` with small settings, parametrised over the strategy registry::

    @pytest.fixture(params=STRATEGIES.list())
    def make_strategy(request):
        return lambda space, objectives, seed: STRATEGIES.get(request.param)(
            space, objectives, seed=seed)

    class TestStrategies(StrategyContract): pass

Every search runs on a fresh :func:`synthetic_problem` (new objectives, so no cache is shared
between tests) and a fresh strategy; no test depends on another's side effects.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import cast

import numpy as np

if TYPE_CHECKING:
    from nasforge.search_spaces import NB201Arch
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace
    from nasforge.strategies.base import BaseStrategy
    from nasforge.strategies.objectives import SearchObjectives
    from nasforge.strategies.result import SearchResult

    StrategyFactory = Callable[[SearchSpace, SearchObjectives, int], BaseStrategy]

__all__ = ["StrategyContract", "synthetic_problem"]

_NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def synthetic_problem(seed: int = 0) -> tuple[SearchSpace, SearchObjectives]:
    """NAS-Bench-201 with a seeded synthetic accuracy (expensive, maximised) and a synthetic
    latency (cheap, upper bound 60% of its range): both additive over (edge, op) weights.

    Args:
        seed: seeds the (edge, op) weights.

    Returns:
        The ``nasbench201`` space and fresh objectives ``acc`` (maximise) and ``lat`` (minimise,
        bounded).

    Example:
        >>> space, objectives = synthetic_problem()
        >>> objectives.names, objectives["lat"].bound.upper is not None
        (['acc', 'lat'], True)
        >>> objectives.evaluate([space.min_arch()]).shape
        (1, 2)
    """
    from nasforge.search_spaces import get_space
    from nasforge.strategies.objectives import CallableObjective
    from nasforge.strategies.objectives import SearchObjectives

    space = get_space("nasbench201")
    rng = np.random.default_rng(seed)
    acc_w = rng.normal(size=(6, 5))
    lat_w = rng.uniform(0.5, 2.0, size=(6, 5))
    ops = {op: i for i, op in enumerate(_NB201_OPS)}

    def table(w: np.ndarray) -> Callable[[Sequence[Arch]], np.ndarray]:
        def fn(archs: Sequence[Arch]) -> np.ndarray:
            idx = np.array([[ops[e] for e in cast("NB201Arch", a).edges] for a in archs])
            return w[np.arange(6), idx].sum(axis=1) if len(archs) else np.zeros(0)
        return fn

    lo, hi = lat_w.min(axis=1).sum(), lat_w.max(axis=1).sum()
    objectives = SearchObjectives([
        CallableObjective("acc", table(acc_w), "maximize", cheap=False),
        CallableObjective("lat", table(lat_w), "minimize", cheap=True,
                          upper=float(lo + 0.6 * (hi - lo))),
    ])
    return space, objectives


class StrategyContract:
    """Every strategy: valid archs, cheap bounds respected, deterministic, improves.

    Subclasses provide a ``make_strategy`` fixture: ``fn(space, objectives, seed) ->
    BaseStrategy`` (small settings so that a search of :attr:`BUDGET` takes seconds).
    """

    BUDGET = 48

    def _run(self, make_strategy: StrategyFactory, seed: int = 0) -> SearchResult:
        from nasforge.strategies import run_search

        space, objectives = synthetic_problem()
        strategy = make_strategy(space, objectives, seed)
        return run_search(strategy, budget=self.BUDGET)

    def test_valid_archs_within_cheap_bounds(self, make_strategy: StrategyFactory) -> None:
        result = self._run(make_strategy)
        space, objectives = synthetic_problem()
        assert result.n_evaluated == self.BUDGET, result.stopped
        for a in result.archs:
            space.validate(a)
        lat = result.candidates["lat"].to_numpy()
        bound = objectives["lat"].bound
        assert bound is not None and bound.upper is not None
        assert (lat <= bound.upper).all(), f"cheap bound violated: max {lat.max()} > {bound.upper}"
        ids = result.candidates["arch_id"]
        assert ids.is_unique, "the driver evaluated an arch twice"

    def test_deterministic_for_a_seed(self, make_strategy: StrategyFactory) -> None:
        a = self._run(make_strategy, seed=3).candidates
        b = self._run(make_strategy, seed=3).candidates
        assert a["arch_id"].tolist() == b["arch_id"].tolist()
        np.testing.assert_array_equal(a["acc"].to_numpy(), b["acc"].to_numpy())

    def test_improves_over_first_batch(self, make_strategy: StrategyFactory) -> None:
        from nasforge.strategies import run_search

        space, objectives = synthetic_problem()
        strategy = make_strategy(space, objectives, 0)
        first = strategy.batch_size
        result = run_search(strategy, budget=self.BUDGET)
        scores = result.scores
        assert first < self.BUDGET
        assert scores[first:].max() > scores[:first].max(), (
            f"no improvement over the first batch of {first}: {scores[:first].max()} vs "
            f"{scores[first:].max()}")
