"""Table latency on index matrices (``segment_codes`` + ``predict_indices``): bitwise equal to the
per-architecture block sum, measured entries and analytic fallbacks alike."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from nasforge.hardware_models import LatencyEntry
from nasforge.hardware_models import LatencyTable
from nasforge.hardware_models import get_device
from nasforge.hardware_models import get_key_scheme
from nasforge.hardware_models import import_table
from nasforge.search_spaces import get_space
from nasforge.search_spaces._ofa_mbv3 import SPACE_CFGS
from nasforge.search_spaces._ofa_mbv3 import OFAMobileNetV3Space
from nasforge.strategies import LatencyObjective
from nasforge.strategies import SearchObjectives


def _table_device(tmp_path: Path, space_name: str, n_archs: int) -> str:
    """A device whose table holds random means for the blocks of ``n_archs`` random archs
    (other blocks fall back to the analytic estimate calibrated on it)."""
    space, scheme = get_space(space_name), get_key_scheme(space_name)
    rng = np.random.default_rng(11)
    keys = {k for _ in range(n_archs) for k in scheme.keys(space.blocks(space.sample(rng)))}
    table = LatencyTable({k: LatencyEntry(float(rng.uniform(0.01, 3.0))) for k in sorted(keys)})
    table.write_csv(tmp_path / "t.csv")
    import_table(tmp_path / "t.csv", "csv", "tabdev", space_name)
    return "tabdev"


@pytest.mark.parametrize("space_name", ["ofa_mbv3", "ofa_mbv3_w12"])
def test_predict_indices_equals_the_block_sum(cache: Path, tmp_path: Path,
                                              space_name: str) -> None:
    model = get_device(_table_device(tmp_path, space_name, 40))
    space = get_space(space_name)
    idx = space.sample_indices(np.random.default_rng(5), 300)  # type: ignore[attr-defined]
    archs = space.from_indices(idx)  # type: ignore[attr-defined]
    scheme = get_key_scheme(space_name)
    by_blocks = np.asarray([sum(ms for ms, _, _ in model.lookup(scheme.keys(space.blocks(a))))
                            for a in archs])
    provenances = {p for a in archs[:20] for _, p, _ in model.lookup(
        scheme.keys(space.blocks(a)))}
    assert provenances == {"measured", "predicted"}  # both paths are exercised
    got = model.predict_indices(space, idx)
    assert got is not None and np.array_equal(got, by_blocks)
    assert np.array_equal(model.predict_many(archs), by_blocks)
    assert np.array_equal(model.predict_indices(space, idx[::-1]), by_blocks[::-1])  # cached


def test_a_space_with_fewer_resolutions_agrees(cache: Path, tmp_path: Path) -> None:
    model = get_device(_table_device(tmp_path, "ofa_mbv3_w12", 20))
    sub = OFAMobileNetV3Space("ofa_mbv3_w12", cfg=dataclasses.replace(
        SPACE_CFGS["ofa_mbv3_w12"], resolutions=(160, 192, 224)))
    idx = sub.sample_indices(np.random.default_rng(2), 200)
    archs = sub.from_indices(idx)
    assert {a.resolution for a in archs} == {160, 192, 224}  # type: ignore[attr-defined]
    got = model.predict_indices(sub, idx)
    assert got is not None and np.array_equal(got, model._predict_each(archs))


def test_cheap_values_of_rows_equal_those_of_archs(cache: Path, tmp_path: Path) -> None:
    model = get_device(_table_device(tmp_path, "ofa_mbv3", 30))
    space = get_space("ofa_mbv3")
    idx = space.sample_indices(np.random.default_rng(9), 120)  # type: ignore[attr-defined]
    by_rows = SearchObjectives([LatencyObjective(model, upper=20.0)])
    by_archs = SearchObjectives([LatencyObjective(model, upper=20.0)])
    rows = by_rows.evaluate_cheap_indices(space, idx)  # type: ignore[arg-type]
    archs = by_archs.evaluate_cheap(space.from_indices(idx))  # type: ignore[attr-defined]
    assert rows.shape == (120, 1) and np.array_equal(rows, archs)
    mask = by_rows.cheap_feasible_indices(space, idx)  # type: ignore[arg-type]
    assert 0 < mask.sum() < len(mask)


@pytest.mark.parametrize(("device", "space_name"), [("pixel7", "elasticvit"),
                                                    ("pixel1", "elasticvit_efficient")])
def test_segmented_schemes_sum_like_predict_many(device: str, space_name: str) -> None:
    """nn-Meter's per-stage cut (segment_columns): equal to the per-arch segment sums."""
    model = get_device(device)
    space = get_space(space_name)
    idx = space.sample_indices(np.random.default_rng(8), 150)  # type: ignore[attr-defined]
    archs = space.from_indices(idx)  # type: ignore[attr-defined]
    got = model.predict_indices(space, idx)
    assert got is not None and np.array_equal(got, model._predict_each(archs))
    assert np.array_equal(model.predict_many(archs), got)
