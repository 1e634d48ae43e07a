"""Every registered predictor passes the shared :class:`PredictorContract`."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from nasforge.predictors import PREDICTORS
from nasforge.predictors import BasePredictor
from nasforge.testing.contracts import PredictorContract


def test_builtin_predictors_registered() -> None:
    assert set(PREDICTORS.list()) >= {"gbdt", "mlp", "gp", "rf"}


# imported pretrained predictors (ofa) cannot be fitted: tests/predictors/test_ofa_import.py
@pytest.fixture(params=[n for n in PREDICTORS.list()
                        if not getattr(PREDICTORS.get(n), "pretrained", False)])
def predictor_factory(request: pytest.FixtureRequest) -> Callable[[int], BasePredictor]:
    name = request.param

    def make(seed: int) -> BasePredictor:
        return PREDICTORS.create(name, seed=seed)

    return make


class TestPredictors(PredictorContract):
    pass
