"""The parts latency model (prefill/decode, encoder/decoder): fit, store, measures, search use."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nasforge.errors import InvalidInputError
from nasforge.hardware_models import LM_FEATURES
from nasforge.hardware_models import DeviceProfile
from nasforge.hardware_models import FeatureLatencyModel
from nasforge.hardware_models import PartsRegressor
from nasforge.hardware_models import get_device
from nasforge.hardware_models import lm_features
from nasforge.hardware_models._lm_latency import LM_TERMS
from nasforge.hardware_models._lm_latency import local_lm_device
from nasforge.hardware_models._seq_model import term_matrix
from nasforge.search_spaces import get_space

SPACE = "elastic_lm"


def _truth(x: np.ndarray) -> dict[str, np.ndarray]:
    """A device whose prefill and decode cost is linear in the work (ms)."""
    d, layers, _, ffn, heads, p = x.T
    return {"prefill": 0.2 + 1e-6 * p * (layers * d * d + d * ffn) + 2e-4 * heads * p * p,
            "decode": 0.05 + 1e-6 * (layers * d * d + d * ffn) + 1e-4 * heads * p}


def _device(tmp: Path, name: str = "cpu-local-elastic_lm") -> Path:
    space = get_space(SPACE)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(60)]
    x = lm_features(archs)
    reg = PartsRegressor.fit(x, LM_FEATURES, _truth(x), LM_TERMS)
    folder = tmp / "devices" / name
    folder.mkdir(parents=True)
    (folder / "latency_model.json").write_text(json.dumps(reg.to_dict()))
    DeviceProfile(name, provenance="predicted", spaces=[SPACE], extra={"model": {
        "kind": "parts", "file": "latency_model.json", "features": "lm",
        "measures": {"decode": ["decode"], "prefill": ["prefill"]},
        "default": "decode"}}).save(folder)
    return folder


def test_features_sum_the_active_layers() -> None:
    space = get_space(SPACE)
    a = space.max_arch()
    x = lm_features([a])[0]
    assert dict(zip(LM_FEATURES, x, strict=True)) == {
        "embed_dim": a.embed_dim, "layer_num": a.layer_num,  # type: ignore[attr-defined]
        "context_length": a.context_length,  # type: ignore[attr-defined]
        "ffn_embed_dim_sum": sum(a.ffn_embed_dim),  # type: ignore[attr-defined]
        "self_attention_heads_sum": sum(a.self_attention_heads),  # type: ignore[attr-defined]
        "prompt_tokens": a.context_length // 2}  # type: ignore[attr-defined]


def test_device_answers_decode_by_default_and_prefill_on_request(cache: Path) -> None:
    _device(cache)
    space = get_space(SPACE)
    archs = [space.min_arch(), space.max_arch()]
    truth = _truth(lm_features(archs))
    model = get_device("cpu-local-elastic_lm")
    assert isinstance(model, FeatureLatencyModel)
    np.testing.assert_allclose(model.predict_many(archs), truth["decode"], rtol=1e-6)
    np.testing.assert_allclose(get_device("cpu-local-elastic_lm:prefill").predict_many(archs),
                               truth["prefill"], rtol=1e-6)
    rows = model.explain(archs[1])
    assert [r.key for r in rows] == ["lm:decode"] and rows[0].provenance == "predicted"
    with pytest.raises(InvalidInputError, match="latency measures"):
        get_device("cpu-local-elastic_lm:e2e")


def test_search_latency_on_cpu_local_means_decode_ms(cache: Path) -> None:
    from nasforge.evaluation import resolve_latency

    _device(cache)
    space = get_space(SPACE)
    archs = [space.sample(np.random.default_rng(3)) for _ in range(5)]
    obj = resolve_latency("cpu-local", upper=1.0, space=space)
    np.testing.assert_allclose(obj.evaluate_many(archs), _truth(lm_features(archs))["decode"],
                               rtol=1e-6)
    pre = resolve_latency("cpu-local:prefill", space=space)
    np.testing.assert_allclose(pre.evaluate_many(archs), _truth(lm_features(archs))["prefill"],
                               rtol=1e-6)
    assert local_lm_device("pixel6", SPACE) == "pixel6"


def test_round_trip_and_malformed_model(tmp_path: Path) -> None:
    x = np.abs(np.random.default_rng(0).standard_normal((30, 2))) + 1
    reg = PartsRegressor.fit(x, ("a", "b"), {"p": 3 + 2 * x[:, 0] * x[:, 1]}, {"p": ("1", "a*b")})
    np.testing.assert_allclose(reg.parts["p"].weights, [3, 2], rtol=1e-6)
    back = PartsRegressor.from_dict(json.loads(json.dumps(reg.to_dict())))
    np.testing.assert_allclose(back.predict(x), reg.predict(x))
    bad = reg.to_dict()
    bad["parts"]["p"]["weights"] = [1.0]
    with pytest.raises(InvalidInputError, match="malformed"):
        PartsRegressor.from_dict(bad)
    with pytest.raises(InvalidInputError, match="names feature 'c'"):
        term_matrix(("a*c",), x, ("a", "b"))
