"""Per-block-family latency regressors: a base model plus an XGBoost residual.

For each key family (``conv``, ``transds``, ``transattn``, ...) the model predicts ``log(ms)``
as a base plus a gradient-boosted tree ensemble fitted on the residual over
:func:`~nasforge.hardware_models._features.features` (the key's fields, op terms and MACs).
Families with fewer than ``min_tree_rows`` entries keep the base only. Two bases:

* ``loglinear`` (the shipped phones): ``w . [1, log1p(dense), log1p(dw), log1p(attn),
  log1p(bytes)]`` by ridge least squares (extrapolates sanely with FLOPs and bytes);
* ``additive`` (devices nasforge profiles, few and noisy entries): ``log(w . [dense, dw, attn,
  bytes, 1])`` with non-negative ``w`` (ms per MAC, per byte, per call) fitted by NNLS on the
  relative error -- latency is a *sum* of its ops' costs, which a power law in log space misses
  when several terms matter.

Saved as ``regressors.json`` (linear weights, hyper-parameters, metadata) next to one XGBoost
JSON file per family (``Booster.save_model("conv.xgb.json")``); no pickles.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb
from scipy.optimize import nnls

from nasforge.errors import InvalidInputError
from nasforge.errors import MissingLatencyError
from nasforge.hardware_models._features import feature_matrix
from nasforge.hardware_models._features import op_terms
from nasforge.hardware_models._keys import key_family
from nasforge.structured import load_structured

__all__ = ["BASES", "DEFAULT_XGB_PARAMS", "BlockRegressors", "FamilyRegressor"]

BASES: tuple[str, ...] = ("loglinear", "additive")

#: XGBoost parameters of the shipped regressors (small enough to ship, see the fit script).
DEFAULT_XGB_PARAMS: dict[str, Any] = {
    "max_depth": 5,
    "eta": 0.3,
    "subsample": 0.8,
    "min_child_weight": 1.0,
    "objective": "reg:squarederror",
    "nthread": 1,
}
DEFAULT_ROUNDS = 80
RIDGE = 1e-3
META_FILE = "regressors.json"
FORMAT_VERSION = 1


def _linear_design(keys: Sequence[str]) -> np.ndarray:
    terms = np.log1p(np.asarray([op_terms(k) for k in keys], dtype=np.float64))
    return np.column_stack([np.ones(len(keys)), terms])


def _additive_design(keys: Sequence[str]) -> np.ndarray:
    terms = np.asarray([op_terms(k) for k in keys], dtype=np.float64)
    return np.column_stack([terms, np.ones(len(keys))])


def _fit_additive(keys: Sequence[str], ms: np.ndarray) -> np.ndarray:
    a = _additive_design(keys)
    scale = np.maximum(a.max(axis=0), 1.0)
    coef, _ = nnls(a / scale / ms[:, None], np.ones(len(keys)), maxiter=50 * a.shape[1])
    w = coef / scale
    if not np.any(w > 0):  # degenerate: a constant at the geometric mean
        w[-1] = float(np.exp(np.mean(np.log(ms))))
    return w


@dataclass
class FamilyRegressor:
    """The regressor of one key family.

    Attributes:
        family: the key family.
        weights: log-linear base weights over ``[1, log1p(dense), log1p(dw), log1p(attn),
            log1p(bytes)]``.
        booster: the residual tree ensemble, or None (linear only).
        n_train: number of table entries fitted.
        base: ``loglinear`` (weights over the log design) or ``additive`` (weights: ms per
            dense, dw, attn MAC, per byte, and per call).
    """

    family: str
    weights: np.ndarray
    booster: xgb.Booster | None = None
    n_train: int = 0
    base: str = "loglinear"

    def base_log(self, keys: Sequence[str]) -> np.ndarray:
        """The base model's ``log(ms)`` of ``keys``, shape ``(len(keys),)``."""
        if self.base == "additive":
            ms = _additive_design(keys) @ self.weights
            return np.log(np.maximum(ms, 1e-6))
        return _linear_design(keys) @ self.weights

    def predict_log(self, keys: Sequence[str]) -> np.ndarray:
        """Predicted ``log(ms)`` of ``keys`` (all of this family), shape ``(len(keys),)``."""
        base = self.base_log(keys)
        if self.booster is None:
            return base
        dm = xgb.DMatrix(feature_matrix(list(keys)), base_margin=base)
        return np.asarray(self.booster.predict(dm), dtype=np.float64)


