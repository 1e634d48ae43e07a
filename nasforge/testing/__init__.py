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

from nasforge._extras import require_optional

# the suites are pytest classes: without pytest (a plain install) say which extra brings it
require_optional({"pytest": "pytest"}, extra="dev", feature="nasforge.testing (contract tests)")

from nasforge.testing.predictor import PredictorContract  # noqa: E402
from nasforge.testing.predictor import synthetic_regression  # noqa: E402
from nasforge.testing.space import SpaceContract  # noqa: E402
from nasforge.testing.strategy import StrategyContract  # noqa: E402
from nasforge.testing.strategy import synthetic_problem  # noqa: E402
from nasforge.testing.supernet import SupernetContract  # noqa: E402
from nasforge.testing.supernet import perturb_supernet  # noqa: E402

__all__ = [
    "PredictorContract",
    "SpaceContract",
    "StrategyContract",
    "SupernetContract",
    "perturb_supernet",
    "synthetic_problem",
    "synthetic_regression",
]
