"""The fusion rule of a runtime: what a whole network costs beyond the sum of its blocks.

Blocks are measured one at a time, each with its input and weights hot in cache. A whole
network run differs by a per-network cost (input hand-off, the Python/runtime call) and a
per-block cost (weights and activations that are no longer cached, dispatch between modules),
and possibly a proportional term. nasforge fits, per profiled runtime, by least squares on a few
end-to-end measurements taken while profiling::

    network_ms = per_network_ms + sum over blocks (scale * block_ms + per_block_ms)

choosing which terms to fit (:data:`FORMS`) by leave-one-out error, so that a handful of noisy
networks does not buy three free parameters.

The terms are stored in the device profile (``extra.fusion``) with the fit residuals; a runtime
without end-to-end measurements uses the identity rule (0, 0, 1), i.e. the plain block sum of
the nn-Meter / Once-for-All convention.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasforge.errors import InvalidInputError

__all__ = ["FORMS", "Fusion", "fit_fusion"]

@dataclass(frozen=True)
class Fusion:
    """``network_ms = per_network_ms + sum(scale * block_ms + per_block_ms)``.

    Attributes:
        per_network_ms: constant per network run.
        per_block_ms: constant per block.
        scale: multiplier of every block latency.
        n_networks: end-to-end measurements behind the fit (0: identity rule).
        rel_err: the chosen form, its leave-one-out mean error, and the in-sample median and
            max absolute relative error.
    """

    per_network_ms: float = 0.0
    per_block_ms: float = 0.0
    scale: float = 1.0
    n_networks: int = 0
    rel_err: dict[str, Any] | None = None

    def block(self, ms: float) -> float:
        """A block's latency in network context."""
        return self.scale * ms + self.per_block_ms

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Fusion:
        """Inverse of :meth:`to_dict` (None or empty: the identity rule).

        Raises:
            InvalidInputError: non-numeric terms.
        """
        if not data:
            return cls()
        try:
            return cls(float(data.get("per_network_ms", 0.0)), float(data.get("per_block_ms", 0.0)),
                       float(data.get("scale", 1.0)), int(data.get("n_networks", 0)),
                       dict(data["rel_err"]) if data.get("rel_err") else None)
        except (TypeError, ValueError) as e:
            raise InvalidInputError(f"malformed fusion rule {dict(data)!r}: {e}; re-profile the "
                                    "device (nas profile)") from None


#: candidate rules: which of (per_network_ms, per_block_ms, scale) are fitted.
FORMS: dict[str, tuple[bool, bool, bool]] = {
    "sum": (False, False, False),
    "network": (True, False, False),
    "network+scale": (True, False, True),
    "network+block": (True, True, False),
    "network+block+scale": (True, True, True),
}


def _solve(form: tuple[bool, bool, bool], s: np.ndarray, n: np.ndarray, y: np.ndarray
           ) -> tuple[float, float, float]:
    """Weighted least squares (weights ``1 / y``) of one rule form."""
    cols = [c for c, on in zip((np.ones_like(s), n, s), form, strict=True) if on]
    target = y if form[2] else y - s
    if not cols:
        return 0.0, 0.0, 1.0
    w = 1.0 / y
    coef, *_ = np.linalg.lstsq(np.column_stack(cols) * w[:, None], target * w, rcond=None)
    it = iter(float(c) for c in coef)
    c0 = next(it) if form[0] else 0.0
    c1 = next(it) if form[1] else 0.0
    scale = next(it) if form[2] else 1.0
    return c0, c1, scale


def fit_fusion(block_sums: Sequence[float], n_blocks: Sequence[int],
               measured: Sequence[float]) -> Fusion:
    """Fusion rule from end-to-end measurements, its form chosen by leave-one-out error.

    Every form of :data:`FORMS` with at least two networks more than it has terms is fitted
    by weighted least squares (weights ``1 / measured``, so *relative* error is minimised)
    with each network left out in turn; the form with the lowest mean absolute relative
    leave-one-out error wins and is refitted on all networks. Few networks thus get few terms.

    Args:
        block_sums: per network, the sum of its isolated block latencies (ms).
        n_blocks: per network, its number of blocks.
        measured: per network, its end-to-end latency (ms).

    Returns:
        The fitted rule; ``rel_err`` holds the chosen form, its leave-one-out error and the
        in-sample median / max error.

    Raises:
        ValueError: the three sequences differ in length or are empty.
    """
    s = np.asarray(block_sums, dtype=np.float64)
    n = np.asarray(n_blocks, dtype=np.float64)
    y = np.asarray(measured, dtype=np.float64)
    if not (len(s) == len(n) == len(y)) or len(y) == 0:
        raise ValueError(f"`block_sums`, `n_blocks`, `measured` must be equally long and "
                         f"non-empty, but got {len(s)=}, {len(n)=}, {len(y)=}")
    best = (float("inf"), "sum")
    for name, form in FORMS.items():
        if len(y) < sum(form) + 2 and name != "sum":
            continue
        errs = []
        for i in range(len(y)):
            keep = np.arange(len(y)) != i
            c0, c1, sc = _solve(form, s[keep], n[keep], y[keep])
            errs.append(abs((c0 + c1 * n[i] + sc * s[i]) / y[i] - 1.0))
        loo = float(np.mean(errs))
        if loo < best[0] - 1e-12:
            best = (loo, name)
    c0, c1, scale = _solve(FORMS[best[1]], s, n, y)
    rel = np.abs((c0 + c1 * n + scale * s) / y - 1.0)
    return Fusion(c0, c1, scale, len(y), {"form": best[1], "loo_mean": best[0],
                                          "median": float(np.median(rel)),
                                          "max": float(np.max(rel))})
