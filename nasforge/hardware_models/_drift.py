"""Collection drift: do a latency model's residuals follow the order rows were measured in?

A latency dataset samples architectures at random, so a model's errors on consecutive rows are
independent unless the *device* changed while it was measured (thermal throttling, a background
job, a clock governor): then stretches of consecutive rows are all slow, and no model of the
architecture can explain them. The statistic is the lag-1 autocorrelation of the out-of-fold
log residuals ``log(measured / predicted)`` in row order (each row predicted by a model that did
not see it, K folds at random).

Calibration on HAT's 8 CSVs (the parts model of :mod:`~nasforge.hardware_models._seq_model`,
5 folds, seed 0; ``benchmarks/hat_latency.py`` reports each figure): the two clean en-fr sets
score 0.09 (Raspberry Pi) and 0.53 (TITAN Xp), the Xeon sets 0.36-0.40, the four sets with slow
stretches 0.82-0.96 (Pi en-de, TITAN Xp en-de, WMT'19 en-de, IWSLT de-en). :data:`DRIFT_THRESHOLD`
is 0.7, between the highest clean set and the lowest drifting one. For independent residuals the
statistic's standard error is about ``1 / sqrt(N)`` (0.02 for 2,000 rows), so 0.7 is no chance
figure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["DRIFT_THRESHOLD", "DriftReport", "lag1_autocorrelation", "out_of_fold"]

log = logging.getLogger(__name__)

#: Lag-1 autocorrelation of residuals in measurement order above which import warns.
DRIFT_THRESHOLD = 0.7


def lag1_autocorrelation(residuals: np.ndarray) -> float:
    """Lag-1 autocorrelation of ``residuals`` (shape (N,), in row order); 0 for N < 3."""
    r = np.asarray(residuals, dtype=np.float64)
    if len(r) < 3:
        return 0.0
    r = r - r.mean()
    denom = float(np.sum(r * r))
    return float(np.sum(r[1:] * r[:-1]) / denom) if denom > 0 else 0.0


def out_of_fold(fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray], n: int,
                rng: np.random.Generator, folds: int = 5) -> np.ndarray:
    """Out-of-fold predictions: ``fit_predict(train_idx, test_idx) -> predictions of test_idx``.

    Args:
        fit_predict: fits on the rows ``train_idx`` and predicts the rows ``test_idx``.
        n: number of rows.
        rng: assigns rows to folds at random.
        folds: number of folds.

    Returns:
        float64 array of shape (n,): each row predicted by the fold that left it out.
    """
    fold = rng.permutation(n) % folds
    out = np.empty(n, dtype=np.float64)
    for k in range(folds):
        test = np.flatnonzero(fold == k)
        out[test] = fit_predict(np.flatnonzero(fold != k), test)
    return out


@dataclass(frozen=True)
class DriftReport:
    """The drift check of one dataset.

    Attributes:
        autocorrelation: lag-1 autocorrelation of out-of-fold log residuals in row order.
        threshold: the threshold it was compared with.
        slow_share: share of rows measured more than 10% slower than predicted.
    """

    autocorrelation: float
    threshold: float = DRIFT_THRESHOLD
    slow_share: float = 0.0

    @property
    def drifting(self) -> bool:
        """Whether the residuals follow the row order (above the threshold)."""
        return self.autocorrelation > self.threshold

    @classmethod
    def of(cls, measured: np.ndarray, predicted: np.ndarray,
           threshold: float = DRIFT_THRESHOLD) -> DriftReport:
        """The report of out-of-fold ``predicted`` vs ``measured`` ms (shape (N,), row order)."""
        res = np.log(np.asarray(measured, dtype=np.float64)
                     / np.asarray(predicted, dtype=np.float64))
        return cls(lag1_autocorrelation(res), threshold, float(np.mean(res > np.log(1.1))))

    def message(self, what: str) -> str:
        """One line saying whether ``what`` drifts, with the figure and the threshold."""
        if not self.drifting:
            return (f"{what}: residuals do not follow the row order (lag-1 autocorrelation "
                    f"{self.autocorrelation:.2f} <= {self.threshold})")
        return (f"{what}: the model's residuals follow the order rows were measured in (lag-1 "
                f"autocorrelation {self.autocorrelation:.2f} > {self.threshold}; "
                f"{self.slow_share:.0%} of rows >10% slower than predicted): the device drifted "
                "while it was measured, so part of the error is collection drift, not the model")

    def to_dict(self) -> dict[str, float | bool]:
        """JSON-ready figures."""
        return {"lag1_autocorrelation": self.autocorrelation, "threshold": self.threshold,
                "slow_share": self.slow_share, "drifting": self.drifting}
