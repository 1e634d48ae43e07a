"""The fusion rule of a runtime: what a whole network costs beyond the sum of its blocks.

Blocks are measured one at a time, each with its input and weights hot in cache. A whole
network run differs by a per-network cost (input hand-off, the Python/runtime call), a
per-block cost (dispatch between modules, activations no longer cached), possibly a
proportional term, and a term proportional to the blocks' weights. The last one is there
because the network's excess over its blocks' sum depends on its size, not on its resolution:
on ExecuTorch (issue 24) networks at 128-160 px ran 1.3-1.7x their blocks' sum and networks at
256 px 1.04-1.12x, while a 128 px and a 256 px network with the same blocks carry the same
weights. Fitted on 12 networks, a constant per block split the excess badly (``scale`` 0.94,
small networks over-predicted by 7-9 %, leave-one-out error 4.7 %); a cost per weight
predicted the held-out networks better (leave-one-out 3.1 %). The likely mechanism: a
block timed alone keeps its weights in cache from call to call, a network of 8-38 M weights
(32-150 MB fp32) does not (``benchmarks/executorch_block_context.py`` times blocks after a
cache flush; on a busy machine it could not separate the weights from the activations the
flush evicts too). nasforge fits, per profiled runtime, by least squares on a few end-to-end
measurements taken while profiling::

    network_ms = per_network_ms
                 + sum over blocks (scale * block_ms + per_block_ms + per_mparam_ms * mparams)

(``mparams``: the block's weights in millions) choosing which terms to fit (:data:`FORMS`) by
leave-one-out error, so that a handful of noisy networks does not buy four free parameters.

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
    """``network_ms = per_network_ms + sum(scale * block_ms + per_block_ms + per_mparam_ms * w)``.

    Attributes:
        per_network_ms: constant per network run.
        per_block_ms: constant per block.
        scale: multiplier of every block latency.
        per_mparam_ms: cost per million weights of a block (weights streamed from memory in a
            network; 0 in profiles written before this term existed).
        n_networks: end-to-end measurements behind the fit (0: identity rule).
        rel_err: the chosen form, its leave-one-out mean error, and the in-sample median and
            max absolute relative error.
    """

    per_network_ms: float = 0.0
    per_block_ms: float = 0.0
    scale: float = 1.0
    n_networks: int = 0
    rel_err: dict[str, Any] | None = None
    per_mparam_ms: float = 0.0

    def block(self, ms: float, mparams: float = 0.0) -> float:
        """A block's latency in network context.

        Args:
            ms: its isolated latency.
            mparams: its weights, in millions.
        """
        return self.scale * ms + self.per_block_ms + self.per_mparam_ms * mparams

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
                       dict(data["rel_err"]) if data.get("rel_err") else None,
                       float(data.get("per_mparam_ms", 0.0)))
        except (TypeError, ValueError) as e:
            raise InvalidInputError(f"malformed fusion rule {dict(data)!r}: {e}; re-profile the "
                                    "device (nas profile)") from None


#: candidate rules: which of (per_network_ms, per_block_ms, scale, per_mparam_ms) are fitted;
#: every form also comes with the weights term (``+weights``; ``weights`` alone on the sum).
_BASE_FORMS: dict[str, tuple[bool, bool, bool]] = {
    "sum": (False, False, False),
    "network": (True, False, False),
    "network+scale": (True, False, True),
    "network+block": (True, True, False),
    "network+block+scale": (True, True, True),
}
FORMS: dict[str, tuple[bool, bool, bool, bool]] = {
    **{name: (*f, False) for name, f in _BASE_FORMS.items()},
    **{("weights" if name == "sum" else f"{name}+weights"): (*f, True)
       for name, f in _BASE_FORMS.items()},
}


def _solve(form: tuple[bool, bool, bool, bool], s: np.ndarray, n: np.ndarray, w: np.ndarray,
           y: np.ndarray) -> tuple[float, float, float, float]:
    """Weighted least squares (weights ``1 / y``) of one rule form.

    Returns:
        ``(per_network_ms, per_block_ms, scale, per_mparam_ms)``.
    """
    cols = [c for c, on in zip((np.ones_like(s), n, s, w), form, strict=True) if on]
    target = y if form[2] else y - s
    if not cols:
        return 0.0, 0.0, 1.0, 0.0
    wt = 1.0 / y
    coef, *_ = np.linalg.lstsq(np.column_stack(cols) * wt[:, None], target * wt, rcond=None)
    it = iter(float(c) for c in coef)
    c0, c1, scale, c3 = (next(it) if on else default
                         for on, default in zip(form, (0.0, 0.0, 1.0, 0.0), strict=True))
    return c0, c1, scale, c3


def _predict(terms: tuple[float, float, float, float], s: np.ndarray | float,
             n: np.ndarray | float, w: np.ndarray | float) -> Any:
    c0, c1, scale, c3 = terms
    return c0 + c1 * n + scale * s + c3 * w


def fit_fusion(block_sums: Sequence[float], n_blocks: Sequence[int],
               measured: Sequence[float], mparams: Sequence[float] | None = None) -> Fusion:
    """Fusion rule from end-to-end measurements, its form chosen by leave-one-out error.

    Every form of :data:`FORMS` with at least two networks more than it has terms is fitted
    by weighted least squares (weights ``1 / measured``, so *relative* error is minimised)
    with each network left out in turn; the form with the lowest mean absolute relative
    leave-one-out error wins (the first in :data:`FORMS` order on a tie) and is refitted on
    all networks. Few networks thus get few terms.

    Args:
        block_sums: per network, the sum of its isolated block latencies (ms).
        n_blocks: per network, its number of blocks.
        measured: per network, its end-to-end latency (ms).
        mparams: per network, its blocks' weights in millions (None: the ``+weights`` forms
            are not tried).

    Returns:
        The fitted rule; ``rel_err`` holds the chosen form, its leave-one-out error and the
        in-sample median / max error.

    Raises:
        ValueError: the sequences differ in length or are empty.
    """
    s = np.asarray(block_sums, dtype=np.float64)
    n = np.asarray(n_blocks, dtype=np.float64)
    y = np.asarray(measured, dtype=np.float64)
    w = np.asarray(mparams if mparams is not None else np.zeros(len(y)), dtype=np.float64)
    if not (len(s) == len(n) == len(y) == len(w)) or len(y) == 0:
        raise ValueError(f"`block_sums`, `n_blocks`, `measured`, `mparams` must be equally long "
                         f"and non-empty, but got {len(s)=}, {len(n)=}, {len(y)=}, {len(w)=}")
    best = (float("inf"), "sum")
    for name, form in FORMS.items():
        if (len(y) < sum(form) + 2 and name != "sum") or (form[3] and mparams is None):
            continue
        errs = []
        for i in range(len(y)):
            keep = np.arange(len(y)) != i
            terms = _solve(form, s[keep], n[keep], w[keep], y[keep])
            errs.append(abs(_predict(terms, s[i], n[i], w[i]) / y[i] - 1.0))
        loo = float(np.mean(errs))
        if loo < best[0] - 1e-12:
            best = (loo, name)
    c0, c1, scale, c3 = terms = _solve(FORMS[best[1]], s, n, w, y)
    rel = np.abs(_predict(terms, s, n, w) / y - 1.0)
    return Fusion(c0, c1, scale, len(y), {"form": best[1], "loo_mean": best[0],
                                          "median": float(np.median(rel)),
                                          "max": float(np.max(rel))}, c3)
