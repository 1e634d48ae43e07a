"""``nas export --format tflite``: LiteRT runs the file, its output matches torch, MACs beside ours.

A whole-subnet conversion takes tens of seconds, so the CLI run converts the ofa_mbv3 min arch
(16 blocks, no attention: about half the conversion time of the elasticvit min arch) at 64 px
(slow); attention blocks are converted by ``tests/hardware_models/test_litert.py`` and every
space's subnets by ``benchmarks/tflite_checks.py``. The MAC report is checked on a written
sidecar without converting.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from nasforge.cli._app import app
from nasforge.cli._common import run_app
from nasforge.experiments import EXPORT_FORMATS
from nasforge.experiments.export._tflite import MACS_TOLERANCE
from nasforge.experiments.export._tflite import mac_line
from nasforge.experiments.export._tflite import mac_report
from nasforge.search_spaces import get_space


def test_tflite_is_a_registered_format() -> None:
    fmt = EXPORT_FORMATS.get("tflite")
    assert fmt.suffix == ".tflite" and fmt.name == "tflite"


def test_mac_report_compares_at_the_arch_resolution(tmp_path: Path) -> None:
    space = get_space("elasticvit")
    arch = space.min_arch()
    ours = space.flops(arch)
    model = tmp_path / "m.tflite"
    model.write_bytes(b"")
    (tmp_path / "m.tflite.json").write_text(json.dumps({"converter_macs": round(ours * 1.01)}))
    res = arch.resolution  # type: ignore[attr-defined]
    got = mac_report(model, arch, space, res, space.num_classes)  # type: ignore[attr-defined]
    assert got["ours"] == ours and got["within_tolerance"] is True
    assert got["rel_diff"] == pytest.approx(0.01, abs=1e-4)
    (tmp_path / "m.tflite.json").write_text(json.dumps(
        {"converter_macs": round(ours * (1 + 2 * MACS_TOLERANCE))}))
    assert mac_report(model, arch, space, res, space.num_classes)[  # type: ignore[attr-defined]
        "within_tolerance"] is False
    other = mac_report(model, arch, space, 64, space.num_classes)  # type: ignore[attr-defined]
    assert other["ours"] is None and "not compared" in other["note"]


@pytest.mark.slow
def test_cli_export_tflite_checks_and_times(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("litert_torch")
    pytest.importorskip("ai_edge_litert")
    space = get_space("ofa_mbv3")
    arch = space.min_arch()
    src = tmp_path / "a.yaml"
    src.write_text(arch.to_yaml())
    out = tmp_path / "out"
    rc = run_app(app, ["export", str(src), "--format", "tflite", "--out", str(out),
                       "--input-size", "64", "--runs", "3"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    stem = f"{space.name}_{arch.arch_id}"
    assert (out / f"{stem}.tflite").stat().st_size > 10_000
    cfg = yaml.safe_load((out / f"{stem}.yaml").read_text())
    ver = cfg["verification"]
    assert ver["ok"] is True and ver["max_abs_diff"] <= 1e-4 and ver["latency_ms"] > 0
    assert "LiteRT" in ver["runtime"]
    assert cfg["macs"]["converter"] > 0 and "not compared" in cfg["macs"]["note"]
    assert "converter MACs" in printed
    assert mac_line(out / f"{stem}.yaml").startswith("converter MACs")


def test_mac_check_uses_the_file_op_count_and_shows_the_converter_gap(tmp_path: Path) -> None:
    space = get_space("elasticvit")
    arch = space.sample(np.random.default_rng(3))
    ours = space.flops(arch)
    model = tmp_path / "m.tflite"
    model.write_bytes(b"")
    (tmp_path / "m.tflite.json").write_text(json.dumps(
        {"converter_macs": round(ours * 0.938), "graph_macs": round(ours * 1.004)}))
    res = arch.resolution  # type: ignore[attr-defined]
    got = mac_report(model, arch, space, res, space.num_classes)  # type: ignore[attr-defined]
    assert got["compared"] == "graph" and got["within_tolerance"] is True
    assert got["converter_within_tolerance"] is False
    assert got["rel_diff"] == pytest.approx(-0.062, abs=1e-4)
    assert got["graph_rel_diff"] == pytest.approx(0.004, abs=1e-4)
    cfg = tmp_path / "m.yaml"
    cfg.write_text(yaml.safe_dump({"macs": got}))
    line = mac_line(cfg)
    assert "-6.20%" in line and "+0.40% (within 3%)" in line and "batch-matmul" in line
    (tmp_path / "m.tflite.json").write_text(json.dumps(
        {"converter_macs": round(ours * 1.0), "graph_macs": round(ours * 1.05)}))
    bad = mac_report(model, arch, space, res, space.num_classes)  # type: ignore[attr-defined]
    assert bad["within_tolerance"] is False and bad["converter_within_tolerance"] is True
    cfg.write_text(yaml.safe_dump({"macs": bad}))
    assert "OUTSIDE" in mac_line(cfg)
