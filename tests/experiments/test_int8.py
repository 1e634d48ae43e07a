"""Issue 24, int8: post-training quantization (PT2E) on a calibration set, the int8 formats,
and the calibration set of 0 images refused in one line, exit 2."""

from __future__ import annotations

import copy
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
from nasforge.experiments.export._int8 import INT8_STEPS
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
    assert {k: q.calibration[k] for k in ("images", "input_size", "quantizer")} == {
        "images": 16, "input_size": 8, "quantizer": "xnnpack"}
    assert q.calibration["output_step"] > 0  # the logits are quantized
    q.eval()  # exported graphs refuse eval(); the wrapper keeps the flag only
    x = torch.randn(1, 3, 8, 8, generator=gen)
    with torch.no_grad():
        ref, out = net(x), q(x)
    scale = float(ref.abs().max())
    assert float((out - ref).abs().max()) < 0.2 * scale + 1e-3
    assert not torch.equal(out, ref)  # it is quantized, not the fp32 graph


class _Head(nn.Module):
    """The patterns the int8 exports of elasticvit tripped on, tiny: a conv stem, the MBConv
    shortcut's average pool into a 1x1 conv, and ElasticViT's head (linear -> transpose ->
    BatchNorm1d -> hardswish -> mean -> linear)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.short = nn.Conv2d(8, 8, 1)
        self.fc0 = nn.Linear(8, 16)
        self.bn = nn.BatchNorm1d(16)
        self.act = nn.Hardswish()
        self.classifier = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.stem(x))
        y = self.short(torch.nn.functional.avg_pool2d(y, 2))
        t = self.fc0(y.flatten(2).transpose(1, 2))
        return self.classifier(self.act(self.bn(t.transpose(1, 2))).mean(dim=2))


def _head() -> nn.Module:
    torch.manual_seed(0)
    net = _Head()
    with torch.no_grad():  # BN statistics that are not the identity
        net.bn.running_mean.uniform_(-1, 1)
        net.bn.running_var.uniform_(0.5, 2)
        net.bn.weight.uniform_(0.5, 1.5)
    return net.eval()


def test_linear_batchnorm_is_folded_exactly() -> None:
    from nasforge.experiments.export._qgraph import fold_linear_batchnorm

    net, x = _head(), torch.randn(2, 3, 8, 8)
    graph = torch.export.export(net, (x,)).module()
    assert fold_linear_batchnorm(graph) == 1
    assert not any("batch_norm" in str(n.target) for n in graph.graph.nodes)
    with torch.no_grad():
        torch.testing.assert_close(graph(x), net(x), rtol=1e-5, atol=1e-6)


def test_average_pool_keeps_its_input_quantization_for_litert() -> None:
    pytest.importorskip("litert_torch")
    fmt = EXPORT_FORMATS.get("tflite-int8")
    assert isinstance(fmt, Int8Format)
    gen = torch.Generator().manual_seed(1)
    images = [torch.randn(1, 3, 8, 8, generator=gen) for _ in range(4)]
    q = quantize_pt2e(_head(), images[0], images, fmt.quantizer(), fold_quantize=False)
    pool = next(n for n in q.quantized.graph.nodes if n.target == torch.ops.aten.avg_pool2d.default)
    (quant,) = [u for u in pool.users if "quantize_per_tensor" in str(u.target)]
    dequant = pool.args[0]
    assert "dequantize_per_tensor" in str(dequant.target)
    assert quant.args[1:3] == dequant.args[1:3]  # scale and zero point shared


@pytest.mark.parametrize("fmt_name", ["executorch-int8", "tflite-int8"])
def test_int8_export_lowers_the_vit_head_and_checks_against_the_int8_program(
        fmt_name: str, tmp_path: Path) -> None:
    from nasforge.experiments import export_model
    from nasforge.experiments.export._int8 import int8_tolerance

    if fmt_name == "tflite-int8":
        pytest.importorskip("litert_torch")
    space = get_space("ofa_mbv3")  # any vision arch: the model is what is exported
    fmt = EXPORT_FORMATS.get(fmt_name)
    assert isinstance(fmt, Int8Format)
    gen = torch.Generator().manual_seed(1)
    images = [torch.randn(1, 3, 8, 8, generator=gen) for _ in range(8)]
    q = quantize_pt2e(_head(), images[0], images, fmt.quantizer(),
                      fold_quantize=fmt.fold_quantize)
    assert q.calibration["folded_batchnorms"] == 1
    assert q.calibration["ops_left_fp32"].get("mean.dim") == 1  # listed, not failed
    atol, rtol = int8_tolerance(q.calibration)
    r = export_model(q, space.min_arch(), space, fmt_name, tmp_path, input_size=8, runs=2,
                     tolerance=atol, rtol=rtol, strict=False)
    assert r.ok, (r.max_abs_diff, r.tolerance)
    assert atol == pytest.approx(INT8_STEPS * q.calibration["output_step"]) and rtol == 0.0


class _WindowPad(nn.Module):
    """ElasticViT's window attention, tiny: tokens from an int8 linear, zero-padded to whole
    windows (3x3 -> 4x4, ``F.pad``) before the float attention matmul, then a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 1)
        self.q, self.k = nn.Linear(8, 8), nn.Linear(8, 8)
        self.head = nn.Linear(16 * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.stem(x).flatten(2).transpose(1, 2)  # (1, 9, 8)

        def windows(u: torch.Tensor) -> torch.Tensor:
            m = torch.nn.functional.pad(u.transpose(1, 2).reshape(1, 8, 3, 3), (0, 1, 0, 1))
            return m.reshape(1, 8, 16).transpose(1, 2)  # (1, 16, 8)

        attn = windows(self.q(t)) @ windows(self.k(t)).transpose(1, 2)
        return self.head(attn.flatten(1))


def _pad_images() -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return [torch.randn(1, 3, 3, 3, generator=gen) for _ in range(8)]


def test_zero_pad_keeps_its_input_quantization_for_executorch() -> None:
    fmt = EXPORT_FORMATS.get("executorch-int8")
    assert isinstance(fmt, Int8Format)
    torch.manual_seed(0)
    images = _pad_images()
    q = quantize_pt2e(_WindowPad().eval(), images[0], images, fmt.quantizer())
    pads = [n for n in q.quantized.graph.nodes if n.target == torch.ops.aten.pad.default]
    assert len(pads) == 2 and "pad.default" not in q.calibration["ops_left_fp32"]
    for pad in pads:
        (quant,) = [u for u in pad.users if "quantize_per_tensor" in str(u.target)]
        assert "dequantize_per_tensor" in str(pad.args[0].target)
        assert quant.args[1:3] == pad.args[0].args[1:3]  # scale and zero point shared


def test_executorch_int8_with_a_zero_pad_loads_and_passes_its_check(tmp_path: Path) -> None:
    """The pad XNNPACK refused (elasticvit_efficient random0 / random2: the ``.pte`` did not
    load, ``xnn_status_invalid_parameter``) loads and matches the int8 program."""
    from nasforge.experiments import export_model
    from nasforge.experiments.export._int8 import int8_tolerance
    from nasforge.hardware_models.profiling._executorch import lower_module
    from nasforge.hardware_models.profiling._executorch import method_call

    space = get_space("ofa_mbv3")  # any vision arch: the model is what is exported
    fmt = EXPORT_FORMATS.get("executorch-int8")
    assert isinstance(fmt, Int8Format)
    torch.manual_seed(0)
    net, images = _WindowPad().eval(), _pad_images()
    q = quantize_pt2e(net, images[0], images, fmt.quantizer())
    atol, rtol = int8_tolerance(q.calibration)
    assert rtol == 0.0  # the logits are quantized: the check counts steps
    r = export_model(q, space.min_arch(), space, "executorch-int8", tmp_path, input_size=3,
                     runs=2, tolerance=atol, rtol=rtol, strict=False)
    assert r.ok, (r.max_abs_diff, r.tolerance)
    # the cause: XNNPACK's quantizer alone leaves the pad fp32 and the lowered pad is refused
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        get_symmetric_quantization_config,
    )

    plain = quantize_pt2e(net, images[0], images, XNNPACKQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True)))
    assert plain.calibration["ops_left_fp32"].get("pad.default") == 2
    low = lower_module(torch.export.export(plain.quantized, (images[0],)), (images[0],))
    with pytest.raises(RuntimeError, match="load method"):
        method_call(low.content, 1)


