"""Reusable contract test suites: subclass one and supply a fixture (Optuna's pattern).

One module per plug-in kind: :mod:`.space` (:class:`SpaceContract`), :mod:`.predictor`
(:class:`PredictorContract`), :mod:`.strategy` (:class:`StrategyContract`) and :mod:`.supernet`
(:class:`SupernetContract`). A concrete test module subclasses a contract and supplies its
fixture, parametrised over the kind's registry, so a new plug-in is tested the moment it is
registered::

    @pytest.fixture(params=SPACES.list())
    def space(request): return get_space(request.param)

    class TestSpaces(SpaceContract): pass

No contract test depends on another's side effects: each builds its own data and objectives,
and the supernet suite restores the shared (module-scoped) supernet after every test.
"""

from __future__ import annotations

from nasforge.testing.predictor import PredictorContract
from nasforge.testing.predictor import synthetic_regression
from nasforge.testing.space import SpaceContract
from nasforge.testing.strategy import StrategyContract
from nasforge.testing.strategy import synthetic_problem
from nasforge.testing.supernet import SupernetContract
from nasforge.testing.supernet import perturb_supernet

__all__ = [
    "PredictorContract",
    "SpaceContract",
    "StrategyContract",
    "SupernetContract",
    "perturb_supernet",
    "synthetic_problem",
    "synthetic_regression",
]
