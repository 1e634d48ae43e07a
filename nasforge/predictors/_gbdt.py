"""Gradient-boosted decision trees (XGBoost), the GBDT-NAS predictor.

Paper:
    Neural Architecture Search with GBDT (GBDT-NAS), https://arxiv.org/abs/2007.04785

Architecture encodings are used as tabular features. ``predict`` runs one
``Booster.inplace_predict`` per batch (no ``DMatrix``), the fast path search uses through the
public :meth:`~nasforge.predictors.base.BasePredictor.predict`. The fitted booster is saved as
XGBoost JSON (``Booster.save_model("model.json")``), which every later XGBoost version reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from nasforge.errors import InvalidInputError
from nasforge.predictors.base import BasePredictor
from nasforge.predictors.base import NotFittedError
from nasforge.predictors.base import Prediction
from nasforge.predictors.registry import register_predictor

__all__ = ["GBDTPredictor"]

_OBJECTIVES = ("reg:squarederror", "reg:pseudohubererror", "rank:pairwise")
_MODEL_FILE = "model.json"


@register_predictor("gbdt")
class GBDTPredictor(BasePredictor):
    """XGBoost regressor over architecture encodings.

    The defaults were tuned on NAS-Bench-201 (200 training cells, see
    ``tests/predictors/test_nb201_ranking.py``): many shallow, strongly shrunk trees with row and
    column subsampling rank better than a few deep ones.

    Args:
        n_estimators: boosting rounds.
        max_depth: depth of each tree.
        learning_rate: shrinkage.
        subsample: share of rows per tree.
        colsample_bytree: share of columns per tree.
        min_child_weight: minimum hessian sum in a leaf.
        reg_lambda: L2 penalty on leaf weights.
        objective: ``reg:squarederror`` (default), ``reg:pseudohubererror`` or
            ``rank:pairwise`` (predictions are then scores: only their order is meaningful).
        n_jobs: threads XGBoost may use.
        seed: seeds row/column subsampling.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = rng.random((64, 3)); y = X[:, 0] + 0.1 * X[:, 1]
        >>> p = GBDTPredictor(n_estimators=50, seed=0).fit(X, y)
        >>> p.predict(X[:2]).mean.shape
        (2,)
    """

    def __init__(
        self,
        n_estimators: int = 500,
        max_depth: int = 4,
        learning_rate: float = 0.03,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        min_child_weight: float = 1.0,
        reg_lambda: float = 1.0,
        objective: str = "reg:squarederror",
        n_jobs: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__(seed=seed)
        if objective not in _OBJECTIVES:
            raise InvalidInputError(
                f"gbdt objective {objective!r} is not supported; use one of "
                f"{', '.join(_OBJECTIVES)}"
            )
        if n_estimators < 1 or max_depth < 1 or not 0 < learning_rate <= 1:
            raise InvalidInputError(
                f"gbdt needs n_estimators >= 1, max_depth >= 1 and 0 < learning_rate <= 1, got "
                f"{n_estimators=}, {max_depth=}, {learning_rate=}"
            )
        self.n_estimators = int(n_estimators)
        self.max_depth = int(max_depth)
        self.learning_rate = float(learning_rate)
        self.subsample = float(subsample)
        self.colsample_bytree = float(colsample_bytree)
        self.min_child_weight = float(min_child_weight)
        self.reg_lambda = float(reg_lambda)
        self.objective = objective
        self.n_jobs = int(n_jobs)
        self.booster_: xgb.Booster | None = None

    def get_config(self) -> dict[str, Any]:
        return {
            "n_estimators": self.n_estimators,
            "max_depth": self.max_depth,
            "learning_rate": self.learning_rate,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "reg_lambda": self.reg_lambda,
            "objective": self.objective,
            "n_jobs": self.n_jobs,
            "seed": self.seed,
        }

    def _params(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "max_depth": self.max_depth,
            "eta": self.learning_rate,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "lambda": self.reg_lambda,
            "tree_method": "hist",
            "nthread": self.n_jobs,
            "seed": self.seed,
            "verbosity": 0,
        }

    def _booster(self) -> xgb.Booster:
        if self.booster_ is None:
            raise NotFittedError("gbdt predictor is not fitted; call fit(X, y) first")
        return self.booster_

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        dtrain = xgb.DMatrix(X, label=y)
        if self.objective.startswith("rank:"):
            dtrain.set_group([X.shape[0]])
        self.booster_ = xgb.train(self._params(), dtrain, num_boost_round=self.n_estimators)

    def _predict(self, X: np.ndarray) -> Prediction:
        # one inplace_predict call on the checked matrix: no DMatrix is built, and the numbers
        # equal Booster.predict(DMatrix(X)) bit for bit (tested)
        mean = np.asarray(self._booster().inplace_predict(X), dtype=np.float64).reshape(-1)
        return Prediction(mean=mean, std=None)

    def feature_importance(self, importance_type: str = "total_gain") -> np.ndarray:
        """Per-feature importance.

        Args:
            importance_type: an XGBoost importance type (``gain``, ``total_gain``, ``weight``,
                ``cover``, ``total_cover``).

        Returns:
            (d,) non-negative importances (0 for features no tree splits on).
        """
        scores = self._booster().get_score(importance_type=importance_type)
        out = np.zeros(self.n_features_ or 0)
        for key, val in scores.items():
            out[int(key[1:])] = float(val[0] if isinstance(val, list) else val)  # keys "f0", ...
        return out

    def _save_state(self, path: Path) -> dict[str, Any]:
        self._booster().save_model(str(path / _MODEL_FILE))
        return {"model_file": _MODEL_FILE}

    def _load_state(self, path: Path, meta: dict[str, Any]) -> None:
        booster = xgb.Booster()
        booster.load_model(str(path / meta.get("model_file", _MODEL_FILE)))
        if booster.num_features() != self.n_features_:
            raise InvalidInputError(
                f"{path}: the model file reads {booster.num_features()} features, the manifest "
                f"says n_features = {self.n_features_}; they disagree: re-save the predictor")
        self.booster_ = booster
