"""Shared fixtures: the measured nn-Meter table, an isolated user cache, shared conversions."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from collections.abc import Sequence
from pathlib import Path

import pytest


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private ``$NASFORGE_CACHE`` for one test."""
    monkeypatch.setenv("NASFORGE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def lut_path(shared_data: Path) -> Path:
    """pixel6's measured nn-Meter table in ../shared/data, for ``fidelity`` tests (skipped when
    the folder is absent, failed with ``NASFORGE_REQUIRE_SHARED=1``: see ``tests/conftest.py``)."""
    return shared_data / "nnmeter_hybrid_lut" / "pixel6_lut_ln_v3.json"


@pytest.fixture(scope="session")
def tflite_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Converted ``.tflite`` files shared by the tests of one session (one xdist worker).

    Conversions cost seconds per block, so tests that profile the same seeded block set share
    them through :func:`shared_tflite`; the folder lives under pytest's temporary root.
    """
    return tmp_path_factory.mktemp("tflite-shared")


@pytest.fixture
def shared_tflite(cache: Path, tflite_store: Path) -> Iterator[Path]:
    """The test's ``$NASFORGE_CACHE/tflite``, filled from and returned to :func:`tflite_store`.

    Files are copied in before the test and the real conversions it adds are copied back after
    it; entries whose ``.json`` says ``"stand_in": true`` (see :func:`seed_stand_ins`) stay in
    the test's own cache, so no other test is served a stand-in.
    """
    own = cache / "tflite"
    own.mkdir(parents=True, exist_ok=True)
    for f in tflite_store.iterdir():
        shutil.copy2(f, own / f.name)
    yield own
    for meta in own.glob("*.json"):
        model = meta.with_suffix(".tflite")
        if (not model.is_file() or json.loads(meta.read_text()).get("stand_in")
                or (tflite_store / model.name).is_file()):
            continue
        shutil.copy2(meta, tflite_store / meta.name)
        shutil.copy2(model, tflite_store / model.name)


@pytest.fixture(scope="session")
def stand_in_tflite(tflite_store: Path) -> Path:
    """A real, tiny converted model (3x3 conv + Hardswish, 3x16x16 input), converted once."""
    pytest.importorskip("litert_torch")
    import torch
    from torch import nn

    from nasforge.hardware_models.profiling._litert import convert_module

    path = tflite_store.parent / "stand_in_net.tflite"
    if not path.is_file():
        torch.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Hardswish()).eval()
        path.write_bytes(convert_module(net, (1, 3, 16, 16), name="stand-in").content)
    return path


def seed_stand_ins(cache_tflite: Path, keys_shapes: Sequence[tuple[str, Sequence[int]]],
                   model: Path) -> list[Path]:
    """Put ``model`` in a cache under each ``(key, shape)``, marked ``"stand_in": true``.

    For end-to-end tests of the measurement machinery (sampling, push, ``benchmark_model``
    protocol, parsing, reports) that must not pay a whole-subnet conversion (tens of seconds
    each; whole-subnet conversion is tested by ``tests/experiments/test_tflite.py``).

    Returns:
        The cache files written.
    """
    from nasforge.hardware_models.profiling._litert import TfliteCache

    store = TfliteCache(cache_tflite)
    out = []
    for key, shape in keys_shapes:
        p = store.path(key, shape)
        p.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(model, p)
        p.with_suffix(".json").write_text(json.dumps(
            {"key": key, "shape": list(shape), "converter_macs": None, "stand_in": True}))
        out.append(p)
    return out