@dataclass
class BlockRegressors:
    """Regressors for several key families, fitted on one device's table.

    Attributes:
        families: family -> regressor.
        params: XGBoost parameters and rounds used.
    """

    families: dict[str, FamilyRegressor] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        table: Mapping[str, float],
        *,
        seed: int = 0,
        params: Mapping[str, Any] | None = None,
        rounds: int = DEFAULT_ROUNDS,
        min_tree_rows: int = 50,
        base: str = "loglinear",
    ) -> BlockRegressors:
        """Fit one regressor per key family on ``table`` (``key -> ms``).

        Args:
            table: measured latencies in ms (> 0).
            seed: XGBoost seed (row subsampling).
            params: XGBoost parameters (default :data:`DEFAULT_XGB_PARAMS`).
            rounds: boosting rounds per family.
            min_tree_rows: families with fewer entries get the base only.
            base: ``loglinear`` or ``additive`` (see the module docstring).

        Raises:
            ValueError: unknown ``base``.
        """
        if base not in BASES:
            raise ValueError(f"`base` must be one of {BASES}, but got {base=}")
        p = {**DEFAULT_XGB_PARAMS, **(params or {}), "seed": seed}
        by: dict[str, list[str]] = defaultdict(list)
        for k in table:
            by[key_family(k)].append(k)
        fams: dict[str, FamilyRegressor] = {}
        for fam, keys in sorted(by.items()):
            keys.sort()
            ms = np.asarray([table[k] for k in keys], dtype=np.float64)
            y = np.log(ms)
            if base == "additive":
                w = _fit_additive(keys, ms)
            else:
                a = _linear_design(keys)
                w = np.linalg.solve(a.T @ a + RIDGE * np.eye(a.shape[1]), a.T @ y)
            reg = FamilyRegressor(fam, w, None, len(keys), base)
            if len(keys) >= min_tree_rows:
                dm = xgb.DMatrix(feature_matrix(keys), label=y, base_margin=reg.base_log(keys))
                reg.booster = xgb.train(p, dm, num_boost_round=rounds)
            fams[fam] = reg
        return cls(fams, {"xgb": p, "rounds": rounds, "min_tree_rows": min_tree_rows,
                          "base": base})

    def has(self, family: str) -> bool:
        """Whether a regressor exists for ``family``."""
        return family in self.families

    def predict(self, keys: Sequence[str]) -> np.ndarray:
        """Predicted ms of ``keys`` (any families), shape ``(len(keys),)``.

        Raises:
            MissingLatencyError: a key's family has no regressor.
        """
        out = np.empty(len(keys), dtype=np.float64)
        by: dict[str, list[int]] = defaultdict(list)
        for i, k in enumerate(keys):
            by[key_family(k)].append(i)
        for fam, idx in by.items():
            reg = self.families.get(fam)
            if reg is None:
                raise MissingLatencyError(
                    f"no regressor for latency-key family {fam!r} (key {keys[idx[0]]!r}); "
                    f"this device has regressors for {', '.join(sorted(self.families))}")
            out[idx] = np.exp(reg.predict_log([keys[i] for i in idx]))
        return out

    def save(self, folder: Path) -> None:
        """Write ``regressors.json`` and one ``{family}.xgb.json`` per boosted family."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta: dict[str, Any] = {"format": FORMAT_VERSION, "params": self.params, "families": {}}
        for fam, reg in self.families.items():
            entry: dict[str, Any] = {"weights": [float(x) for x in reg.weights],
                                     "n_train": reg.n_train, "booster": None}
            if reg.base != "loglinear":
                entry["base"] = reg.base
            if reg.booster is not None:
                name = f"{fam}.xgb.json"
                reg.booster.save_model(str(folder / name))
                entry["booster"] = name
            meta["families"][fam] = entry
        (folder / META_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, folder: Path) -> BlockRegressors:
        """Read what :meth:`save` wrote.

        Raises:
            InvalidInputError: missing or malformed files.
        """
        folder = Path(folder)
        path = folder / META_FILE
        try:
            meta = load_structured(path, "latency regressors", kind="json")
            fams: dict[str, FamilyRegressor] = {}
            for fam, entry in meta["families"].items():
                w = np.asarray(entry["weights"], dtype=np.float64)
                if w.shape != (5,) or not all(math.isfinite(x) for x in w):
                    raise ValueError(f"family {fam}: weights must be 5 finite numbers")
                kind = entry.get("base", "loglinear")
                if kind not in BASES:
                    raise ValueError(f"family {fam}: base must be one of {BASES}, got {kind!r}")
                booster = None
                if entry.get("booster"):
                    booster = xgb.Booster(model_file=str(folder / entry["booster"]))
                    booster.set_param({"nthread": 1})
                fams[fam] = FamilyRegressor(fam, w, booster, int(entry.get("n_train", 0)), kind)
        except (OSError, ValueError, KeyError, TypeError, xgb.core.XGBoostError) as e:
            raise InvalidInputError(
                f"cannot load latency regressors from {folder}: {e}; refit them with "
                "scripts/fit_phone_regressors.py or re-import the device") from None
        return cls(fams, dict(meta.get("params", {})))
