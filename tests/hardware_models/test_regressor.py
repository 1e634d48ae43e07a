"""Regressors: JSON round trip and generalisation to held-out keys (real xgboost)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nasforge.hardware_models import BlockRegressors
from nasforge.hardware_models import get_key_scheme
from nasforge.hardware_models import regressor_report
from nasforge.search_spaces import get_space


def _sub_table() -> dict[str, float]:
    """A generated table of four key families: the keys of 300 sampled elasticvit archs,
    seeded latencies (the round trip needs no measured figures)."""
    space, scheme = get_space("elasticvit"), get_key_scheme("elasticvit")
    rng = np.random.default_rng(0)
    keep = ("transattn", "transffn", "mbpool", "firstconv")
    keys = sorted({k for _ in range(300) for k in scheme.keys(space.blocks(space.sample(rng)))
                   if k.split("_")[0] in keep})
    return dict(zip(keys, rng.lognormal(0.0, 1.0, len(keys)).tolist(), strict=True))


def test_save_load_roundtrip(tmp_path: Path) -> None:
    table = _sub_table()
    reg = BlockRegressors.fit(table, seed=0, rounds=20)
    reg.save(tmp_path / "r")
    back = BlockRegressors.load(tmp_path / "r")
    keys = sorted(table)[:300]
    np.testing.assert_allclose(back.predict(keys), reg.predict(keys), rtol=1e-6)
    assert not list(tmp_path.rglob("*.pkl"))


def test_shipped_profile_reports_holdout_figures() -> None:
    from nasforge.hardware_models import device_profile

    for name in ("pixel1", "pixel4", "pixel6", "xiaomi11"):
        h = device_profile(name).errors["holdout"]
        assert h["median_rel_err"] <= 0.03
        assert h["archs_within_5pct"] >= 0.95


@pytest.mark.fidelity
def test_holdout_report_small_sample(lut_path: Path) -> None:
    table = json.loads(lut_path.read_text())
    rep = regressor_report(table, n_archs=100, seed=1)
    assert rep["table_fit"]["within_2pct"] >= 0.99
    assert rep["holdout"]["median_rel_err"] <= 0.03
    assert rep["holdout"]["archs_within_5pct"] >= 0.95
