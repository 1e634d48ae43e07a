"""Shared fixtures: the reference data folder and an isolated user cache."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
LUT_DIR = DATA / "nnmeter_hybrid_lut"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private ``$NASFORGE_CACHE`` for one test."""
    monkeypatch.setenv("NASFORGE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def lut_path() -> Path:
    """pixel6's nn-Meter table in ../shared/data (the test is skipped when absent)."""
    p = LUT_DIR / "pixel6_lut_ln_v3.json"
    if not p.is_file():
        pytest.skip(f"reference data not found at {p}")
    return p
