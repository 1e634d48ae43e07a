"""Issue 24, int8: post-training quantization (PT2E) on a calibration set, the int8 formats,
and the calibration set of 0 images refused in one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from nasforge.cli import app
from nasforge.cli._common import run_app
from nasforge.data import open_data
from nasforge.errors import InvalidInputError
from nasforge.experiments import EXPORT_FORMATS
from nasforge.experiments.export._int8 import Int8Format
from nasforge.experiments.export._quantize import calibration_images
from nasforge.experiments.export._quantize import quantize_pt2e
from nasforge.experiments.export._quantize import top1
from nasforge.search_spaces import get_space

pytest.importorskip("executorch")


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 10)).eval()


def test_int8_formats_are_registered_with_their_fp32_twins() -> None:
    for name, fp32 in (("tflite-int8", "tflite"), ("executorch-int8", "executorch")):
        fmt = EXPORT_FORMATS.get(name)
        assert isinstance(fmt, Int8Format) and fmt.fp32_format == fp32
        assert EXPORT_FORMATS.get(fp32).suffix == fmt.suffix


def test_quantized_model_follows_fp32_within_a_few_quantization_steps() -> None:
    net = _net()
    gen = torch.Generator().manual_seed(1)
    images = [torch.randn(1, 3, 8, 8, generator=gen) for _ in range(16)]
    fmt = EXPORT_FORMATS.get("executorch-int8")
    assert isinstance(fmt, Int8Format)
    q = quantize_pt2e(net, images[0], images, fmt.quantizer(), name="xnnpack")
    assert q.calibration == {"images": 16, "input_size": 8, "quantizer": "xnnpack"}
    q.eval()  # exported graphs refuse eval(); the wrapper keeps the flag only
    x = torch.randn(1, 3, 8, 8, generator=gen)
    with torch.no_grad():
        ref, out = net(x), q(x)
    scale = float(ref.abs().max())
    assert float((out - ref).abs().max()) < 0.2 * scale + 1e-3
    assert not torch.equal(out, ref)  # it is quantized, not the fp32 graph


def test_a_calibration_set_of_0_images_is_refused() -> None:
    net = _net()
    fmt = EXPORT_FORMATS.get("executorch-int8")
    assert isinstance(fmt, Int8Format)
    with pytest.raises(InvalidInputError, match="0 images"):
        quantize_pt2e(net, torch.randn(1, 3, 8, 8), [], fmt.quantizer())
    data = open_data("synthetic:16", 16, 0)
    with pytest.raises(InvalidInputError, match="0 images"):
        calibration_images(data, 8, 0)


def test_calibration_images_and_top1_run_at_the_deployment_shape() -> None:
    data = open_data("synthetic:32", 16, 0)
    images = calibration_images(data, 12, 2, batch_size=4)
    assert len(images) == 8 and all(x.shape == (1, 3, 12, 12) for x in images)
    seen: list[tuple[int, ...]] = []

    def run(x: np.ndarray) -> np.ndarray:
        seen.append(x.shape)
        return np.eye(10, dtype=np.float32)[[0]]

    acc, n = top1(run, data, 12)
    assert n == len(seen) > 0 and set(seen) == {(1, 3, 12, 12)} and 0.0 <= acc <= 1.0


def test_cli_calibration_set_of_0_images_is_one_line_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arch = tmp_path / "a.yaml"
    arch.write_text(get_space("elasticvit").min_arch().to_yaml())
    for extra in (["--calib-batches", "0", "--data", "synthetic:16"], []):
        capsys.readouterr()
        code = run_app(app, ["export", str(arch), "--format", "executorch-int8", "--out",
                             str(tmp_path / "x"), "--input-size", "32", *extra])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1, err
        assert ("calib-batches" in err) or ("--data" in err), err


@pytest.mark.slow
def test_executorch_int8_export_of_a_model_reports_top1_against_fp32(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nasforge.supernet.static import build_static
    from nasforge.supernet.training.finetune import write_static_model

    space = get_space("ofa_mbv3")
    arch = space.min_arch()
    torch.manual_seed(0)
    model = build_static(space, arch, num_classes=10).eval()
    folder = tmp_path / "m"
    write_static_model(folder, model, arch, 10, {
        "input_size": 32, "data": {"spec": "synthetic:40", "input_size": 32,
                                   "resolution_scale": None, "seed": 0,
                                   "loader": {"workers": 0}}})
    (folder / "arch.yaml").write_text(arch.to_yaml())
    capsys.readouterr()
    code = run_app(app, ["export", str(folder / "arch.yaml"), "--model", str(folder),
                         "--format", "executorch-int8", "--out", str(tmp_path / "x"),
                         "--calib-batches", "1", "--runs", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "int8: top-1" in out and "vs fp32" in out


def test_docstring_examples_run() -> None:
    import doctest

    from nasforge.experiments.export import _int8

    result = doctest.testmod(_int8, verbose=False)
    assert result.attempted > 0 and result.failed == 0
