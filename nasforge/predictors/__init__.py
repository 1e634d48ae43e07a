"""Accuracy (and generic) surrogates: GBDT (XGBoost), MLP (torch), GP and RF (scikit-learn).

Importing this package registers ``gbdt``, ``mlp``, ``gp`` and ``rf``.

Example:
    >>> import numpy as np
    >>> from nasforge.predictors import PREDICTORS
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((50, 4)); y = X @ np.arange(4.0)
    >>> model = PREDICTORS.create("rf", n_estimators=20, seed=0).fit(X, y)
    >>> model.predict(X[:3]).std.shape
    (3,)
"""

from __future__ import annotations

from nasforge.predictors import _gbdt  # noqa: F401  (registers the predictor)
from nasforge.predictors import _gp  # noqa: F401  (registers the predictor)
from nasforge.predictors import _mlp  # noqa: F401  (registers the predictor)
from nasforge.predictors import _ofa  # noqa: F401  (registers the predictor)
from nasforge.predictors import _rf  # noqa: F401  (registers the predictor)
from nasforge.predictors._gbdt import GBDTPredictor
from nasforge.predictors._gp import GPPredictor
from nasforge.predictors._mlp import MLPPredictor
from nasforge.predictors._ofa import OFAAccuracyPredictor
from nasforge.predictors._ofa import import_ofa_predictor
from nasforge.predictors._rf import RFPredictor
from nasforge.predictors.base import BasePredictor
from nasforge.predictors.base import NotFittedError
from nasforge.predictors.base import Prediction
from nasforge.predictors.metrics import kendall_tau
from nasforge.predictors.metrics import mape
from nasforge.predictors.metrics import spearman
from nasforge.predictors.metrics import top_k_precision
from nasforge.predictors.pruning import PrunedChoice
from nasforge.predictors.pruning import PruningResult
from nasforge.predictors.pruning import prune_by_importance
from nasforge.predictors.registry import PREDICTORS
from nasforge.predictors.registry import register_predictor

__all__ = [
    "PREDICTORS",
    "BasePredictor",
    "GBDTPredictor",
    "GPPredictor",
    "MLPPredictor",
    "NotFittedError",
    "OFAAccuracyPredictor",
    "Prediction",
    "PrunedChoice",
    "PruningResult",
    "RFPredictor",
    "import_ofa_predictor",
    "kendall_tau",
    "mape",
    "prune_by_importance",
    "register_predictor",
    "spearman",
    "top_k_precision",
]
