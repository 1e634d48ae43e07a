"""Shared fixtures: the reference data folder (``../shared/data`` from the repo root)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The measured reference data; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
                    ) -> None:
    """Every test writes its cache (imported tables, quick supernets) to a temp folder."""
    monkeypatch.setenv("NASFORGE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
