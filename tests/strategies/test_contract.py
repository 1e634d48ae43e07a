"""Every registered strategy passes the StrategyContract on a seeded synthetic NB201 problem."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from nasforge.strategies import STRATEGIES
from nasforge.strategies import BaseStrategy
from nasforge.testing.contracts import StrategyContract

#: Small settings so that every contract search takes seconds.
SMALL: dict[str, dict[str, Any]] = {
    "evolution": {"population_size": 12, "parents": 4, "mutations": 6, "crossovers": 6},
    "predictor": {"init_samples": 12, "top_k": 6,
                  "predictor": lambda seed: _small_gbdt(seed)},
    "gradient": {"batch_size": 8, "lr": 0.2},
    "random": {"batch_size": 1},  # random cannot be expected to beat a batch of 8 in 40 draws
    "optuna": {"n_startup_trials": 8},
}


def _small_gbdt(seed: int) -> Any:
    from nasforge.predictors import PREDICTORS

    return PREDICTORS.get("gbdt")(n_estimators=100, seed=seed)


@pytest.fixture(params=STRATEGIES.list())
def make_strategy(request: pytest.FixtureRequest) -> Callable[..., BaseStrategy]:
    cls = STRATEGIES.get(request.param)
    kwargs = SMALL.get(request.param, {})

    def make(space: Any, objectives: Any, seed: int) -> BaseStrategy:
        return cls(space, objectives, seed=seed, **kwargs)

    return make


class TestStrategies(StrategyContract):
    pass
