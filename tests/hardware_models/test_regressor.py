"""Regressors: JSON round trip and generalisation to held-out keys (real xgboost)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nasforge.hardware_models import BlockRegressors
from nasforge.hardware_models import regressor_report


def _sub_table(lut_path: Path) -> dict[str, float]:
    table = json.loads(lut_path.read_text())
    keep = ("transattn", "transffn", "mbpool", "firstconv")
    return {k: v for k, v in table.items() if k.split("_")[0] in keep}


def test_save_load_roundtrip(tmp_path: Path, lut_path: Path) -> None:
    table = _sub_table(lut_path)
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


def test_holdout_report_small_sample(lut_path: Path) -> None:
    table = json.loads(lut_path.read_text())
    rep = regressor_report(table, n_archs=100, seed=1)
    assert rep["table_fit"]["within_2pct"] >= 0.99
    assert rep["holdout"]["median_rel_err"] <= 0.03
    assert rep["holdout"]["archs_within_5pct"] >= 0.95
