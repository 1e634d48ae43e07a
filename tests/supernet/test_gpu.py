"""CUDA checks (``-m gpu``): NCCL collectives on a world-size-1 group, bf16 and fp16 steps.

Imports only torch, numpy and nasforge's supernet: the GPU machine has no optuna, xgboost, ray.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from nasforge.data import load_data
from nasforge.search_spaces import get_space
from nasforge.supernet import build_supernet
from nasforge.supernet.training.distributed import all_reduce_gradients
from nasforge.supernet.training.distributed import all_reduce_mean
from nasforge.supernet.training.distributed import all_reduce_means
from nasforge.supernet.training.precision import enable_tf32
from nasforge.supernet.training.trainer import SupernetTrainer
from nasforge.supernet.training.trainer import TrainConfig
from tests.supernet._tiny import MinOnly

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

SPACE = get_space("elasticvit")


def test_nccl_collectives_reduce_device_tensors(tmp_path: Path) -> None:
    dev = torch.device("cuda", 0)
    dist.init_process_group("nccl", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1, device_id=dev)
    try:
        grads = [torch.randn(5, 3, device=dev), torch.randn(7, device=dev),
                 torch.randn(4, device=dev, dtype=torch.bfloat16)]
        want = [g.clone() for g in grads]
        assert all_reduce_gradients(grads, bucket_mb=25.0) == 2  # float32 and bf16 buckets
        assert all(torch.equal(g, w) for g, w in zip(grads, want, strict=True))
        assert all_reduce_gradients(grads, bucket_mb=0) == 3
        means = all_reduce_means(torch.tensor([1.5, 2.5], device=dev))
        assert means.device == dev and means.tolist() == [1.5, 2.5]
        assert all_reduce_mean(0.25, device=dev) == 0.25
    finally:
        dist.destroy_process_group()


def _trainer(precision: str) -> SupernetTrainer:
    data = load_data("synthetic:64", input_size=32, seed=0)
    cfg = TrainConfig(steps=4, batch_size=16, input_size=32, warmup_steps=1, lr=2e-3,
                      precision=precision)
    torch.manual_seed(0)
    return SupernetTrainer(build_supernet(SPACE, 10), MinOnly(SPACE, np.random.default_rng(0)),
                           data, cfg, None, device="cuda")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_steps_train_on_the_gpu(precision: str) -> None:
    enable_tf32("cuda")
    tr = _trainer(precision)
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    losses = [r["ce"] for _ in range(4) for r in tr.train_step()]
    assert all(np.isfinite(losses)), losses
    assert all(p.dtype == torch.float32 and p.is_cuda for p in tr.model.parameters())
    moved = [k for k, v in tr.model.state_dict().items() if not torch.equal(before[k], v)]
    assert moved, "no weight changed"
    if precision == "fp16":
        # an overflow at the initial scale skips a step and halves the scale, as GradScaler does
        assert tr.scaler.enabled and tr.scaler.skipped < 4
        assert tr.scaler.scale_value == 2.0 ** (16 - tr.scaler.skipped)


def test_fp16_overflow_skips_the_step_and_backs_off() -> None:
    tr = _trainer("fp16")
    tr.scaler.scale_value = 3e38  # loss * scale overflows: gradients in the store are inf/nan
    before = {k: v.clone() for k, v in tr.model.state_dict().items()
              if "running" not in k and "num_batches" not in k}
    tr.train_step()
    after = tr.model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())
    assert tr.scaler.skipped == 1 and tr.scaler.scale_value == pytest.approx(1.5e38)
