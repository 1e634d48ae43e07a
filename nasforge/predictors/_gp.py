"""Gaussian process regression (scikit-learn), saved as kernel hyper-parameters + data in JSON.

The kernel is ``C * Matern(nu) + White`` (isotropic length scale) on features standardised
with the training mean and scale; ``y`` is normalised by scikit-learn. ``save`` writes the
fitted kernel's log-hyper-parameters (``kernel_.theta``) and the training data; ``load``
rebuilds the kernel with those values and refits without optimising, which reproduces the
posterior exactly (the same Cholesky of the same matrix).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel
from sklearn.gaussian_process.kernels import Kernel
from sklearn.gaussian_process.kernels import Matern
from sklearn.gaussian_process.kernels import WhiteKernel

from nasforge.errors import InvalidInputError
from nasforge.predictors.base import BasePredictor
from nasforge.predictors.base import NotFittedError
from nasforge.predictors.base import Prediction
from nasforge.predictors.checks import check_vector
from nasforge.predictors.registry import register_predictor
from nasforge.structured import MAX_TABLE_BYTES
from nasforge.structured import MAX_TABLE_NODES
from nasforge.structured import load_structured

__all__ = ["GPPredictor"]

_STATE_FILE = "gp_state.json"
_NUS = (0.5, 1.5, 2.5, float("inf"))


@register_predictor("gp")
class GPPredictor(BasePredictor):
    """GP regressor with predictive ``std``.

    Args:
        nu: Matern smoothness (0.5, 1.5, 2.5, or ``inf`` for RBF).
        length_scale: initial length scale (in standardised feature units).
        noise: initial white-noise level (in normalised target units).
        n_restarts: extra random restarts of the marginal-likelihood optimiser.
        seed: seeds the optimiser restarts.
    """

    def __init__(
        self,
        nu: float = 2.5,
        length_scale: float = 3.0,
        noise: float = 0.1,
        n_restarts: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(seed=seed)
        if float(nu) not in _NUS or length_scale <= 0 or noise <= 0 or n_restarts < 0:
            raise InvalidInputError(
                f"gp needs nu in {_NUS}, length_scale > 0, noise > 0 and n_restarts >= 0, got "
                f"{nu=}, {length_scale=}, {noise=}, {n_restarts=}"
            )
        self.nu = float(nu)
        self.length_scale = float(length_scale)
        self.noise = float(noise)
        self.n_restarts = int(n_restarts)
        self.gp_: GaussianProcessRegressor | None = None
        self.x_mean_: np.ndarray | None = None
        self.x_scale_: np.ndarray | None = None
        self.y_train_: np.ndarray | None = None

    def get_config(self) -> dict[str, Any]:
        return {
            "nu": self.nu,
            "length_scale": self.length_scale,
            "noise": self.noise,
            "n_restarts": self.n_restarts,
            "seed": self.seed,
        }

    def _kernel(self) -> Kernel:
        return (ConstantKernel(1.0, (1e-3, 1e5))
                * Matern(self.length_scale, (1e-2, 1e3), nu=self.nu)
                + WhiteKernel(self.noise, (1e-6, 1e1)))

    def _scale(self, X: np.ndarray) -> np.ndarray:
        if self.x_mean_ is None or self.x_scale_ is None:
            raise NotFittedError("gp predictor is not fitted; call fit(X, y) first")
        return (X - self.x_mean_) / self.x_scale_

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        self.x_mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.x_scale_ = np.where(scale > 0, scale, 1.0)
        self.y_train_ = y.copy()
        self.gp_ = GaussianProcessRegressor(
            kernel=self._kernel(), normalize_y=True, n_restarts_optimizer=self.n_restarts,
            random_state=self.seed,
        ).fit(self._scale(X), y)

    def _predict(self, X: np.ndarray) -> Prediction:
        if self.gp_ is None:
            raise NotFittedError("gp predictor is not fitted; call fit(X, y) first")
        mean, std = self.gp_.predict(self._scale(X), return_std=True)
        return Prediction(mean=np.asarray(mean, dtype=np.float64),
                          std=np.asarray(std, dtype=np.float64))

    def _save_state(self, path: Path) -> dict[str, Any]:
        if self.gp_ is None or self.x_mean_ is None or self.x_scale_ is None or (
                self.y_train_ is None):
            raise NotFittedError("gp predictor is not fitted; call fit(X, y) first")
        state = {
            "theta": self.gp_.kernel_.theta.tolist(),
            "x_mean": self.x_mean_.tolist(),
            "x_scale": self.x_scale_.tolist(),
            "X_train": np.asarray(self.gp_.X_train_).tolist(),
            "y_train": np.asarray(self.y_train_).tolist(),
        }
        (path / _STATE_FILE).write_text(json.dumps(state))
        return {"state_file": _STATE_FILE}

    def _load_state(self, path: Path, meta: dict[str, Any]) -> None:
        state = load_structured(path / meta.get("state_file", _STATE_FILE), "predictor state",
                                kind="json", max_bytes=MAX_TABLE_BYTES,
                                max_nodes=MAX_TABLE_NODES)
        src, d = str(path), int(self.n_features_ or 0)
        kernel = self._kernel().clone_with_theta(check_vector(src, "theta", state["theta"]))
        self.x_mean_ = check_vector(src, "x_mean", state["x_mean"], d)
        self.x_scale_ = check_vector(src, "x_scale", state["x_scale"], d, positive=True)
        self.y_train_ = check_vector(src, "y_train", state["y_train"])
        X_train = np.asarray(state["X_train"], dtype=np.float64)
        if X_train.shape != (len(self.y_train_), d) or not np.isfinite(X_train).all():
            raise InvalidInputError(
                f"{src}: X_train has shape {X_train.shape} (or NaN / inf values), expected "
                f"{(len(self.y_train_), d)} finite values; re-save the predictor")
        self.gp_ = GaussianProcessRegressor(kernel=kernel, normalize_y=True, optimizer=None).fit(
            X_train, self.y_train_)
