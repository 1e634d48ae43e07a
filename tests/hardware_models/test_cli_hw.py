"""``nas devices`` and ``nas hw import/predict`` through the real CLI boundary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nasforge.cli._common import run_app


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from nasforge.cli import app

    rc = run_app(app, list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


ARCH = """\
space: elasticvit_efficient
resolution: 160
widths: [16, 24, 40, 64, 96, 160, 192]
depths: [1, 3, 3, 2, 2, 3, 2]
kernels: [3, 5, 3]
expands: [4, 6]
mlp_ratios: [2, 3, 4, 4]
v_scales: [2, 2, 3, 4]
attention: [softmax, linear, window, softmax]
"""


def test_devices_lists_provenance(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _run(capsys, "devices", "--json")
    assert rc == 0
    rows = {d["name"]: d for d in json.loads(out)}
    assert rows["pixel7"]["provenance"] == "derived"
    assert rows["pixel6"]["provenance"] == "predicted"


def test_predict_json_and_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    arch = tmp_path / "a.yaml"
    arch.write_text(ARCH)
    rc, out, _ = _run(capsys, "hw", "predict", "--device", "pixel7", str(arch), "--json")
    assert rc == 0
    data = json.loads(out)
    assert data["device"] == "pixel7" and data["provenance"] == "derived"
    assert data["latency_ms"] == pytest.approx(sum(b["ms"] for b in data["blocks"]))
    rc, _, err = _run(capsys, "hw", "predict", "--device", "pixl7", str(arch))
    assert rc == 2 and "did you mean 'pixel7'" in err and len(err.strip().splitlines()) == 1


def test_import_then_predict_and_malformed(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("key,mean_ms\nfirstconv_160_3_16_2_3,zero\n")
    rc, _, err = _run(capsys, "hw", "import", "--format", "csv", str(bad), "--device", "box",
                      "--space", "elasticvit")
    assert rc == 2 and "line 2" in err and str(bad) in err
    good = tmp_path / "good.csv"
    good.write_text("key,mean_ms\nfirstconv_160_3_16_2_3,0.25\n")
    rc, out, _ = _run(capsys, "hw", "import", "--format", "csv", str(good), "--device", "box",
                      "--space", "elasticvit")
    assert rc == 0 and "box" in out
    arch = tmp_path / "a.yaml"
    arch.write_text(ARCH.replace("elasticvit_efficient", "elasticvit").replace(
        "[softmax, linear, window, softmax]", "[softmax, softmax, softmax, softmax]"))
    rc, _, err = _run(capsys, "hw", "predict", "--device", "box", str(arch))
    assert rc == 2 and "no latency for key" in err
