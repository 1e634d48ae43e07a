"""``nas export --format executorch``: lowered with XNNPACK, run by executorch.runtime, checked
against torch, the ops left outside the delegate reported; without the extra, one line.

A whole-subnet lowering takes tens of seconds on one core, so the CLI run lowers the ofa_mbv3
min arch at 64 px (slow); every space's subnets are lowered by
``benchmarks/executorch_checks.py``. Small modules test the lowering and the report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from nasforge.cli._app import app
from nasforge.cli._common import run_app
from nasforge.experiments import EXPORT_FORMATS
from nasforge.experiments.export._executorch import delegation_line
from nasforge.experiments.export._executorch import delegation_report
from nasforge.search_spaces import get_space


class _ConvNorm(nn.Module):
    """A conv and a LayerNorm over channels (delegated to XNNPACK, the LayerNorm after
    :func:`~nasforge.hardware_models.profiling._executorch_prep.xnnpack_ready`), then a mean
    over the tokens of a 3-D tensor (left outside)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.LayerNorm(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x).flatten(2).transpose(1, 2)  # (B, HW, C)
        return self.norm(y).mean(1)


def test_executorch_is_a_registered_format() -> None:
    fmt = EXPORT_FORMATS.get("executorch")
    assert fmt.suffix == ".pte" and fmt.name == "executorch"


def test_written_pte_runs_like_torch_and_names_ops_outside(tmp_path: Path) -> None:
    pytest.importorskip("executorch")
    torch.manual_seed(0)
    model = _ConvNorm().eval()
    x = torch.randn(1, 3, 8, 8)
    fmt = EXPORT_FORMATS.get("executorch")
    path = tmp_path / "m.pte"
    fmt.write(model, x, path, 17)
    assert path.stat().st_size > 0 and not list(tmp_path.glob(".*tmp"))
    rep = delegation_report(path)
    assert rep["delegate_calls"] >= 1 and rep["pte_bytes"] == path.stat().st_size
    assert rep["outside_delegate"] == {"aten.mean.dim": 1}
    assert rep["outside_delegate_total"] == sum(rep["outside_delegate"].values())
    run = fmt.load(path, lambda: model, 1)
    xn = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(xn)).numpy()
    assert np.abs(run(xn) - ref).max() < 1e-5
    cfg = tmp_path / "m.yaml"
    cfg.write_text(yaml.safe_dump({"delegation": rep}))
    line = delegation_line(cfg)
    assert "outside the delegate: 1 op(s): aten.mean.dim x1" in line and "\n" not in line


def test_missing_extra_is_one_line_exit_2(tmp_path: Path) -> None:
    # what a plain `pip install .` sees: executorch not importable
    src = tmp_path / "a.yaml"
    src.write_text(get_space("ofa_mbv3").min_arch().to_yaml())
    code = ("import sys; sys.modules['executorch'] = None; from nasforge.cli import main; "
            "main(sys.argv[1:])")
    proc = subprocess.run([sys.executable, "-c", code, "export", str(src), "--format",
                           "executorch", "--out", str(tmp_path / "out"), "--input-size", "32",
                           "--runs", "1"], capture_output=True, text=True)
    err = proc.stderr.strip()
    assert proc.returncode == 2, err
    assert "pip install 'nasforge[executorch]'" in err and "Traceback" not in err
    assert len(err.splitlines()) == 1, err


@pytest.mark.slow
def test_cli_export_executorch_checks_times_and_lists(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("executorch")
    space = get_space("ofa_mbv3")
    arch = space.min_arch()
    src = tmp_path / "a.yaml"
    src.write_text(arch.to_yaml())
    out = tmp_path / "out"
    rc = run_app(app, ["export", str(src), "--format", "executorch", "--out", str(out),
                       "--input-size", "64", "--runs", "3"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    stem = f"{space.name}_{arch.arch_id}"
    assert (out / f"{stem}.pte").stat().st_size > 10_000
    cfg = yaml.safe_load((out / f"{stem}.yaml").read_text())
    ver = cfg["verification"]
    assert ver["ok"] is True and ver["max_abs_diff"] <= 1e-4 and ver["latency_ms"] > 0
    assert "ExecuTorch" in ver["runtime"]
    assert cfg["delegation"]["delegate_calls"] >= 1
    assert "XNNPACK delegate calls" in printed
