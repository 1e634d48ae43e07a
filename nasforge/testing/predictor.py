"""The contract every predictor keeps: it learns, has the right shapes, saves and loads exactly
and is seeded.

A concrete test module supplies a ``predictor_factory`` fixture (``seed -> unfitted
BasePredictor``), parametrised over the predictor registry::

    @pytest.fixture(params=PREDICTORS.list())
    def predictor_factory(request):
        return lambda seed: PREDICTORS.create(request.param, seed=seed)

    class TestPredictors(PredictorContract): pass

Every test fits fresh predictors on :func:`synthetic_regression` data; none depends on another's
side effects.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from nasforge.errors import InvalidInputError
from nasforge.predictors.base import BasePredictor
from nasforge.predictors.base import NotFittedError

__all__ = ["PredictorContract", "synthetic_regression"]


def synthetic_regression(seed: int = 0, n: int = 240, d: int = 10
                         ) -> tuple[np.ndarray, np.ndarray]:
    """A small nonlinear problem shaped like an arch encoding: (n, d) features, (n,) targets.

    Half the columns are binary (one-hot-like), half small integers (op counts); the target has
    interactions and a little noise.

    Example:
        >>> X, y = synthetic_regression(n=8, d=6)
        >>> X.shape, y.shape
        ((8, 6), (8,))
    """
    if d < 5:
        raise InvalidInputError(
            f"synthetic_regression needs `d >= 5` columns (it reads column d // 2 + 2), got {d=}")
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.integers(0, 2, (n, d // 2)), rng.integers(0, 4, (n, d - d // 2))],
                       axis=1).astype(np.float64)
    y = (2.0 * X[:, 0] * X[:, 1] + X[:, d // 2] - 0.4 * X[:, d // 2 + 1] ** 2
         + np.sin(X[:, d // 2 + 2]) + 0.5 * X[:, 2] + 0.1 * rng.standard_normal(n))
    return X, y


class PredictorContract:
    """Every predictor: learns, has the right shapes, saves/loads exactly, is seeded.

    Subclasses provide a ``predictor_factory`` fixture: ``seed -> unfitted BasePredictor``.
    """

    N_TRAIN = 180

    def _split(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        X, y = synthetic_regression()
        n = self.N_TRAIN
        return X[:n], y[:n], X[n:], y[n:]

    def test_beats_trivial_baseline(self, predictor_factory: Callable[[int], BasePredictor]
                                    ) -> None:
        from scipy import stats

        Xtr, ytr, Xte, yte = self._split()
        pred = predictor_factory(0).fit(Xtr, ytr).predict(Xte).mean
        mse = float(np.mean((pred - yte) ** 2))
        baseline = float(np.mean((ytr.mean() - yte) ** 2))  # predict the training mean
        assert mse < 0.5 * baseline, (mse, baseline)
        assert stats.kendalltau(yte, pred).statistic > 0.5

    def test_prediction_shapes(self, predictor_factory: Callable[[int], BasePredictor]) -> None:
        Xtr, ytr, Xte, _ = self._split()
        p = predictor_factory(0).fit(Xtr, ytr).predict(Xte)
        assert p.mean.shape == (Xte.shape[0],)
        assert p.mean.dtype == np.float64
        if p.std is not None:
            assert p.std.shape == (Xte.shape[0],)
            assert (p.std >= 0).all()
        one = predictor_factory(0).fit(Xtr, ytr).predict(Xte[:1])
        assert one.mean.shape == (1,)

    def test_save_load_round_trip(self, predictor_factory: Callable[[int], BasePredictor],
                                  tmp_path: Path) -> None:
        Xtr, ytr, Xte, _ = self._split()
        model = predictor_factory(0).fit(Xtr, ytr)
        before = model.predict(Xte)
        model.save(tmp_path / "model")
        assert not [f for f in (tmp_path / "model").iterdir()
                    if f.suffix in (".pkl", ".pickle", ".joblib", ".pt")]
        for loader in (BasePredictor, type(model)):
            loaded = loader.load(tmp_path / "model")
            assert type(loaded) is type(model)
            after = loaded.predict(Xte)
            np.testing.assert_array_equal(after.mean, before.mean)
            if before.std is None:
                assert after.std is None
            else:
                assert after.std is not None
                np.testing.assert_array_equal(after.std, before.std)

    def test_same_seed_same_predictions(self, predictor_factory: Callable[[int], BasePredictor]
                                        ) -> None:
        Xtr, ytr, Xte, _ = self._split()
        a = predictor_factory(3).fit(Xtr, ytr).predict(Xte).mean
        b = predictor_factory(3).fit(Xtr, ytr).predict(Xte).mean
        np.testing.assert_array_equal(a, b)

    def test_errors(self, predictor_factory: Callable[[int], BasePredictor], tmp_path: Path
                    ) -> None:
        Xtr, ytr, Xte, _ = self._split()
        model = predictor_factory(0)
        with pytest.raises(NotFittedError, match="fit"):
            model.predict(Xte)
        with pytest.raises(NotFittedError):
            model.save(tmp_path / "nothing")
        with pytest.raises(InvalidInputError, match="shape"):
            model.fit(Xtr, ytr[:-1])
        model.fit(Xtr, ytr)
        with pytest.raises(InvalidInputError, match="columns"):
            model.predict(Xte[:, :-1])
        with pytest.raises(InvalidInputError, match="2-D"):
            model.predict(Xte[0])
