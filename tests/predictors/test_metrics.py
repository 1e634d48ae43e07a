"""Metrics agree with their definitions and reject bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from nasforge.errors import InvalidInputError
from nasforge.predictors import kendall_tau
from nasforge.predictors import mape
from nasforge.predictors import spearman
from nasforge.predictors import top_k_precision


def test_rank_correlations() -> None:
    rng = np.random.default_rng(0)
    a = rng.random(50)
    b = a + 0.3 * rng.random(50)
    assert kendall_tau(a, a) == pytest.approx(1.0)
    assert kendall_tau(a, -a) == pytest.approx(-1.0)
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic)
    # tau-b by brute force over pairs (no ties here)
    s = sum(np.sign(a[i] - a[j]) * np.sign(b[i] - b[j]) for i in range(50) for j in range(i))
    assert kendall_tau(a, b) == pytest.approx(s / (50 * 49 / 2))


def test_mape_and_eps() -> None:
    assert mape([100, 200], [110, 180]) == pytest.approx(10.0)
    assert mape([0.0, 100], [5, 150], eps=1e-6) == pytest.approx(50.0)  # zero row left out
    with pytest.raises(InvalidInputError, match="eps"):
        mape([0.0, 0.0], [1, 2])


def test_top_k_precision() -> None:
    y = np.arange(10.0)
    assert top_k_precision(y, y, 3) == 1.0
    assert top_k_precision(y, -y, 3) == 0.0
    assert top_k_precision(y, 2 * y, 3, largest=False) == 1.0
    assert top_k_precision(-y, y, 3, largest=False) == 0.0
    assert top_k_precision(y, y[::-1], 10) == 1.0
    with pytest.raises(InvalidInputError, match="k"):
        top_k_precision(y, y, 0)
    with pytest.raises(InvalidInputError, match="shapes"):
        kendall_tau(y, y[:-1])
