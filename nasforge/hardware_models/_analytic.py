"""The analytical estimate: op counts over a device's effective rates, calibrated on its table.

``ms = dense / R_dense + dw / R_dw + attn / R_attn + bytes / BW + overhead``

where the four op terms come from :func:`~nasforge.hardware_models._features.op_terms` and the
effective rates (MACs/ms, bytes/ms) and the per-call overhead are fitted per measured key family
by non-negative least squares on the device's entries, weighted so that *relative* error is
minimised. A family no table measured uses the rates of its proxy (:data:`FAMILY_PROXY`: linear
and window attention use softmax attention's, OFA's MBConv uses ``conv``'s). Blocks
no table measured (linear and window attention, other spaces' blocks) get this estimate, labelled
``predicted``; the calibration error on the measured entries is stored in the device profile.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import nnls

from nasforge.errors import InvalidInputError
from nasforge.errors import MissingLatencyError
from nasforge.hardware_models._features import OP_FAMILIES
from nasforge.hardware_models._features import op_terms
from nasforge.hardware_models._keys import key_family

__all__ = ["FAMILY_PROXY", "AnalyticEstimator"]

#: Families no table measures -> the measured family whose per-call overhead they borrow.
FAMILY_PROXY: dict[str, str] = {
    "transattnlinear": "transattn",
    "transattnwindow": "transattn",
    "expanded_conv": "conv",
    "Conv": "firstconv",
    "Conv_1": "mbpool",
    "ofa_head": "mbpool",
    "AvgPool2D": "",
    "Conv_2": "",
    "Logits": "",
}


@dataclass
class AnalyticEstimator:
    """Calibrated op-count latency model of one device.

    Attributes:
        ms_per_unit: per measured key family, ms per unit of each op family (``dense``, ``dw``,
            ``attn`` MACs, ``bytes``): the inverse effective rates.
        overhead: ms per call of each measured key family.
        calibration: median / p90 relative error on the measured entries, overall and per family.
    """

    ms_per_unit: dict[str, dict[str, float]]
    overhead: dict[str, float]
    calibration: dict[str, Any]

    @classmethod
    def calibrate(cls, table: Mapping[str, float]) -> AnalyticEstimator:
        """Fit rates and overheads per key family on ``table`` (``key -> ms``) by NNLS on the
        relative error."""
        if not table:
            raise InvalidInputError("cannot calibrate the analytical estimate on an empty table")
        by: dict[str, list[str]] = defaultdict(list)
        for k in sorted(table):
            by[key_family(k)].append(k)
        per: dict[str, dict[str, float]] = {}
        over: dict[str, float] = {}
        for fam, keys in by.items():
            terms = np.asarray([op_terms(k) for k in keys], dtype=np.float64)
            scale = np.maximum(terms.max(axis=0), 1.0)
            y = np.asarray([table[k] for k in keys], dtype=np.float64)
            a = np.column_stack([terms / scale, np.ones(len(keys))]) / y[:, None]
            coef, _ = nnls(a, np.ones(len(keys)), maxiter=50 * a.shape[1])
            per[fam] = {f: float(c / s) for f, c, s in
                        zip(OP_FAMILIES, coef[:4], scale, strict=True)}
            over[fam] = float(coef[4])
        est = cls(per, over, {})
        fam_err: dict[str, Any] = {}
        all_rel: list[np.ndarray] = []
        for fam, keys in by.items():
            y = np.asarray([table[k] for k in keys], dtype=np.float64)
            rel = np.abs(est.predict(keys) / y - 1.0)
            all_rel.append(rel)
            fam_err[fam] = {"median_rel_err": float(np.median(rel)),
                            "p90_rel_err": float(np.quantile(rel, 0.9)), "n": len(keys)}
        rel_all = np.concatenate(all_rel)
        est.calibration = {"median_rel_err": float(np.median(rel_all)),
                           "p90_rel_err": float(np.quantile(rel_all, 0.9)), "n": len(rel_all),
                           "per_family": fam_err}
        return est

    def _source_family(self, family: str) -> str | None:
        if family in self.ms_per_unit:
            return family
        proxy = FAMILY_PROXY.get(family)
        if proxy and proxy in self.ms_per_unit:
            return proxy
        if proxy == "" and "mbpool" in self.ms_per_unit:
            return "mbpool"
        return None

    def covers(self, family: str) -> bool:
        """Whether a key of ``family`` can be estimated (its family or proxy was calibrated)."""
        return self._source_family(family) is not None

    def calibration_error(self, family: str) -> float:
        """Median relative calibration error of the measured family that answers ``family``."""
        src = self._source_family(family)
        fam = self.calibration.get("per_family", {}).get(src or "", {})
        return float(fam.get("median_rel_err", float("nan")))

    def predict(self, keys: Sequence[str]) -> np.ndarray:
        """Estimated ms of ``keys``, shape ``(len(keys),)``.

        Raises:
            MissingLatencyError: a key's family (and its proxy) was never calibrated.
        """
        out = np.empty(len(keys), dtype=np.float64)
        for i, k in enumerate(keys):
            fam = key_family(k)
            src = self._source_family(fam)
            if src is None:
                raise MissingLatencyError(
                    f"no latency for key {k!r}: family {fam!r} has no table entry, no regressor, "
                    f"and the analytical estimate was calibrated only on "
                    f"{', '.join(sorted(self.ms_per_unit))}; measure it (nas profile / nas hw "
                    "import)")
            rate = self.ms_per_unit[src]
            over = self.overhead[src] if (src == fam or FAMILY_PROXY.get(fam)) else 0.0
            out[i] = sum(t * rate[f] for t, f in zip(op_terms(k), OP_FAMILIES, strict=True)) + over
        return out

    def effective_rates(self) -> dict[str, dict[str, float]]:
        """Per family: GMAC/s for compute op families, GB/s for bytes (inf where unused)."""
        return {fam: {f"{op}_{'GB' if op == 'bytes' else 'GMAC'}_per_s":
                      (1e-6 / v if v > 0 else float("inf")) for op, v in r.items()}
                for fam, r in self.ms_per_unit.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in the device profile)."""
        rates = {fam: {k: (v if np.isfinite(v) else None) for k, v in r.items()}
                 for fam, r in self.effective_rates().items()}
        return {"ms_per_unit": self.ms_per_unit, "overhead_ms": self.overhead,
                "effective_rates": rates, "calibration": self.calibration}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AnalyticEstimator:
        """Inverse of :meth:`to_dict`.

        Raises:
            InvalidInputError: missing fields.
        """
        try:
            per = {fam: {f: float(r[f]) for f in OP_FAMILIES}
                   for fam, r in data["ms_per_unit"].items()}
            return cls(per, {k: float(v) for k, v in data["overhead_ms"].items()},
                       dict(data.get("calibration", {})))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise InvalidInputError(f"malformed analytical-estimate parameters: {e}") from None
