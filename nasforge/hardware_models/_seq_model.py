"""Latency of a sequence model as a sum of parts, each linear in physical cost terms.

A language model's latency splits into parts that scale differently: HAT's encoder (once per
sentence) and decoder (30 incremental steps of beam 5), an LM's prefill (the prompt at once) and
its per-token decode (growing KV cache). Each :class:`LinearPart` predicts one part in ms as
``w . terms(features)``, where every term is a product of architecture features named in the
term (``decoder_layer_num*decoder_embed_dim*decoder_ffn_embed_dim_avg``: the FFN MACs of every
decoder layer, up to a constant) or ``1`` (a fixed cost per call). The weights are ms per unit of
work, so the model is smooth and extrapolates linearly in MACs to the corners of a space where
no measurement lies (trees do not: they answer the nearest leaf's constant).

The weights minimise the mean *relative* error (iteratively reweighted least squares on
``|pred / y - 1|``, the L1 fit of MAPE), which keeps a stretch of slow rows (collection drift)
from pulling the fit as squared error would.

On HAT's 8 CSVs (``benchmarks/hat_latency.py``) this is at least as accurate as HAT's own MLP on a
random 20% hold-out. A smooth correction (quadratic ridge on the log residual) was tried and
dropped: it lowered no CSV's held-out error by more than 0.03 points and raised the drifting ones
by 1-2 points.

Stored as plain JSON (:meth:`PartsRegressor.to_dict`); prediction is numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasforge.errors import InvalidInputError

__all__ = ["LinearPart", "PartsRegressor", "term_matrix"]

#: IRLS iterations of the L1 (relative error) fit, and the floor of a residual's weight.
IRLS_ITERS = 30
IRLS_FLOOR = 1e-4


def term_matrix(terms: Sequence[str], x: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """The design matrix of ``terms`` over features ``x``.

    Args:
        terms: ``"1"`` or products of feature names joined by ``*``.
        x: features, shape (N, F), columns named by ``names``.
        names: the F feature names.

    Returns:
        float64 array of shape (N, len(terms)).

    Raises:
        InvalidInputError: a term names an unknown feature.
    """
    col = {n: i for i, n in enumerate(names)}
    x = np.asarray(x, dtype=np.float64)
    out = np.ones((x.shape[0], len(terms)), dtype=np.float64)
    for j, term in enumerate(terms):
        if term == "1":
            continue
        for factor in term.split("*"):
            if factor not in col:
                raise InvalidInputError(
                    f"latency term {term!r} names feature {factor!r}; the features are "
                    f"{', '.join(names)}")
            out[:, j] *= x[:, col[factor]]
    return out


def _fit_relative_l1(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Weights minimising ``mean |a w / y - 1|`` (IRLS from the least-squares start)."""
    rel = a / y[:, None]
    ones = np.ones(len(y))
    w, *_ = np.linalg.lstsq(rel, ones, rcond=None)
    for _ in range(IRLS_ITERS):
        s = 1.0 / np.sqrt(np.maximum(np.abs(rel @ w - 1.0), IRLS_FLOOR))
        w, *_ = np.linalg.lstsq(rel * s[:, None], s, rcond=None)
    return w


@dataclass(frozen=True)
class LinearPart:
    """One latency part (``encoder``, ``decoder``, ``prefill``, ``decode``), linear in its terms.

    Attributes:
        name: the part's name.
        terms: ``"1"`` or ``*``-products of feature names (see :func:`term_matrix`).
        weights: ms per unit of each term, shape (len(terms),).
    """

    name: str
    terms: tuple[str, ...]
    weights: np.ndarray

    @classmethod
    def fit(cls, name: str, terms: Sequence[str], x: np.ndarray, names: Sequence[str],
            ms: np.ndarray) -> LinearPart:
        """Fit the part on measured ``ms`` (shape (N,), all > 0) of features ``x`` (N, F).

        Raises:
            InvalidInputError: fewer rows than terms, or a latency that is not finite and > 0.
        """
        ms = np.asarray(ms, dtype=np.float64)
        if len(ms) < len(terms):
            raise InvalidInputError(f"fitting latency part {name!r} needs at least "
                                    f"{len(terms)} measurements, got {len(ms)}")
        if not np.all(np.isfinite(ms) & (ms > 0)):
            raise InvalidInputError(f"latency part {name!r}: every latency must be finite and "
                                    "> 0 ms")
        w = _fit_relative_l1(term_matrix(terms, x, names), ms)
        return cls(name, tuple(terms), w)

    def predict(self, x: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """Predicted ms of this part, shape (N,) for features ``x`` of shape (N, F)."""
        return term_matrix(self.terms, x, names) @ self.weights

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"terms": [...], "weights": [...]}``."""
        return {"terms": list(self.terms), "weights": [float(v) for v in self.weights]}


@dataclass(frozen=True)
class PartsRegressor:
    """Several :class:`LinearPart` over one feature vector.

    Attributes:
        feature_names: the columns of the feature matrices it reads.
        parts: part name -> part, in the order the parts were fitted.
    """

    feature_names: tuple[str, ...]
    parts: Mapping[str, LinearPart]

    @classmethod
    def fit(cls, x: np.ndarray, names: Sequence[str], targets: Mapping[str, np.ndarray],
            terms: Mapping[str, Sequence[str]]) -> PartsRegressor:
        """Fit one part per target.

        Args:
            x: features, shape (N, F).
            names: the F feature names.
            targets: part name -> measured ms, shape (N,).
            terms: part name -> its terms.
        """
        parts = {p: LinearPart.fit(p, terms[p], x, names, y) for p, y in targets.items()}
        return cls(tuple(names), parts)

    def predict_parts(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Part name -> predicted ms, each of shape (N,), for features ``x`` (N, F)."""
        return {p: part.predict(x, self.feature_names) for p, part in self.parts.items()}

    def predict(self, x: np.ndarray, parts: Sequence[str] | None = None) -> np.ndarray:
        """Sum of ``parts`` (default: all) in ms, shape (N,)."""
        chosen = list(self.parts) if parts is None else list(parts)
        out = np.zeros(np.asarray(x).shape[0], dtype=np.float64)
        for p in chosen:
            out += self.parts[p].predict(x, self.feature_names)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict that :meth:`from_dict` reads back."""
        return {"features": list(self.feature_names),
                "parts": {p: part.to_dict() for p, part in self.parts.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "latency model") -> PartsRegressor:
        """Read :meth:`to_dict`'s output.

        Raises:
            InvalidInputError: missing keys, a term/weight count mismatch or a non-finite weight.
        """
        try:
            names = tuple(str(n) for n in data["features"])
            parts: dict[str, LinearPart] = {}
            for p, entry in dict(data["parts"]).items():
                terms = tuple(str(t) for t in entry["terms"])
                w = np.asarray(entry["weights"], dtype=np.float64)
                if w.shape != (len(terms),) or not all(math.isfinite(v) for v in w):
                    raise ValueError(f"part {p}: {len(terms)} finite weights expected")
                term_matrix(terms, np.zeros((0, len(names))), names)  # terms name features
                parts[str(p)] = LinearPart(str(p), terms, w)
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidInputError(f"{where}: malformed parts regressor: {e}") from None
        return cls(names, parts)
