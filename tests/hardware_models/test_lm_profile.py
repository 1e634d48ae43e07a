"""``nas profile`` / ``nas hw validate`` of ``elastic_lm`` on this machine: prefill and decode."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nasforge.cli._common import run_app
from nasforge.hardware_models.profiling._lm import measure_lm
from nasforge.search_spaces import get_space


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from nasforge.cli import app

    rc = run_app(app, list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_measure_prefill_and_decode_per_token() -> None:
    space = get_space("elastic_lm")
    small, large = space.min_arch(), space.max_arch()
    prefill, decode = measure_lm(space, [small, large], repeats=2)
    assert prefill.shape == decode.shape == (2,)
    assert np.all(prefill > 0) and np.all(decode > 0)
    # the largest subnet does more work per prompt than the smallest
    assert prefill[1] > prefill[0]


def test_measure_hat_encoder_and_decoder() -> None:
    """HAT's protocol on its smallest SubTransformer: encoder ms and decoder ms (23 steps of
    beam 5); the decoder's steps cost more than one encoder pass, as in HAT's measurements."""
    space = get_space("hat_iwslt14deen")
    encoder, decoder = measure_lm(space, [space.min_arch()], repeats=1)
    assert encoder.shape == decoder.shape == (1,)
    assert 0 < encoder[0] < decoder[0]


@pytest.mark.parametrize("argv, needle", [
    (("--device", "pixel6", "--space", "elastic_lm"), "cpu-local --backend torch only"),
    (("--device", "cpu-local", "--space", "elastic_lm", "--backend", "onnxruntime"),
     "cpu-local --backend torch only"),
])
def test_profile_refusals(capsys: pytest.CaptureFixture[str], cache: Path,
                          argv: tuple[str, ...], needle: str) -> None:
    rc, _, err = _run(capsys, "profile", *argv)
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.slow
def test_profile_then_validate(capsys: pytest.CaptureFixture[str], cache: Path,
                               tmp_path: Path) -> None:
    rc, out, _ = _run(capsys, "profile", "--device", "cpu-local", "--space", "elastic_lm",
                      "--n-archs", "10", "--repeats", "2", "--json")
    assert rc == 0
    profile = json.loads(out)
    assert profile["name"] == "cpu-local-elastic_lm"
    assert profile["extra"]["model"]["default"] == "decode"
    out_dir = tmp_path / "val"
    rc, out, _ = _run(capsys, "hw", "validate", "--device", "cpu-local", "--space",
                      "elastic_lm", "--n", "3", "--passes", "1", "--repeats", "2", "--out",
                      str(out_dir), "--json")
    assert rc == 0
    report = json.loads(out)
    for part in ("prefill", "decode"):
        assert 0 <= report[part]["within_10pct"] <= 1 and report[part]["rmse_ms"] >= 0
    assert len(json.loads((out_dir / "validate.json").read_text())["subnets"]) == 3


@pytest.mark.slow
def test_cpu_local_for_a_language_space_is_measured_on_first_use(cache: Path) -> None:
    """`nas search --space elastic_lm --device cpu-local` on a fresh machine: the latency
    source measures `cpu-local-elastic_lm` once, then finds it cached."""
    from nasforge.evaluation.sources import resolve_latency
    from nasforge.search_spaces import get_space

    space = get_space("elastic_lm")
    folder = cache / "devices" / "cpu-local-elastic_lm"
    assert not folder.exists()
    first = resolve_latency("cpu-local", space=space)
    model_file = folder / "latency_model.json"
    stamp = model_file.stat().st_mtime_ns
    ms = first.evaluate_many([space.min_arch(), space.max_arch()])
    assert 0 < ms[0] < ms[1]  # decode ms per token grows with the subnet
    resolve_latency("cpu-local:prefill", space=space)
    assert model_file.stat().st_mtime_ns == stamp  # cached: not measured again
