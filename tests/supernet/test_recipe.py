from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from nasforge.errors import InvalidInputError
from nasforge.supernet.checkpoint import RunConfig
from nasforge.supernet.checkpoint import keep_numbered
from nasforge.supernet.checkpoint import read_checkpoint
from nasforge.supernet.checkpoint import write_checkpoint
from nasforge.supernet.training.recipe import Recipe
from nasforge.supernet.training.recipe import apply_overrides
from nasforge.supernet.training.recipe import load_recipe
from nasforge.supernet.training.recipe import recipe_from_dict


def test_key_paths_are_named_in_errors() -> None:
    with pytest.raises(InvalidInputError, match=r"'train\.lrr'; did you mean 'train\.lr'"):
        recipe_from_dict({"train": {"lrr": 1.0}})
    with pytest.raises(InvalidInputError, match=r"'loader\.scale\[1\]': expected a number"):
        recipe_from_dict({"loader": {"scale": [0.1, "big"]}})
    with pytest.raises(InvalidInputError, match=r"'train\.steps': expected an integer"):
        apply_overrides(Recipe(), {"train.steps": 2.5})
    with pytest.raises(InvalidInputError, match=r"unknown recipe key 'colour'"):
        recipe_from_dict({"colour": "red"})


def test_yaml_round_trip_and_overrides(tmp_path: Path) -> None:
    r = apply_overrides(load_recipe("elasticvit_imagenet"), {"train.batch_size": 8,
                                                             "loader.rand_augment": [2, 9]})
    assert r.train.batch_size == 8 and r.loader.rand_augment == (2, 9.0)
    assert r.train.peak_lr == pytest.approx(5e-4 * 8 / 768)  # the linear batch-scaling rule
    path = tmp_path / "r.yaml"
    path.write_text(r.to_yaml())
    assert load_recipe(path) == r


def test_run_config_is_the_one_reader_of_the_checkpoint_config(tmp_path: Path) -> None:
    cfg = {"space": "elasticvit", "num_classes": 10, "input_size": 32, "data": "synthetic:40",
           "resolution_scale": 0.125, "train": {"seed": 3}, "loader": {"workers": 0}}
    m = nn.Linear(2, 2)
    write_checkpoint(tmp_path / "last.ckpt", model=m, config=cfg, step=1)
    run = RunConfig.from_checkpoint(read_checkpoint(tmp_path / "last.ckpt"))
    assert (run.data, run.input_size, run.resolution_scale, run.seed) == (
        "synthetic:40", 32, 0.125, 3)
    data = run.open_data()
    assert data.resolution_scale == 0.125 and data.eval_size(256) == 32
    assert data.eval_size(128) == 16
    for step in (1, 2, 3):
        keep_numbered(tmp_path / "last.ckpt", step, keep=2)
    assert sorted(p.name for p in tmp_path.glob("step-*")) == ["step-0000002.ckpt",
                                                             "step-0000003.ckpt"]
    assert torch.equal(read_checkpoint(tmp_path / "step-0000003.ckpt").tensors["model.weight"],
                       m.weight.detach())


def test_flags_name_their_key_and_a_sampler_brings_its_recipe_options() -> None:
    from nasforge.errors import InvalidInputError
    from nasforge.supernet.training.recipe_flags import RECIPE_FLAGS
    from nasforge.supernet.training.recipe_flags import recipe_from_flags
    from nasforge.supernet.training.samplers import SAMPLERS

    assert len({f.flag for f in RECIPE_FLAGS}) == len(RECIPE_FLAGS)
    r = recipe_from_flags("elasticvit_imagenet", {}, sampler="uniform")
    assert r.sampler == "uniform" and dict(r.sampler_options) == {}
    r = recipe_from_flags(None, {}, sampler="complexity_aware")
    assert dict(r.sampler_options) == dict(SAMPLERS.get("complexity_aware").recipe_options)
    with pytest.raises(InvalidInputError, match=r"--lr \(train.lr\)"):
        recipe_from_flags(None, {"--lr": -1.0})
