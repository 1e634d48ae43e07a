"""Shared fixtures: the reference data folder (``../shared/data`` from the repo root); how the
suite shares the machine when pytest-xdist runs it in several worker processes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Several workers share the cores: torch's default of one thread per core makes every
    # worker (and the subprocesses the tests start, which inherit this) fight for all of them.
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``ray`` share one xdist group: two local Ray instances started side by side
    find each other (``ray.init()`` joins the latest cluster it knows of) and compete for the
    same cores, so they run one after another on one worker (``--dist loadgroup``)."""
    for item in items:
        if item.get_closest_marker("ray") is not None:
            item.add_marker(pytest.mark.xdist_group("ray"))
