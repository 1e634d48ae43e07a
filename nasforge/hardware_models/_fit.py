"""Fitting a device's regressors on a measured table, and measuring how well they generalise.

Used by ``scripts/fit_phone_regressors.py`` (which writes the shipped phone devices),
``benchmarks/latency_predict.py`` and the tests, so all three report the same figures:

* ``table_fit``: regressors fitted on all keys; whole-network error of random subnets against
  the table sum (share within +-2 %, max);
* ``holdout``: regressors refitted with ``holdout_frac`` of each family's keys held out;
  median relative error on those keys (overall and per family), and the share of random
  subnets that use a held-out key predicted within +-5 % (held-out blocks from the regressor,
  the others from the table).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import numpy as np

from nasforge.hardware_models._keys import get_key_scheme
from nasforge.hardware_models._keys import key_family
from nasforge.hardware_models._regressor import BlockRegressors
from nasforge.search_spaces.registry import get_space

__all__ = ["holdout_split", "network_keys", "regressor_report"]


def holdout_split(keys: Sequence[str], frac: float, rng: np.random.Generator) -> set[str]:
    """Hold out ``round(frac * n)`` keys of each family, chosen with ``rng``."""
    if not 0.0 <= frac < 1.0:
        raise ValueError(f"`0 <= frac < 1` must hold, but got {frac=}")
    by: dict[str, list[str]] = defaultdict(list)
    for k in sorted(keys):
        by[key_family(k)].append(k)
    out: set[str] = set()
    for fam in sorted(by):
        ks = by[fam]
        n = round(frac * len(ks))
        out.update(ks[i] for i in rng.permutation(len(ks))[:n].tolist())
    return out


def network_keys(space_name: str, n: int, rng: np.random.Generator) -> list[list[str]]:
    """The latency keys of ``n`` random architectures of a space."""
    space, scheme = get_space(space_name), get_key_scheme(space_name)
    return [scheme.keys(space.blocks(space.sample(rng))) for _ in range(n)]


def _predict_keys(reg: BlockRegressors, keys: Sequence[str]) -> dict[str, float]:
    ks = sorted(set(keys))
    return dict(zip(ks, reg.predict(ks).tolist(), strict=True))


def regressor_report(
    table: Mapping[str, float],
    *,
    space: str = "elasticvit",
    n_archs: int = 1000,
    holdout_frac: float = 0.2,
    seed: int = 0,
    full: BlockRegressors | None = None,
) -> dict[str, Any]:
    """Fit (or take) regressors on ``table`` and measure them (see the module docstring).

    Args:
        table: ``key -> ms`` measured entries.
        space: the space whose random subnets are evaluated.
        n_archs: number of random subnets.
        holdout_frac: share of each family's keys held out.
        seed: seeds the subnet sample, the split and XGBoost.
        full: regressors already fitted on the whole table (fitted here when None).

    Returns:
        A JSON-ready dict with ``table_fit`` and ``holdout`` sections.
    """
    rng = np.random.default_rng(seed)
    nets = network_keys(space, n_archs, rng)
    missing = sorted({k for ks in nets for k in ks if k not in table})
    if missing:
        raise ValueError(f"the table lacks {len(missing)} keys of random {space} subnets, e.g. "
                         f"{missing[0]!r}; the report needs a table covering the space")
    truth = np.asarray([sum(table[k] for k in ks) for ks in nets])
    if full is None:
        full = BlockRegressors.fit(table, seed=seed)
    pf = _predict_keys(full, [k for ks in nets for k in ks])
    rel = np.asarray([sum(pf[k] for k in ks) for ks in nets]) / truth - 1.0
    table_fit = {"n_archs": n_archs, "within_2pct": float(np.mean(np.abs(rel) <= 0.02)),
                 "max_abs_rel_err": float(np.max(np.abs(rel))),
                 "median_abs_rel_err": float(np.median(np.abs(rel)))}

    held = holdout_split(list(table), holdout_frac, rng)
    train = {k: v for k, v in table.items() if k not in held}
    reg = BlockRegressors.fit(train, seed=seed)
    hk = sorted(held)
    ph = _predict_keys(reg, hk)
    errs = np.asarray([abs(ph[k] / table[k] - 1.0) for k in hk])
    per_fam: dict[str, dict[str, float]] = {}
    for fam in sorted({key_family(k) for k in hk}):
        e = np.asarray([abs(ph[k] / table[k] - 1.0) for k in hk if key_family(k) == fam])
        per_fam[fam] = {"n": len(e), "median_rel_err": float(np.median(e)),
                        "p90_rel_err": float(np.quantile(e, 0.9))}
    using = [i for i, ks in enumerate(nets) if any(k in held for k in ks)]
    ph_all = _predict_keys(reg, [k for i in using for k in nets[i] if k in held])
    rel_h = np.asarray([sum(ph_all[k] if k in held else table[k] for k in nets[i]) / truth[i]
                        - 1.0 for i in using])
    holdout = {
        "frac": holdout_frac, "n_keys": len(hk),
        "median_rel_err": float(np.median(errs)), "p90_rel_err": float(np.quantile(errs, 0.9)),
        "per_family": per_fam,
        "n_archs_using_heldout": len(using),
        "archs_within_5pct": float(np.mean(np.abs(rel_h) <= 0.05)) if using else float("nan"),
        "archs_max_abs_rel_err": float(np.max(np.abs(rel_h))) if using else float("nan"),
    }
    return {"space": space, "seed": seed, "table_fit": table_fit, "holdout": holdout}
