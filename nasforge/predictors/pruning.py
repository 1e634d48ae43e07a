"""Search-space pruning from GBDT feature importance (the GBDT-NAS recipe).

Paper:
    Neural Architecture Search with GBDT (GBDT-NAS), https://arxiv.org/abs/2007.04785

Fit a GBDT on ``(X, y)``, rank the encoding's features by importance, and for each of the most
important ones find the value that the best-predicted candidates prefer; fixing those values
prunes the space. Generic over any encoding: it sees only column names, ``X`` and ``y``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nasforge.errors import InvalidInputError
from nasforge.predictors._gbdt import GBDTPredictor

__all__ = ["PrunedChoice", "PruningResult", "prune_by_importance"]


@dataclass(frozen=True)
class PrunedChoice:
    """One fixed feature.

    Attributes:
        feature: column index in the encoding.
        name: column name (e.g. ``edges[3]=nor_conv_3x3``).
        value: the value the best candidates prefer (e.g. 1.0: "edge 3 is nor_conv_3x3").
        importance: the GBDT importance (total gain), normalised to sum 1 over all features.
        support: share of the best predicted candidates that have ``value``.
        gain: mean prediction of candidates with ``value`` minus that of the others
            (in ``y`` units, sign-flipped when minimising).
    """

    feature: int
    name: str
    value: float
    importance: float
    support: float
    gain: float

    def describe(self) -> str:
        return (f"fix {self.name} = {self.value:g} (importance {self.importance:.3f}, "
                f"{self.support:.0%} of the best, +{self.gain:.3g} predicted)")


@dataclass(frozen=True)
class PruningResult:
    """The pruned choices, most important first.

    Attributes:
        choices: the fixed features.
        importance: (d,) normalised importance of every feature.
    """

    choices: tuple[PrunedChoice, ...]
    importance: np.ndarray

    def mask(self, X: np.ndarray) -> np.ndarray:
        """Rows of ``X: (n, d)`` that satisfy every fixed value: (n,) bool."""
        Xc = np.asarray(X, dtype=np.float64)
        keep = np.ones(Xc.shape[0], dtype=bool)
        for c in self.choices:
            keep &= Xc[:, c.feature] == c.value
        return keep

    def describe(self) -> str:
        """One line per pruned choice."""
        return "\n".join(c.describe() for c in self.choices) or "(nothing pruned)"


def prune_by_importance(
    encoding_names: Sequence[str],
    X: np.ndarray,
    y: np.ndarray,
    *,
    top_features: int = 3,
    top_fraction: float = 0.1,
    min_support: float = 0.5,
    maximize: bool = True,
    candidates: np.ndarray | None = None,
    predictor: GBDTPredictor | None = None,
    seed: int = 0,
) -> PruningResult:
    """Prune a space by fixing the values its most important features should take.

    Args:
        encoding_names: (d,) column names of ``X``.
        X: (n, d) encoded, evaluated architectures.
        y: (n,) their objective (e.g. accuracy).
        top_features: how many of the most important features to consider fixing.
        top_fraction: the share of candidates, by predicted objective, that counts as "best".
        min_support: fix a feature only when at least this share of the best agrees on a value.
        maximize: ``y`` is to be maximised (``False``: minimised, e.g. latency).
        candidates: (m, d) encoded architectures to rank with the fitted GBDT (default ``X``;
            pass a large random sample of the space for a less biased vote).
        predictor: an unfitted GBDT to use (default ``GBDTPredictor(seed=seed)``).
        seed: seeds the default GBDT.

    Returns:
        A :class:`PruningResult` (use ``.describe()`` for text and ``.mask(X)`` to filter).

    Raises:
        InvalidInputError: shapes disagree or a parameter is out of range.
    """
    Xc = np.asarray(X, dtype=np.float64)
    names = list(encoding_names)
    if Xc.ndim != 2 or Xc.shape[1] != len(names):
        raise InvalidInputError(
            f"X must be (n, d) with d = len(encoding_names) = {len(names)}, got {Xc.shape}"
        )
    if top_features < 1 or not 0 < top_fraction <= 1 or not 0 <= min_support <= 1:
        raise InvalidInputError(
            f"need top_features >= 1, 0 < top_fraction <= 1 and 0 <= min_support <= 1, got "
            f"{top_features=}, {top_fraction=}, {min_support=}"
        )
    model = (predictor or GBDTPredictor(seed=seed)).fit(Xc, y)
    imp = model.feature_importance("total_gain")
    imp = imp / imp.sum() if imp.sum() > 0 else imp
    pool = Xc if candidates is None else np.asarray(candidates, dtype=np.float64)
    if pool.ndim != 2 or pool.shape[1] != Xc.shape[1]:
        raise InvalidInputError(f"candidates must be (m, {Xc.shape[1]}), got {pool.shape}")
    score = model.predict(pool).mean * (1.0 if maximize else -1.0)
    n_best = max(1, round(top_fraction * pool.shape[0]))
    best = pool[np.argsort(-score, kind="stable")[:n_best]]
    chosen: list[PrunedChoice] = []
    for f in np.argsort(-imp, kind="stable")[:top_features].tolist():
        if imp[f] <= 0:
            break
        values, counts = np.unique(best[:, f], return_counts=True)
        v = float(values[np.argmax(counts)])
        support = float(counts.max() / n_best)
        has = pool[:, f] == v
        if support < min_support or has.all():
            continue
        gain = float(score[has].mean() - score[~has].mean())
        chosen.append(PrunedChoice(feature=f, name=names[f], value=v, importance=float(imp[f]),
                                   support=support, gain=gain))
    return PruningResult(choices=tuple(chosen), importance=imp)
