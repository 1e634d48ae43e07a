"""Block-sum latency models: exact table sums, fallbacks, provenance, derived devices, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nasforge.errors import InvalidInputError
from nasforge.errors import MissingLatencyError
from nasforge.errors import UnknownNameError
from nasforge.hardware_models import PROVENANCES
from nasforge.hardware_models import get_device
from nasforge.hardware_models import get_key_scheme
from nasforge.hardware_models import import_table
from nasforge.hardware_models import list_devices
from nasforge.search_spaces import get_space


@pytest.mark.fidelity
def test_imported_table_sums_exactly(cache: Path, lut_path: Path) -> None:
    import_table(lut_path, "nnmeter-hybrid", "pixel6", "elasticvit")
    table = json.loads(lut_path.read_text())
    model = get_device("pixel6")
    assert model.provenance == "measured"
    space, scheme = get_space("elasticvit"), get_key_scheme("elasticvit")
    rng = np.random.default_rng(7)
    archs = [space.sample(rng) for _ in range(200)]
    expected = np.asarray([sum(table[k] for k in scheme.keys(space.blocks(a))) for a in archs])
    got = model.predict_many(archs)
    assert np.max(np.abs(got - expected)) < 1e-9
    assert np.max(np.abs(model.predict_many(archs) - expected)) < 1e-9  # warm cache
    assert abs(model.predict(archs[3]) - expected[3]) < 1e-9
    rows = model.explain(archs[3])
    assert {r.provenance for r in rows} == {"measured"}
    assert abs(sum(r.ms for r in rows) - expected[3]) < 1e-9


@pytest.mark.fidelity
def test_shipped_regressors_track_the_table(lut_path: Path) -> None:
    table = json.loads(lut_path.read_text())
    model = get_device("pixel6")
    assert model.provenance == "predicted"
    space, scheme = get_space("elasticvit"), get_key_scheme("elasticvit")
    rng = np.random.default_rng(3)
    archs = [space.sample(rng) for _ in range(150)]
    truth = np.asarray([sum(table[k] for k in scheme.keys(space.blocks(a))) for a in archs])
    rel = np.abs(model.predict_many(archs) / truth - 1)
    assert np.mean(rel <= 0.02) >= 0.99
    assert {r.provenance for r in model.explain(archs[0])} == {"predicted"}


@pytest.mark.parametrize("device", ["pixel1", "pixel4", "xiaomi11"])
def test_other_phones_positive_and_monotone_in_size(device: str) -> None:
    space = get_space("elasticvit")
    model = get_device(device)
    small, big = model.predict(space.min_arch()), model.predict(space.max_arch())
    assert 0 < small < big


def test_pixel7_is_derived_with_documented_factor() -> None:
    space = get_space("elasticvit")
    p6, p7 = get_device("pixel6"), get_device("pixel7")
    prof = p7.profile
    assert prof.provenance == "derived" and prof.derived is not None
    f = prof.derived["factor"]
    assert prof.derived["factor_low"] <= f <= prof.derived["factor_high"]
    assert prof.derived["assumption"] and prof.derived["uncertainty"]
    a = space.max_arch()
    assert p7.predict(a) == pytest.approx(p6.predict(a) * f, rel=1e-12)
    assert {r.provenance for r in p7.explain(a)} == {"derived"}


def test_efficient_attention_gets_labelled_analytic_estimate() -> None:
    space = get_space("elasticvit_efficient")
    a = space.max_arch().replace(attention=("linear", "window", "softmax", "linear"))
    space.validate(a)
    rows = get_device("pixel6").explain(a)
    attn = [r for r in rows if r.block.kind == "attention"]
    assert {r.block.attn for r in attn} == {"linear", "window", "softmax"}
    for r in attn:
        assert r.provenance in PROVENANCES and r.ms > 0
        if r.block.attn != "softmax":
            assert r.source.startswith("analytic")
    # linear attention is O(N): cheaper than softmax at the 14x14 maps of T1 at r=224
    t1 = {r.block.attn: r.ms for r in rows if r.block.stage == "T1" and r.block.kind == "attention"}
    soft = get_device("pixel6").explain(a.replace(attention=("softmax",) * 4))
    t1_soft = next(r.ms for r in soft if r.block.stage == "T1" and r.block.kind == "attention")
    assert t1["linear"] < t1_soft
    assert get_device("pixel6").profile.analytic["calibration"]["median_rel_err"] < 0.1


def test_ofa_blocks_on_phones_are_predicted() -> None:
    space = get_space("ofa_mbv3")
    ms = get_device("pixel6").predict_many([space.min_arch(), space.max_arch()])
    assert 0 < ms[0] < ms[1]


def test_unknown_device_names_closest() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'pixel6'"):
        get_device("pixl6")


def test_missing_block_raises_never_zero(cache: Path, tmp_path: Path) -> None:
    p = tmp_path / "partial.csv"
    p.write_text("key,mean_ms,std_ms,count\nconv_80_16_16_1_1_hard_swish_3_nose,0.5,,\n"
                 "firstconv_160_3_16_2_3,0.2,,\n")
    import_table(p, "csv", "mybox", "elasticvit")
    assert "mybox" in list_devices()
    space = get_space("elasticvit")
    with pytest.raises(MissingLatencyError, match="transds"):
        get_device("mybox").predict(space.min_arch())


def test_import_rejects_unknown_key_pattern(cache: Path, tmp_path: Path) -> None:
    p = tmp_path / "t.json"
    p.write_text('{"conv_80_16_16_1_1_hard_swish_3_nose": 0.5, "gizmo_3_4": 1.0}')
    with pytest.raises(InvalidInputError, match="gizmo_3_4"):
        import_table(p, "nnmeter-hybrid", "box", "elasticvit")
