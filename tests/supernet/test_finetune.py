"""Issue 24, ``nas finetune``: a found subnet trained alone from its inherited weights through
the supernet trainer; the static model it writes; ``kill -9`` + ``--resume`` is bitwise; bad
input is one line, exit 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from nasforge.cli import app
from nasforge.cli._common import run_app
from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.search_spaces import get_space
from nasforge.supernet.training.finetune import finetune_recipe_from_dict
from nasforge.supernet.training.finetune import load_finetune_recipe
from nasforge.supernet.training.finetune import read_static_model
from nasforge.supernet.training.samplers import create_sampler

REPO = Path(__file__).resolve().parents[2]
# the smallest real supernet run: 16 px images, every subnet at resolution / 16 px, batch 4
TRAIN = ["train", "--space", "elasticvit", "--data", "synthetic:32", "--sampler", "uniform",
         "--input-size", "16", "--resolution-scale", "0.0625", "--batch-size", "4",
         "--steps", "2", "--accelerator", "cpu", "--no-progress", "--no-eval",
         "--set", "train.warmup_steps=1", "--set", "loader.workers=0"]
TUNE = ["--set", "train.batch_size=4", "--set", "loader.workers=0", "--set",
        "train.warmup_steps=1", "--accelerator", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def supernet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sn")
    assert run_app(app, [*TRAIN, "--out", str(out)]) == 0
    return out / "last.ckpt"


@pytest.fixture(scope="module")
def arch_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    space = get_space("elasticvit")
    path = tmp_path_factory.mktemp("arch") / "a.yaml"
    path.write_text(space.sample(np.random.default_rng(3)).to_yaml())
    return path


def _one_line_error(capsys: pytest.CaptureFixture[str], *needles: str) -> None:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:"), err
    for n in needles:
        assert n in err, err


def test_shipped_recipes_name_their_spaces_and_a_foreign_space_is_refused() -> None:
    quick, ofa = load_finetune_recipe("finetune_quick"), load_finetune_recipe("finetune_ofa")
    assert quick.recipe.sampler == ofa.recipe.sampler == "subnet"
    assert ofa.spaces == ("ofa_mbv3",) and ofa.recipe.train.epochs == 25
    quick.check_space("elasticvit")
    with pytest.raises(IncompatibleComponentsError, match="written for spaces ofa_mbv3"):
        ofa.check_space("elasticvit")
    with pytest.raises(InvalidInputError, match="unknown section"):
        finetune_recipe_from_dict({"trian": {}})


def test_the_subnet_sampler_trains_one_subnet_and_round_trips_its_state() -> None:
    space = get_space("elasticvit")
    arch = space.sample(np.random.default_rng(0))
    s = create_sampler("subnet", space, np.random.default_rng(0), arch=arch.to_dict())
    assert [(i.arch, i.role) for i in s.sample()] == [(arch, "subnet")] == \
        [(i.arch, i.role) for i in s.sample()]
    again = create_sampler("subnet", space, np.random.default_rng(1), arch=arch.to_dict())
    again.load_state_dict(s.state_dict())
    other = create_sampler("subnet", space, np.random.default_rng(0),
                           arch=space.min_arch().to_dict())
    with pytest.raises(InvalidInputError):
        other.load_state_dict(s.state_dict())


def test_finetune_trains_the_subnet_alone_and_writes_a_static_model(
        supernet: Path, arch_file: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ft"
    capsys.readouterr()
    assert run_app(app, ["finetune", str(arch_file), "--supernet", str(supernet), "--out",
                         str(out), "--steps", "2", *TUNE]) == 0
    assert "top-1" in capsys.readouterr().out
    meta = json.loads((out / "model.json").read_text())
    tuned = read_static_model(out)
    arch = get_space("elasticvit").arch_from_dict(meta["arch"])
    assert tuned.arch == arch and meta["input_size"] == round(arch.resolution / 16)
    assert 0.0 <= meta["top1"] <= 1.0 and 0.0 <= meta["inherited_top1"] <= 1.0
    # trained alone: the subnet's slices moved, every weight no subnet of it uses did not
    before = {k: v for k, v in load_file(str(supernet)).items() if k.startswith("model.")}
    after = {k: v for k, v in load_file(str(out / "last.ckpt")).items()
             if k.startswith("model.")}
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert moved, "fine-tuning changed no weight"
    head = "model.head" if any(k.startswith("model.head") for k in before) else None
    unused_depth = [k for k in before if ".layers." in k and "running" not in k
                    and k not in moved]
    assert unused_depth or head is not None
    x = torch.randn(2, 3, meta["input_size"], meta["input_size"])
    with torch.no_grad():
        assert tuned.model(x).shape == (2, 10)


def test_subnet_of_another_space_is_one_line_exit_2(
        supernet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ofa.yaml"
    path.write_text(get_space("ofa_mbv3").min_arch().to_yaml())
    capsys.readouterr()
    assert run_app(app, ["finetune", str(path), "--supernet", str(supernet), "--out",
                         str(tmp_path / "o"), *TUNE]) == 2
    _one_line_error(capsys, "space 'ofa_mbv3'", "'elasticvit'")
    assert not (tmp_path / "o").exists()


def test_recipe_for_another_space_is_one_line_exit_2(
        supernet: Path, arch_file: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert run_app(app, ["finetune", str(arch_file), "--supernet", str(supernet), "--out",
                         str(tmp_path / "o"), "--recipe", "finetune_ofa", *TUNE]) == 2
    _one_line_error(capsys, "finetune_ofa", "ofa_mbv3", "not elasticvit")


def _state(run: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(str(run / "last.ckpt")).items()
            if k.startswith(("model.", "optim."))}


def _log_rows(run: Path) -> int:
    log = run / "train_log.csv"
    return len(log.read_text().splitlines()) - 1 if log.exists() else 0


@pytest.mark.slow
def test_kill_9_then_resume_is_bitwise_identical(supernet: Path, arch_file: Path,
                                                 tmp_path: Path) -> None:
    steps = 6

    def cmd(out: Path, *extra: str) -> list[str]:
        return ["finetune", str(arch_file), "--supernet", str(supernet), "--out", str(out),
                "--steps", str(steps), "--ckpt-every", "2", *TUNE, *extra]

    full = tmp_path / "full"
    assert run_app(app, cmd(full)) == 0
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "nasforge.cli", *cmd(run)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and _log_rows(run) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    resume = (run / "last.ckpt").exists()
    assert run_app(app, cmd(run, *(["--resume"] if resume else []))) == 0
    a, b = _state(full), _state(run)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "weights differ after resume"
    assert (full / "train_log.csv").read_text() == (run / "train_log.csv").read_text()
    ma, mb = load_file(str(full / "model.safetensors")), load_file(str(run / "model.safetensors"))
    assert all(torch.equal(ma[k], mb[k]) for k in ma)


@pytest.mark.parametrize("name", ["nasforge.supernet.training.finetune",
                                  "nasforge.supernet.training.finetune.recipe"])
def test_docstring_examples_run(name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), verbose=False)
    assert result.attempted > 0 and result.failed == 0
