from __future__ import annotations

import numpy as np
import pytest
import torch

from nasforge.data import load_data
from nasforge.errors import InvalidInputError
from nasforge.search_spaces import get_space
from nasforge.supernet import build_supernet
from nasforge.supernet.training.precision import LossScaler
from nasforge.supernet.training.precision import check_precision
from nasforge.supernet.training.trainer import SupernetTrainer
from nasforge.supernet.training.trainer import TrainConfig
from tests.supernet._tiny import MinOnly

SPACE = get_space("elasticvit")
DATA = load_data("synthetic:64", input_size=16, seed=0)


def _trainer(precision: str, steps: int = 100, channels_last: bool = False,
             optimizer: str = "adamw") -> SupernetTrainer:
    cfg = TrainConfig(steps=steps, batch_size=8, input_size=16, warmup_steps=5, lr=2e-3,
                      precision=precision, dropout=0.0, channels_last=channels_last,
                      optimizer=optimizer)
    torch.manual_seed(0)
    return SupernetTrainer(build_supernet(SPACE, 10), MinOnly(SPACE, np.random.default_rng(0)),
                           DATA, cfg, None)


def test_fp16_on_cpu_is_refused_in_one_line() -> None:
    with pytest.raises(InvalidInputError, match="fp16 needs a CUDA device") as e:
        check_precision("fp16", "cpu")
    assert "\n" not in str(e.value)
    with pytest.raises(InvalidInputError, match="fp16 needs a CUDA device"):
        _trainer("fp16", 1)
    check_precision("bf16", "cpu")  # fine


def test_loss_scaler_skips_a_non_finite_step_and_backs_off() -> None:
    tr = _trainer("fp32", 2)
    tr.scaler = LossScaler(init_scale=3e38, growth_interval=1)  # loss * scale overflows
    before = {k: v.clone() for k, v in tr.model.state_dict().items()
              if "running" not in k and "num_batches" not in k}  # BN statistics do move
    tr.train_step()  # the slice gradients are inf/nan: the step is skipped
    after = tr.model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())
    assert tr.scaler.scale_value == pytest.approx(1.5e38) and tr.scaler.skipped == 1
    tr.scaler.scale_value = 1024.0
    tr.train_step()  # a finite step: the unscaled update happens and the scale grows
    assert not all(torch.equal(v, after[k]) for k, v in before.items())
    assert tr.scaler.scale_value == 2048.0 and tr.scaler.skipped == 1
    assert tr.scaler.state_dict() == {"scale": 2048.0, "good_steps": 0, "skipped": 1}


@pytest.mark.slow
def test_100_bf16_steps_reach_the_loss_of_fp32() -> None:
    """bf16 autocast on CPU: the smallest subnet trains to within 15% of fp32's loss."""
    out = {}
    for precision in ("fp32", "bf16"):
        tr = _trainer(precision)
        first = tr.train_step()[0]["ce"]
        losses = [r["ce"] for _ in range(99) for r in tr.train_step()]
        assert tr.step == 100
        assert all(p.dtype == torch.float32 for p in tr.model.parameters())
        out[precision] = (first, float(np.mean(losses[-10:])))
    (f32_first, f32), (b16_first, b16) = out["fp32"], out["bf16"]
    assert f32 < 0.8 * f32_first and b16 < 0.8 * b16_first  # both learned
    assert abs(b16 - f32) <= 0.15 * f32, out


def test_channels_last_steps_like_the_default_layout() -> None:
    # SGD: AdamW turns float noise in near-zero gradients into lr-sized steps
    a, b = _trainer("fp32", 2, optimizer="sgd"), _trainer("fp32", 2, True, optimizer="sgd")
    assert any(p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last)
               and not p.is_contiguous() for p in b.model.parameters())
    for _ in range(2):
        ra, rb = a.train_step(), b.train_step()
        assert ra[0]["ce"] == pytest.approx(rb[0]["ce"], abs=1e-4)
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.allclose(sa[k], sb[k], atol=1e-5) for k in sa)
