"""Issue 26, class 2 (supernets): the numbers of a checkpoint are checked when it is loaded and
when it is used. Each bad file is a real run's checkpoint rewritten by the test (NaN / inf
tensors, another dtype, metadata out of range, the optimizer state stripped); each case ends in
one ``error:`` line, exit code 2, no traceback and nothing written."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from nasforge.errors import InvalidInputError
from nasforge.evaluation._supernet import SupernetAccuracyObjective
from nasforge.search_spaces import get_space
from nasforge.supernet.checkpoint import load_supernet
from tests._refusals import assert_one_line
from tests._refusals import invoke

TINY = ["--data", "synthetic:32", "--sampler", "uniform", "--input-size", "16",
        "--resolution-scale", "0.0625", "--batch-size", "4", "--accelerator", "cpu",
        "--no-progress", "--no-eval", "--set", "train.warmup_steps=1"]
STEPS = 2

Tensors = dict[str, torch.Tensor]
Rewrite = Callable[[Tensors, dict[str, Any]], None]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ckchecks") / "run"
    code, err = invoke(["train", "--out", str(out), "--steps", str(STEPS), *TINY])
    assert code == 0, err
    return out


@pytest.fixture(scope="module")
def arch_file(run: Path) -> Path:
    path = run.parent / "min.yaml"
    path.write_text(get_space("elasticvit").min_arch().to_yaml())
    return path


def _rewritten(run: Path, dst: Path, rewrite: Rewrite) -> Path:
    """A copy of the run folder whose ``last.ckpt`` went through ``rewrite(tensors, state)``."""
    shutil.copytree(run, dst)
    with safe_open(str(run / "last.ckpt"), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    state = json.loads(meta["nasforge"])
    rewrite(tensors, state)
    save_file(tensors, str(dst / "last.ckpt"), metadata={"nasforge": json.dumps(state)})
    return dst


def _all_nan(t: Tensors, s: dict[str, Any]) -> None:
    for k, v in t.items():
        if k.startswith("model.") and v.is_floating_point():
            t[k] = torch.full_like(v, float("nan"))


def _one_inf(t: Tensors, s: dict[str, Any]) -> None:
    name = next(k for k in t if k.startswith("model.") and k.endswith("running_var"))
    t[name] = t[name].clone()
    t[name][0] = float("inf")


def _float64(t: Tensors, s: dict[str, Any]) -> None:
    name = next(k for k in t if k.startswith("model.") and t[k].is_floating_point())
    t[name] = t[name].double()


def _config(key: str, value: Any) -> Rewrite:
    def rewrite(t: Tensors, s: dict[str, Any]) -> None:
        s["config"][key] = value
    return rewrite


def _step(value: Any) -> Rewrite:
    def rewrite(t: Tensors, s: dict[str, Any]) -> None:
        s["step"] = value
    return rewrite


def _position(t: Tensors, s: dict[str, Any]) -> None:
    s["extra"]["data_position"] = [0, -3]


EVAL_CASES: dict[str, tuple[Rewrite, tuple[str, ...]]] = {
    "all-NaN weights": (_all_nan, ("NaN or infinite",)),
    "one inf BN statistic": (_one_inf, ("NaN or infinite", "running_var")),
    "a float64 weight": (_float64, ("dtype torch.float64", "torch.float32")),
    "num_classes 1e9": (_config("num_classes", 1e9), ("config.num_classes", "1..100000")),
    "num_classes 0": (_config("num_classes", 0), ("config.num_classes = 0",)),
    "input_size negative": (_config("input_size", -16), ("config.input_size = -16",)),
    "resolution_scale NaN": (_config("resolution_scale", float("nan")),
                             ("config.resolution_scale = nan",)),
    "step -5": (_step(-5), ("step = -5", f"0..{STEPS}")),
    "step 1e9": (_step(10**9), ("step = 1000000000", f"0..{STEPS}")),
    "step a string": (_step("3"), ("step = '3'",)),
    "data position negative": (_position, ("extra.data_position = -3",)),
}


@pytest.mark.parametrize("case", list(EVAL_CASES))
def test_nas_eval_refuses_a_checkpoint_with_bad_numbers(
        case: str, run: Path, arch_file: Path, tmp_path: Path) -> None:
    rewrite, words = EVAL_CASES[case]
    bad = _rewritten(run, tmp_path / "bad", rewrite)
    result = tmp_path / "scores.csv"
    code, err = invoke(["eval", "--supernet", str(bad), "--arch", str(arch_file),
                         "--recal-batches", "1", "--batch-size", "8", "--csv", str(result),
                         "--accelerator", "cpu"])
    assert_one_line(code, err, str(bad / "last.ckpt"), *words)
    assert not result.exists()


def test_nas_search_refuses_a_nan_supernet(run: Path, tmp_path: Path) -> None:
    bad = _rewritten(run, tmp_path / "bad", _all_nan)
    out = tmp_path / "search"
    code, err = invoke(["search", "--space", "elasticvit", "--device", "pixel7", "--supernet",
                         str(bad), "--budget", "4", "--out", str(out), "-q"])
    assert_one_line(code, err, "NaN or infinite")
    assert not (out / "best.yaml").exists()


def _strip_moments(t: Tensors, s: dict[str, Any]) -> None:
    for k in [k for k in t if k.startswith("optim.")]:
        del t[k]


def _strip_optimizer(t: Tensors, s: dict[str, Any]) -> None:
    _strip_moments(t, s)
    del s["optimizer"]


def _nan_moment(t: Tensors, s: dict[str, Any]) -> None:
    name = next(k for k in t if k.endswith("exp_avg_sq"))
    t[name] = torch.full_like(t[name], float("nan"))


RESUME_CASES: dict[str, tuple[Rewrite, tuple[str, ...]]] = {
    "moments stripped": (_strip_moments, ("optim.* tensors", "--reset-optimizer")),
    "optimizer state stripped": (_strip_optimizer, ("optimizer state", "--reset-optimizer")),
    "a NaN optimizer moment": (_nan_moment, ("NaN or infinite", "exp_avg_sq")),
    "step beyond the run": (_step(10**9), ("step = 1000000000", f"0..{STEPS}")),
}


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_resume_refuses_a_bad_checkpoint(case: str, run: Path, tmp_path: Path) -> None:
    rewrite, words = RESUME_CASES[case]
    bad = _rewritten(run, tmp_path / "bad", rewrite)
    before = _files(bad)
    code, err = invoke(["train", "--out", str(bad), "--steps", str(STEPS + 1), *TINY,
                         "--resume"])
    assert_one_line(code, err, *words)
    assert _files(bad) == before


def test_reset_optimizer_resumes_a_stripped_checkpoint_with_a_warning(
        run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad = _rewritten(run, tmp_path / "bad", _strip_optimizer)
    with caplog.at_level("WARNING"):
        code, err = invoke(["train", "--out", str(bad), "--steps", str(STEPS + 1), *TINY,
                             "--resume", "--reset-optimizer"])
    assert code == 0, err
    assert any("fresh optimizer" in r.getMessage() for r in caplog.records)
    with safe_open(str(bad / "last.ckpt"), framework="pt") as f:
        assert json.loads(f.metadata()["nasforge"])["step"] == STEPS + 1
        assert any(k.startswith("optim.") for k in f.keys())  # noqa: SIM118


def test_reset_optimizer_needs_resume(tmp_path: Path) -> None:
    out = tmp_path / "new"
    code, err = invoke(["train", "--out", str(out), "--steps", "1", *TINY,
                         "--reset-optimizer"])
    assert_one_line(code, err, "--reset-optimizer", "--resume")
    assert not out.exists()


def test_a_supernet_with_nan_weights_is_not_scored_in_memory(run: Path) -> None:
    from nasforge.data import open_data

    model, _ = load_supernet(run)
    with torch.no_grad():
        next(iter(model.parameters())).fill_(float("nan"))
    data = open_data("synthetic:32", 16, 0, resolution_scale=0.0625)
    with pytest.raises(InvalidInputError, match="NaN or infinite") as e:
        SupernetAccuracyObjective(model, data, checkpoint="mem")
    assert "\n" not in str(e.value)
