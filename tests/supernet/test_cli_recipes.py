"""The shipped recipes through ``nas train``: the quick recipe is the default, the ImageNet
recipes print their resolved values and run 20 steps on a generated JPEG folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasforge.cli import app
from nasforge.cli._common import run_app
from nasforge.supernet.training.recipe import DEFAULT_RECIPE
from nasforge.supernet.training.recipe import load_recipe
from tests.data._images import make_imagefolder

FAST = ["--input-size", "16", "--resolution-scale", "0.0625", "--batch-size", "6",
        "--accelerator", "cpu", "--no-progress", "--set", "loader.max_bad_share=0.2"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_imagefolder(tmp_path_factory.mktemp("imnet"))


def test_the_quick_recipe_file_is_the_default() -> None:
    assert load_recipe("quick") == DEFAULT_RECIPE
    assert DEFAULT_RECIPE.train.resolution_scale == 0.125


@pytest.mark.parametrize("name", ["elasticvit_imagenet", "attentivenas_imagenet"])
def test_shipped_recipe_prints_resolved_values(name: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert run_app(app, ["train", "--config", name, "--print-config", "--batch-size", "8"]) == 0
    text = capsys.readouterr().out
    assert "batch_size: 8\n" in text and "input_size: 256" in text
    assert load_recipe(name).train.epochs in (360, 600)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["quick", "elasticvit_imagenet", "attentivenas_imagenet"])
def test_shipped_recipe_runs_20_steps_on_the_generated_folder(
        name: str, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_app(app, ["train", "--config", name, "--data", f"imagefolder:{folder}",
                         "--out", str(tmp_path / "o"), "--steps", "20", "--workers", "2",
                         "--no-eval", "--set", "train.warmup_epochs=null",
                         "--set", "train.warmup_steps=2", *FAST])
    assert code == 0, capsys.readouterr().err
    assert "trained 20/20 steps" in capsys.readouterr().out
