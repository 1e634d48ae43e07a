from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.supernet.checkpoint import CHECKPOINT_FORMAT
from nasforge.supernet.checkpoint import load_supernet
from nasforge.supernet.checkpoint import optimizer_state
from nasforge.supernet.checkpoint import read_checkpoint
from nasforge.supernet.checkpoint import write_checkpoint

CFG = {"space": "elasticvit", "num_classes": 10, "input_size": 32}


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))


def _trained(path: Path) -> tuple[nn.Module, torch.optim.Optimizer]:
    m = _model()
    opt = torch.optim.AdamW(m.parameters(), lr=0.1)
    m(torch.randn(5, 4)).sum().backward()
    opt.step()
    write_checkpoint(path, model=m, config=CFG, step=7, optimizer=opt,
                     sampler_state={"name": "x", "levels": [1.5, 2.0]})
    return m, opt


def test_round_trip_restores_weights_optimizer_and_state(tmp_path: Path) -> None:
    m, opt = _trained(tmp_path / "last.ckpt")
    ck = read_checkpoint(tmp_path)  # a run folder works too
    assert ck.step == 7 and ck.config["space"] == "elasticvit"
    assert ck.state["sampler"]["levels"] == [1.5, 2.0]
    for k, v in m.state_dict().items():
        assert torch.equal(ck.group("model")[k], v)
    m2 = _model()
    opt2 = torch.optim.AdamW(m2.parameters(), lr=0.1)
    opt2.load_state_dict(optimizer_state(ck))
    for p, q in zip(opt.state.values(), opt2.state.values(), strict=True):
        assert torch.equal(p["exp_avg"], q["exp_avg"]) and torch.equal(p["step"], q["step"])
    assert not list(tmp_path.glob("*.tmp"))


def test_truncated_checkpoint(tmp_path: Path) -> None:
    _trained(tmp_path / "last.ckpt")
    raw = (tmp_path / "last.ckpt").read_bytes()
    (tmp_path / "last.ckpt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InvalidInputError, match="corrupted or truncated"):
        read_checkpoint(tmp_path / "last.ckpt")


def test_bad_json_and_missing_keys(tmp_path: Path) -> None:
    t = {"model.w": torch.zeros(2)}
    save_file(t, str(tmp_path / "a.ckpt"), metadata={"nasforge": "{not json"})
    with pytest.raises(InvalidInputError, match="corrupted JSON"):
        read_checkpoint(tmp_path / "a.ckpt")
    save_file(t, str(tmp_path / "b.ckpt"), metadata={"nasforge": json.dumps(
        {"format": CHECKPOINT_FORMAT, "config": {"space": "elasticvit"}})})
    with pytest.raises(InvalidInputError, match=r"lacks step, config\.num_classes"):
        read_checkpoint(tmp_path / "b.ckpt")
    save_file(t, str(tmp_path / "old.ckpt"), metadata={"nasforge": json.dumps(
        {"format": "nasforge.supernet/1", "step": 1,
         "config": {"space": "elasticvit", "num_classes": 10, "input_size": 32}})})
    with pytest.raises(InvalidInputError, match=r"format 'nasforge\.supernet/1'"):
        read_checkpoint(tmp_path / "old.ckpt")
    save_file(t, str(tmp_path / "c.ckpt"))
    with pytest.raises(InvalidInputError, match="not a nasforge checkpoint"):
        read_checkpoint(tmp_path / "c.ckpt")
    with pytest.raises(InvalidInputError, match="not found"):
        read_checkpoint(tmp_path / "missing.ckpt")


def test_checkpoint_of_another_space(tmp_path: Path) -> None:
    _trained(tmp_path / "last.ckpt")
    with pytest.raises(IncompatibleComponentsError, match="space 'elasticvit', not 'ofa_mbv3'"):
        read_checkpoint(tmp_path / "last.ckpt", expect_space="ofa_mbv3")


def test_weights_that_do_not_fit_the_supernet(tmp_path: Path) -> None:
    _trained(tmp_path / "last.ckpt")  # a toy model's weights under an elasticvit config
    with pytest.raises(IncompatibleComponentsError, match="does not fit the elasticvit"):
        load_supernet(tmp_path / "last.ckpt")
