from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from safetensors.torch import save_file

from nasforge.search_spaces import get_space
from nasforge.supernet import build_supernet
from nasforge.supernet.data import load_data
from nasforge.supernet.distributed import launch
from nasforge.supernet.samplers import create_sampler
from nasforge.supernet.trainer import SupernetTrainer
from nasforge.supernet.trainer import TrainConfig


def _train_rank(rank: int, world_size: int, out: str) -> None:
    torch.set_num_threads(1)
    space = get_space("elasticvit")
    data = load_data("synthetic:64", input_size=16, seed=0)
    cfg = TrainConfig(steps=5, batch_size=16, input_size=16, warmup_steps=1, lr=1e-3)
    torch.manual_seed(0)
    net = build_supernet(space, 10)
    sampler = create_sampler("performance_aware", space, np.random.default_rng(0),
                             levels=[77, 110], pool_size=4, bank_size=2, num_subnets=1,
                             include_max=False, include_min="level")
    trainer = SupernetTrainer(net, sampler, data, cfg, None)
    probe = space.min_arch()
    x, y = data.train_x[:32], data.train_y[:32]

    def loss() -> float:
        net.set_active(probe)
        net.eval()
        with torch.no_grad():
            return float(torch.nn.functional.cross_entropy(net(x), y))

    before = loss()
    trainer.fit()
    after = loss()
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    state["losses"] = torch.tensor([before, after], dtype=torch.float64)
    save_file(state, str(Path(out) / f"rank{rank}.safetensors"))


@pytest.mark.slow
def test_two_gloo_ranks_end_with_identical_weights_and_lower_loss(tmp_path: Path) -> None:
    launch(_train_rank, 2, str(tmp_path))
    r0 = load_file(str(tmp_path / "rank0.safetensors"))
    r1 = load_file(str(tmp_path / "rank1.safetensors"))
    assert r0.keys() == r1.keys()
    assert all(torch.equal(r0[k], r1[k]) for k in r0 if k != "losses")
    before, after = r0["losses"].tolist()
    assert np.isfinite(after) and after < before
