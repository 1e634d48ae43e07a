from __future__ import annotations

import csv
import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from nasforge.data import load_data
from nasforge.errors import IncompatibleComponentsError
from nasforge.search_spaces import get_space
from nasforge.supernet import build_supernet
from nasforge.supernet.training.optim import cosine_with_warmup
from nasforge.supernet.training.optim import param_groups
from nasforge.supernet.training.samplers import create_sampler
from nasforge.supernet.training.trainer import SupernetTrainer
from nasforge.supernet.training.trainer import TrainConfig

SPACE = get_space("elasticvit")
DATA = load_data("synthetic:48", input_size=16, seed=0)
CFG = TrainConfig(steps=6, batch_size=8, checkpoint_every=4, input_size=16, warmup_steps=1,
                  ema_decay=0.9, lr=1e-3)


def _trainer(out: Path | None, cfg: TrainConfig = CFG, sampler: str = "performance_aware"
             ) -> SupernetTrainer:
    torch.manual_seed(0)
    net = build_supernet(SPACE, 10)
    opts = ({"levels": [77, 110], "pool_size": 4, "bank_size": 2, "num_subnets": 1,
             "include_max": False, "include_min": "level"} if sampler == "performance_aware"
            else {})
    smp = create_sampler(sampler, SPACE, np.random.default_rng(cfg.seed), **opts)
    return SupernetTrainer(net, smp, DATA, cfg, out)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_kill_and_resume_is_bitwise_identical(tmp_path: Path) -> None:
    full = _trainer(tmp_path / "full")
    full.fit()
    killed = _trainer(tmp_path / "run")
    killed.fit(stop_at=5)  # killed at step 5: steps after the step-4 checkpoint are lost
    resumed = _trainer(tmp_path / "run")
    assert resumed.resume() == 4
    resumed.fit()
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "weights differ after resume"
    assert all(torch.equal(full.ema.shadow[k], resumed.ema.shadow[k]) for k in a)
    assert full.sampler.state_dict() == resumed.sampler.state_dict()
    for pa, pb in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        sa, sb = full.optimizer.state.get(pa, {}), resumed.optimizer.state.get(pb, {})
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    # the CSV log holds each step once, the same rows as the uninterrupted run
    assert _rows(tmp_path / "run" / "train_log.csv") == _rows(tmp_path / "full" / "train_log.csv")
    assert sorted({r["level"] for r in _rows(tmp_path / "full" / "train_log.csv")}) == ["0", "1"]


def test_resume_into_another_sampler_or_input_size_is_refused(tmp_path: Path) -> None:
    _trainer(tmp_path, dataclasses.replace(CFG, steps=1)).fit()
    with pytest.raises(IncompatibleComponentsError, match="sampler"):
        _trainer(tmp_path, sampler="uniform").resume()


def test_gradients_of_all_subnets_accumulate_into_one_step() -> None:
    t = _trainer(None, dataclasses.replace(CFG, steps=1), sampler="sandwich")
    before = {n: p.detach().clone() for n, p in t.model.named_parameters()}
    records = t.train_step()
    assert [r["role"] for r in records] == ["max", "random", "random", "min"]
    assert all(np.isfinite(r["loss"]) for r in records)
    assert t.optimizer.state[next(iter(t.model.parameters()))]["step"] == 1  # one step
    changed = sum(not torch.equal(before[n], p) for n, p in t.model.named_parameters())
    assert changed > 0.9 * len(before)  # the max subnet touches (nearly) every tensor


def test_param_groups_exclude_norms_and_biases_from_weight_decay() -> None:
    net = build_supernet(SPACE, 10)
    decay, other = param_groups(net, 0.05)
    names = {id(p): n for n, p in net.named_parameters()}
    assert all(p.ndim > 1 for p in decay["params"])
    assert all(p.ndim <= 1 or "bias" in names[id(p)].rsplit(".", 1)[-1]
               for p in other["params"])
    assert len(decay["params"]) + len(other["params"]) == len(list(net.parameters()))
    assert other["weight_decay"] == 0.0


def test_cosine_schedule_warms_up_then_decays() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = cosine_with_warmup(opt, total_steps=10, warmup_steps=2, min_lr_ratio=0.1)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.5) and lrs[1] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(lrs[1:]))
    assert lrs[-1] > 0.1
