"""The launchers without the CLI: which one a run gets, and a run on spawned ranks."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasforge.errors import InvalidInputError
from nasforge.supernet.training.distributed import available_slots
from nasforge.supernet.training.launch import InProcessLauncher
from nasforge.supernet.training.launch import RaySettings
from nasforge.supernet.training.launch import RayTrainLauncher
from nasforge.supernet.training.launch import SpawnLauncher
from nasforge.supernet.training.launch import TorchrunLauncher
from nasforge.supernet.training.launch import TrainJob
from nasforge.supernet.training.launch import choose_launcher
from nasforge.supernet.training.launch import launch_training
from nasforge.supernet.training.recipe import apply_overrides
from nasforge.supernet.training.recipe import load_recipe


def _job(out: Path, **changes: object) -> TrainJob:
    recipe = apply_overrides(load_recipe("quick"), {
        "data": "synthetic:32", "sampler": "uniform", "sampler_options": {},
        "train.steps": 2, "train.batch_size": 8, "train.input_size": 16,
        "train.warmup_steps": 1, "loader.workers": 0, **changes})
    return TrainJob("elasticvit", recipe.to_dict(), out, accelerator="cpu")


def test_one_process_or_the_ranks_torchrun_started(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert isinstance(choose_launcher(_job(tmp_path))[0], InProcessLauncher)
    assert isinstance(choose_launcher(_job(tmp_path), nproc=1)[0], InProcessLauncher)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert isinstance(choose_launcher(_job(tmp_path))[0], TorchrunLauncher)
    with pytest.raises(InvalidInputError, match="--nproc under torchrun"):
        choose_launcher(_job(tmp_path), nproc=2 if available_slots("cpu") >= 2 else 1_000_000)


def test_spawn_and_ray_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    slots = available_slots("cpu")
    with pytest.raises(InvalidInputError, match=r"give 1\.\."):
        choose_launcher(_job(tmp_path), nproc=slots + 1)
    with pytest.raises(InvalidInputError, match="exclude each other"):
        choose_launcher(_job(tmp_path), nproc=2, ray=RaySettings("auto"))
    with pytest.raises(InvalidInputError, match="global batch size >= 16"):
        choose_launcher(_job(tmp_path), ray=RaySettings("auto", workers=16))
    launcher, job = choose_launcher(_job(tmp_path), ray=RaySettings("auto", workers=2))
    assert isinstance(launcher, RayTrainLauncher) and launcher.world_size == 2
    assert launcher.storage == tmp_path.resolve() / "ray" and job.out == tmp_path
    if slots >= 2:
        launcher, job = choose_launcher(_job(tmp_path), nproc=2)
        assert isinstance(launcher, SpawnLauncher) and launcher.world_size == 2
        assert job.threads == max(1, slots // 2)


@pytest.mark.slow
def test_launch_training_on_two_spawned_ranks(tmp_path: Path) -> None:
    outcome = launch_training(_job(tmp_path / "run"), SpawnLauncher(2))
    assert outcome is not None
    assert (outcome.step, outcome.steps, outcome.world_size, outcome.backend) == (2, 2, 2, "gloo")
    assert outcome.checkpoint == tmp_path / "run" / "last.ckpt" and outcome.checkpoint.is_file()
    with pytest.raises(InvalidInputError, match="imagefolder data path does not exist"):
        launch_training(_job(tmp_path / "bad", data="imagefolder:/nonexistent"),
                        SpawnLauncher(2))
