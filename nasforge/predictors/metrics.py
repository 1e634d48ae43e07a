"""Ranking and regression metrics for predictors: Kendall tau, Spearman, MAPE, top-k precision.

All take ``y_true: (n,)`` and ``y_pred: (n,)`` and return a float.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from nasforge.errors import InvalidInputError

__all__ = ["kendall_tau", "mape", "spearman", "top_k_precision"]


def _pair(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y_true, dtype=np.float64)
    b = np.asarray(y_pred, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise InvalidInputError(
            f"y_true and y_pred must be 1-D of equal length, got shapes {a.shape} and {b.shape}"
        )
    if a.size < 2:
        raise InvalidInputError(f"a metric needs at least 2 values, got {a.size}")
    return a, b


def kendall_tau(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Kendall's tau-b rank correlation (ties handled); NaN when either input is constant.

    Example:
        >>> kendall_tau([1, 2, 3, 4], [10, 20, 40, 30])
        0.6666666666666669
    """
    a, b = _pair(y_true, y_pred)
    return float(stats.kendalltau(a, b).statistic)


def spearman(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Spearman's rank correlation; NaN when either input is constant."""
    a, b = _pair(y_true, y_pred)
    return float(stats.spearmanr(a, b).statistic)


def mape(y_true: np.ndarray, y_pred: np.ndarray, eps: float = 0.0) -> float:
    """Mean absolute percentage error, in percent: ``100 * mean(|pred - true| / |true|)``.

    Args:
        y_true: (n,) reference values.
        y_pred: (n,) predictions.
        eps: rows with ``|y_true| <= eps`` are left out (e.g. the near-zero latencies of
            degenerate NAS-Bench-201 cells).

    Raises:
        InvalidInputError: no row has ``|y_true| > eps``.
    """
    a, b = _pair(y_true, y_pred)
    keep = np.abs(a) > eps
    if not keep.any():
        raise InvalidInputError(
            f"mape divides by y_true, but every |y_true| <= eps = {eps}; use an absolute error"
        )
    return float(100.0 * np.mean(np.abs(b[keep] - a[keep]) / np.abs(a[keep])))


def top_k_precision(y_true: np.ndarray, y_pred: np.ndarray, k: int,
                    largest: bool = True) -> float:
    """Share of the true top-``k`` that the predicted top-``k`` recovers.

    Args:
        y_true: (n,) reference values.
        y_pred: (n,) predictions.
        k: how many top items to compare, ``1 <= k <= n``.
        largest: top means largest (accuracy); ``False`` for smallest (latency, error).

    Returns:
        ``|top_k(y_true) & top_k(y_pred)| / k`` in [0, 1] (ties broken by index, stably).

    Example:
        >>> top_k_precision([5, 4, 3, 2, 1], [5, 1, 4, 3, 2], k=2)
        0.5
    """
    a, b = _pair(y_true, y_pred)
    if not 1 <= k <= a.size:
        raise InvalidInputError(f"top_k_precision needs 1 <= k <= n = {a.size}, got {k=}")
    sign = -1.0 if largest else 1.0
    top_true = set(np.argsort(sign * a, kind="stable")[:k].tolist())
    top_pred = set(np.argsort(sign * b, kind="stable")[:k].tolist())
    return len(top_true & top_pred) / k
