"""Export: ONNX / TorchScript / safetensors files match PyTorch, load and run; ``nas export``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from nasforge.cli._app import app
from nasforge.cli._common import run_app
from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidArchitectureError
from nasforge.errors import UnknownNameError
from nasforge.experiments import ExportVerificationError
from nasforge.experiments import export_model
from nasforge.experiments import export_name
from nasforge.experiments import load_arch_config
from nasforge.experiments.export.checks import fixed_input
from nasforge.search_spaces import SPACES
from nasforge.search_spaces import get_space
from nasforge.search_spaces.arch import Arch
from nasforge.search_spaces.base import SearchSpace
from nasforge.supernet.static import build_static

ort = pytest.importorskip("onnxruntime")

TOL = 1e-4
SMALL = 32  # every vision space runs at 32 px (transformer stages see 2x2 and 1x1 maps)
# language spaces export through export_language_model (tests/experiments/test_export_lm.py)
VISION_SPACES = [n for n in SPACES.list()
                 if get_space(n).has_model and get_space(n).modality == "image"]
# mixes that put every attention kind in some stage (the max arch is all-softmax)
EFFICIENT_MIXES = (("window", "linear", "softmax", "window"),
                   ("linear", "window", "window", "linear"))


def _arch(space: SearchSpace, tag: str) -> Arch:
    if tag == "min":
        return space.min_arch()
    if tag == "max":
        return space.max_arch()
    i = int(tag[-1])
    arch = space.sample(np.random.default_rng(100 + i))
    if space.name == "elasticvit_efficient" and i < len(EFFICIENT_MIXES):
        arch = arch.replace(attention=EFFICIENT_MIXES[i])
    space.validate(arch)
    return arch


def _model(space: SearchSpace, arch: Arch, seed: int = 0) -> nn.Module:
    """A static model with non-trivial BN / LayerNorm statistics and bias tables.

    Freshly initialised BN (mean 0, var 1, identity affine) and a near-zero bias table would let
    a wrongly exported normalisation or bias gather go unnoticed; logits are also tiny then.
    """
    torch.manual_seed(seed)
    model = build_static(space, arch, num_classes=10).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(0.2 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
            if isinstance(m, nn.modules.batchnorm._BatchNorm | nn.LayerNorm):
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=g))
        for name, p in model.named_parameters():
            if name.endswith("attention_bias"):
                p.copy_(torch.randn(p.shape, generator=g))
        # logits of a few units, as a trained net gives, not ~0.05: 1e-4 then means ~1e-5 relative
        classifier = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        classifier.weight.mul_(100.0)
        # a deep cell network whose perturbed BN variances compound (NB201 skip/pool cells)
        # can reach logits of 1e5, where float32 rounding alone exceeds TOL: bring those back
        # to a few units as well (a no-op for the spaces whose logits are already that size)
        peak = float(model(fixed_input(SMALL, seed=7)).abs().max())
        if peak > 50.0:
            classifier.weight.mul_(5.0 / peak)
            classifier.bias.mul_(5.0 / peak)
    return model


def _check_onnx_runs(path: Path, size: int, classes: int = 10) -> None:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    assert inp.shape == [1, 3, size, size], inp.shape
    out = sess.run(None, {inp.name: fixed_input(size, seed=7).numpy()})[0]
    assert out.shape == (1, classes) and np.isfinite(out).all(), out


def _case(space: str, tag: str) -> object:
    # the large hybrid ViT archs take tens of seconds each to trace twice on 2 shared cores
    slow = space.startswith("elasticvit") and tag != "min"
    return pytest.param(space, tag, id=f"{space}-{tag}",
                        marks=[pytest.mark.slow] if slow else [])


CASES = [_case(s, t) for s in VISION_SPACES for t in ("min", "max", "rand0", "rand1", "rand2")]


@pytest.mark.parametrize(("space_name", "tag"), CASES)
def test_onnx_and_torchscript_match_pytorch(space_name: str, tag: str, tmp_path: Path) -> None:
    space = get_space(space_name)
    arch = _arch(space, tag)
    model = _model(space, arch)
    for fmt in ("onnx", "torchscript"):
        r = export_model(model, arch, space, fmt, tmp_path, input_size=SMALL, runs=1, warmup=0,
                         tolerance=TOL, rtol=0.0)
        assert r.ok and r.max_abs_diff <= TOL, r.summary()
        assert r.model_path.is_file() and r.config_path.is_file()
        assert r.latency_ms > 0 and r.num_classes == 10 and r.input_size == SMALL
    _check_onnx_runs(tmp_path / f"{space_name}_{arch.arch_id}.onnx", SMALL)
    assert not model.training


def _true_res_arch(space: SearchSpace) -> Arch:
    arch = space.min_arch()
    if space.name == "elasticvit_efficient":
        # 176 px: T1 runs on an 11x11 map, so 7x7 windows pad to 14x14 and padded keys are
        # masked with -inf; T3 sees an odd map (avg-pool shortcut with padding)
        arch = arch.replace(resolution=176, attention=("window", "window", "linear", "softmax"))
        space.validate(arch)
    return arch


@pytest.mark.parametrize("space_name", VISION_SPACES)
def test_true_resolution_all_formats(space_name: str, tmp_path: Path) -> None:
    space = get_space(space_name)
    arch = _true_res_arch(space)
    model = _model(space, arch, seed=1)
    res = arch.resolution  # type: ignore[attr-defined]
    for fmt in ("onnx", "torchscript", "safetensors"):
        r = export_model(model, arch, space, fmt, tmp_path, runs=1, warmup=0, tolerance=TOL,
                         rtol=0.0)
        assert r.ok and r.input_size == res, r.summary()
    _check_onnx_runs(tmp_path / f"{space_name}_{arch.arch_id}.onnx", res)
    cfg = load_arch_config(tmp_path / f"{space_name}_{arch.arch_id}.yaml")
    assert cfg.arch == arch and cfg.num_classes == 10 and cfg.input_size == res
    assert cfg.extra["format"] == "safetensors"  # the last export of the same stem wins


def test_safetensors_reloads_into_fresh_model(tmp_path: Path) -> None:
    space = get_space("elasticvit_efficient")
    arch = _arch(space, "rand0")
    model = _model(space, arch)
    r = export_model(model, arch, space, "safetensors", tmp_path, input_size=SMALL, runs=1)
    assert r.max_abs_diff == 0.0
    from safetensors.torch import load_file

    fresh = load_arch_config(r.config_path).build_model().eval()
    fresh.load_state_dict(load_file(str(r.model_path)), strict=True)
    x = fixed_input(SMALL, seed=3)
    with torch.inference_mode():
        assert torch.equal(fresh(x), model(x))


def test_names_mode_and_errors(tmp_path: Path) -> None:
    space = get_space("elasticvit")
    arch = space.min_arch()
    assert export_name(arch) == f"elasticvit_{arch.arch_id}"
    assert export_name(arch, "pixel7", 24.63, 71.28) == "pixel7_lat@24.6ms_top1@71.3"
    assert export_name(arch, "pixel7", 24.63) == f"elasticvit_{arch.arch_id}"
    model = build_static(space, arch, num_classes=10).train()
    r = export_model(model, arch, space, "onnx", tmp_path, input_size=SMALL, runs=1,
                     device="pixel7", device_ms=24.63, accuracy=71.28)
    assert r.model_path.name == "pixel7_lat@24.6ms_top1@71.3.onnx"
    assert model.training  # mode restored
    with pytest.raises(UnknownNameError, match="did you mean 'onnx'"):
        export_model(model, arch, space, "onxx", tmp_path)
    with pytest.raises(InvalidArchitectureError, match="widths"):
        export_model(model, arch.replace(widths=(16, 16, 16, 48, 80, 144, 999)), space, "onnx",
                     tmp_path)
    with pytest.raises(IncompatibleComponentsError, match="tabular"):
        nb = get_space("nasbench201")
        export_model(model, nb.min_arch(), nb, "onnx", tmp_path)
    with pytest.raises(ExportVerificationError, match="tolerance"):
        _broken_export(tmp_path)


def _broken_export(tmp_path: Path) -> None:
    """A model whose traced graph differs from its eager forward fails verification."""

    class Drifting(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner, self.calls = inner, 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            return self.inner(x) + self.calls  # traced once, constant baked in

    space = get_space("ofa_mbv3")
    arch = space.min_arch()
    export_model(Drifting(build_static(space, arch, 10)), arch, space, "torchscript", tmp_path,
                 input_size=SMALL, runs=1, warmup=0)


# ---- CLI ---------------------------------------------------------------------------------------
def _arch_file(tmp_path: Path, arch: Arch) -> Path:
    p = tmp_path / "arch.yaml"
    p.write_text(arch.to_yaml())
    return p


@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "safetensors"])
def test_cli_export_writes_files(fmt: str, tmp_path: Path) -> None:
    space = get_space("ofa_mbv3") if "ofa_mbv3" in VISION_SPACES else get_space("elasticvit")
    arch = space.min_arch()
    out = tmp_path / "out"
    rc = run_app(app, ["export", str(_arch_file(tmp_path, arch)), "--format", fmt, "--out",
                       str(out), "--input-size", "64", "--num-classes", "7", "--runs", "2"])
    assert rc == 0
    stem = f"{space.name}_{arch.arch_id}"
    suffix = {"onnx": ".onnx", "torchscript": ".pt", "safetensors": ".safetensors"}[fmt]
    assert (out / f"{stem}{suffix}").is_file()
    cfg = load_arch_config(out / f"{stem}.yaml")
    assert cfg.arch == arch and cfg.num_classes == 7 and cfg.input_size == 64
    assert cfg.extra["verification"]["ok"] is True
    # an export config is itself a valid input: re-export from it
    assert run_app(app, ["export", str(out / f"{stem}.yaml"), "--format", "onnx", "--out",
                         str(tmp_path / "again"), "--runs", "1"]) == 0
    assert load_arch_config(tmp_path / "again" / f"{stem}.yaml").input_size == 64


def test_cli_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    space = get_space("elasticvit")
    good = _arch_file(tmp_path, space.min_arch())
    bad_arch = tmp_path / "bad.yaml"
    bad_arch.write_text(space.min_arch().to_yaml().replace("resolution: 128", "resolution: 129"))
    malformed = tmp_path / "malformed.yaml"
    malformed.write_text("space: elasticvit\nwidths: [16, 16\n")
    nb = tmp_path / "nb.yaml"
    nb.write_text(get_space("nasbench201").min_arch().to_yaml())
    junk_ckpt = tmp_path / "junk.ckpt"
    junk_ckpt.write_bytes(b"not a checkpoint")
    cases = [
        (["export", str(tmp_path / "missing.yaml")], "cannot read"),
        (["export", str(malformed)], "malformed"),
        (["export", str(bad_arch)], "resolution"),
        (["export", str(good), "--format", "coreml"], "unknown export format"),
        (["export", str(nb)], "tabular"),
        (["export", str(good), "--supernet", str(junk_ckpt)], "checkpoint"),
        (["export", str(good), "--supernet", str(tmp_path / "none.ckpt")], "not found"),
    ]
    for argv, needle in cases:
        assert run_app(app, [*argv, "--out", str(tmp_path / "o")]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert needle in err and "Traceback" not in err and len(err.splitlines()) == 1, err


def test_cli_export_from_supernet_with_device(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    supernet_mod = pytest.importorskip("nasforge.supernet")
    from nasforge.supernet.checkpoint import write_checkpoint

    name = "ofa_mbv3" if "ofa_mbv3" in VISION_SPACES else "elasticvit"
    space = get_space(name)
    arch = _arch(space, "rand0")
    torch.manual_seed(0)
    supernet = supernet_mod.build_supernet(space, 10)
    ckpt = write_checkpoint(tmp_path / "run" / "last.ckpt", model=supernet, step=1, config={
        "space": name, "num_classes": 10, "input_size": 32, "data": "synthetic"})
    out = tmp_path / "out"
    rc = run_app(app, ["export", str(_arch_file(tmp_path, arch)), "--supernet", str(ckpt.parent),
                       "--format", "onnx", "--out", str(out), "--device", "pixel7",
                       "--top1", "71.3", "--calib-batches", "2", "--input-size", "64",
                       "--runs", "1"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    files = sorted(p.name for p in out.iterdir())
    from nasforge.hardware_models import get_device

    predicted = get_device("pixel7").predict(arch)
    assert files == [f"pixel7_lat@{predicted:.1f}ms_top1@71.3.onnx",
                     f"pixel7_lat@{predicted:.1f}ms_top1@71.3.yaml"], files
    cfg = load_arch_config(out / files[1])
    assert cfg.arch == arch and cfg.num_classes == 10
    src = cfg.extra["source"]
    assert src["bn_recalibration"] == {"data": "synthetic", "batches": 2, "batch_size": 64,
                                       "input_size": 32}
    assert cfg.extra["device"]["name"] == "pixel7" and cfg.extra["device"]["predicted_ms"] > 0
    assert "pixel7" in printed and "onnx" in printed
    # the exported weights are the extracted subnet's, BN statistics recalibrated
    extracted = supernet.eval().extract(arch)
    exported = ort.InferenceSession(str(out / files[0]), providers=["CPUExecutionProvider"])
    x = fixed_input(64, seed=5)
    got = exported.run(None, {"input": x.numpy()})[0]
    with torch.inference_mode():
        stale = extracted.eval()(x).numpy()
    assert np.isfinite(got).all() and not np.allclose(got, stale, atol=1e-6)


def test_cli_export_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    space = get_space("elasticvit")
    arch = space.min_arch()
    capsys.readouterr()
    assert run_app(app, ["export", str(_arch_file(tmp_path, arch)), "--format", "torchscript",
                         "--out", str(tmp_path / "o"), "--input-size", "64", "--runs", "1",
                         "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["arch_id"] == arch.arch_id and result["fmt"] == "torchscript"
    assert result["ok"] is True and Path(result["model_path"]).is_file()
