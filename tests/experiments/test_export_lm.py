"""Export of language models: ONNX / TorchScript (and TFLite, slow) files whose logits match
PyTorch's; ``nas export`` of an ``elastic_lm`` arch from a supernet checkpoint and of a HAT
SubTransformer; bad requests exit 2 in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nasforge.cli._app import app
from nasforge.cli._common import run_app
from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.experiments import export_model
from nasforge.experiments import load_arch_config
from nasforge.experiments.export import export_language_model
from nasforge.experiments.export._lm import language_inputs
from nasforge.experiments.export._lm import language_twin
from nasforge.search_spaces import get_space
from nasforge.supernet import ElasticLMSupernet
from nasforge.supernet import HATSupernet
from nasforge.supernet.checkpoint import write_checkpoint
from nasforge.testing.contracts import perturb_supernet
from tests.supernet.test_lm_supernets import tiny_hat_space

ort = pytest.importorskip("onnxruntime")


def _lm_twin(seed: int = 0) -> tuple[torch.nn.Module, object, object]:
    space = get_space("elastic_lm")
    torch.manual_seed(seed)
    net = ElasticLMSupernet(space, vocab_size=48)
    perturb_supernet(net, seed)
    arch = space.sample(np.random.default_rng(seed))
    return net.extract(arch).eval(), arch, space


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_lm_and_hat_exports_match_pytorch(fmt: str, tmp_path: Path) -> None:
    model, arch, space = _lm_twin()
    r = export_language_model(model, arch, space, fmt, tmp_path, seq_len=24, runs=1)  # type: ignore[arg-type]
    assert r.ok and r.model_path.is_file() and r.num_classes == 48 and r.input_size == 24
    assert r.inputs == "tokens (1, 24)"
    cfg = load_arch_config(r.config_path)
    assert cfg.arch == arch and cfg.extra["verification"]["ok"] is True
    hat_space = tiny_hat_space("hat_iwslt14deen")
    torch.manual_seed(1)
    hat = HATSupernet(hat_space)
    perturb_supernet(hat, 1)
    harch = hat_space.sample(np.random.default_rng(2))
    twin = hat.extract(harch).eval()
    r = export_language_model(twin, harch, hat_space, fmt, tmp_path, seq_len=6, runs=1)
    assert r.ok and r.num_classes == 30 and r.inputs == "src (1, 6), tgt_in (1, 6)"


def test_onnx_file_runs_on_other_tokens(tmp_path: Path) -> None:
    """The file is the model, not a recording of one input: new token ids, same logits."""
    model, arch, space = _lm_twin(3)
    r = export_language_model(model, arch, space, "onnx", tmp_path, seq_len=16, runs=1)  # type: ignore[arg-type]
    sess = ort.InferenceSession(str(r.model_path), providers=["CPUExecutionProvider"])
    x = language_inputs(model, arch, space, 16, seed=9)["tokens"]  # type: ignore[arg-type]
    with torch.inference_mode():
        want = model(x).numpy()
    got = sess.run(None, {"tokens": x.numpy()})[0]
    assert np.abs(got - want).max() <= 1e-4


def test_refusals(tmp_path: Path) -> None:
    model, arch, space = _lm_twin()
    with pytest.raises(InvalidInputError, match="safetensors"):
        export_language_model(model, arch, space, "safetensors", tmp_path)  # type: ignore[arg-type]
    with pytest.raises(IncompatibleComponentsError, match="language space"):
        export_model(model, arch, space, "onnx", tmp_path)  # type: ignore[arg-type]


def test_cli_export_lm_from_supernet_checkpoint(tmp_path: Path) -> None:
    space = get_space("elastic_lm")
    torch.manual_seed(0)
    net = ElasticLMSupernet(space, vocab_size=40)
    perturb_supernet(net, 0)
    ckpt = write_checkpoint(tmp_path / "run" / "last.ckpt", model=net, step=3, config={
        "space": "elastic_lm", "num_classes": 40, "input_size": 64, "data": "text:x"})
    arch = space.sample(np.random.default_rng(4))
    arch_file = tmp_path / "arch.yaml"
    arch_file.write_text(arch.to_yaml())
    out = tmp_path / "out"
    rc = run_app(app, ["export", str(arch_file), "--supernet", str(ckpt), "--format", "onnx",
                       "--out", str(out), "--input-size", "20", "--runs", "1"])
    assert rc == 0
    cfg = load_arch_config(out / f"elastic_lm_{arch.arch_id}.yaml")
    assert cfg.extra["source"] == {"checkpoint": str(ckpt), "step": 3}
    sess = ort.InferenceSession(str(out / f"elastic_lm_{arch.arch_id}.onnx"),
                                providers=["CPUExecutionProvider"])
    x = torch.randint(0, 40, (1, 20), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        want = net.eval().extract(arch)(x).numpy()
    assert np.abs(sess.run(None, {"tokens": x.numpy()})[0] - want).max() <= 1e-4


def test_cli_export_hat_random_init_and_bad_format(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    space = get_space("hat_iwslt14deen")
    arch_file = tmp_path / "arch.yaml"
    arch_file.write_text(space.min_arch().to_yaml())
    rc = run_app(app, ["export", str(arch_file), "--format", "torchscript", "--out",
                       str(tmp_path / "o"), "--num-classes", "50", "--input-size", "8",
                       "--runs", "1"])
    assert rc == 0
    assert "src (1, 8), tgt_in (1, 8)" in capsys.readouterr().out
    rc = run_app(app, ["export", str(arch_file), "--format", "safetensors", "--out",
                       str(tmp_path / "o2"), "--num-classes", "50"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "safetensors" in err and len(err.splitlines()) == 1, err


@pytest.mark.slow
def test_tflite_lm_and_hat(tmp_path: Path) -> None:
    pytest.importorskip("litert_torch")
    model, arch, space = _lm_twin()
    r = export_language_model(model, arch, space, "tflite", tmp_path, seq_len=16, runs=1)  # type: ignore[arg-type]
    assert r.ok, r.summary()
    hs = tiny_hat_space("hat_wmt14ende")
    torch.manual_seed(2)
    twin = language_twin(hs, hs.min_arch())
    r = export_language_model(twin, hs.min_arch(), hs, "tflite", tmp_path, seq_len=6, runs=1)
    assert r.ok, r.summary()