class _Norm(nn.Module):
    """A pre-norm block, tiny: tokens -> LayerNorm -> linear, a residual add, a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 1)
        self.norm = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 8)
        self.head = nn.Linear(8, 10)
        with torch.no_grad():  # an affine part that is not the identity
            self.norm.weight.uniform_(0.5, 1.5)
            self.norm.bias.uniform_(-1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.stem(x).flatten(2).transpose(1, 2)
        t = t + self.fc(self.norm(t))
        return self.head(t.mean(1))


def test_layer_norm_of_the_int8_program_is_delegated_and_checks(tmp_path: Path) -> None:
    from nasforge.experiments import export_model
    from nasforge.experiments.export._executorch import delegation_report
    from nasforge.experiments.export._int8 import int8_tolerance
    from nasforge.hardware_models.profiling._executorch_prep import decompose_layer_norms

    space = get_space("ofa_mbv3")  # any vision arch: the model is what is exported
    fmt = EXPORT_FORMATS.get("executorch-int8")
    assert isinstance(fmt, Int8Format)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    images = [torch.randn(1, 3, 4, 4, generator=gen) for _ in range(8)]
    q = quantize_pt2e(_Norm().eval(), images[0], images, fmt.quantizer())
    # the residual add stays float32 (XNNPACK's int8 add rounds away from the PT2E program)
    assert q.calibration["ops_left_fp32"].get("add.Tensor") == 1
    graph = copy.deepcopy(q.quantized)
    assert decompose_layer_norms(graph) == 1
    with torch.no_grad():  # the same function (float rounding aside)
        torch.testing.assert_close(graph(images[1]), q(images[1]), rtol=0.0,
                                   atol=q.calibration["output_step"])
    atol, rtol = int8_tolerance(q.calibration)
    r = export_model(q, space.min_arch(), space, "executorch-int8", tmp_path, input_size=4,
                     runs=2, tolerance=atol, rtol=rtol, strict=False)
    assert r.ok, (r.max_abs_diff, r.tolerance)
    outside = delegation_report(r.model_path)["outside_delegate"]
    assert not any("layer_norm" in op for op in outside), outside
    assert any("layer_norm" in str(n.target) for n in q.quantized.graph.nodes)  # not mutated


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


@pytest.mark.slow
@pytest.mark.parametrize("fmt_name", ["executorch-int8", "tflite-int8"])
def test_int8_export_of_elasticvit_min_runs_and_lists_ops_left_fp32(
        fmt_name: str, tmp_path: Path) -> None:
    from nasforge.experiments import export_model
    from nasforge.experiments.export._int8 import int8_tolerance
    from nasforge.experiments.export.config import load_arch_config
    from nasforge.supernet.static import build_static

    if fmt_name == "tflite-int8":
        pytest.importorskip("litert_torch")
    space = get_space("elasticvit")
    arch = space.min_arch()
    torch.manual_seed(0)
    model = build_static(space, arch, num_classes=10).eval()
    fmt = EXPORT_FORMATS.get(fmt_name)
    assert isinstance(fmt, Int8Format)
    gen = torch.Generator().manual_seed(1)
    images = [torch.randn(1, 3, 16, 16, generator=gen) for _ in range(4)]
    q = quantize_pt2e(model, images[0], images, fmt.quantizer(),
                      fold_quantize=fmt.fold_quantize)
    atol, rtol = int8_tolerance(q.calibration)
    r = export_model(q, arch, space, fmt_name, tmp_path, input_size=16, runs=2,
                     tolerance=atol, rtol=rtol, strict=False,
                     extra={"int8_calibration": q.calibration})
    assert r.ok, (r.max_abs_diff, r.tolerance)
    cfg = load_arch_config(r.config_path)
    import yaml

    written = yaml.safe_load(r.config_path.read_text())
    assert cfg.arch == arch
    assert {"softmax.int", "matmul.default"} <= set(written["int8_calibration"]["ops_left_fp32"])


def test_docstring_examples_run() -> None:
    import doctest

    from nasforge.experiments.export import _int8
    from nasforge.experiments.export import _qgraph

    for module in (_int8, _qgraph):
        result = doctest.testmod(module, verbose=False)
        assert result.attempted > 0 and result.failed == 0
