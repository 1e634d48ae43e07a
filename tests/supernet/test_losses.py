from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nasforge.supernet.training.losses import DISTILL_LOSSES
from nasforge.supernet.training.losses import adaptive_alpha_divergence
from nasforge.supernet.training.losses import alpha_divergence
from nasforge.supernet.training.losses import label_smoothed_ce
from nasforge.supernet.training.losses import soft_target_ce


def _logits(seed: int, b: int = 6, k: int = 5) -> torch.Tensor:
    return torch.randn(b, k, generator=torch.Generator().manual_seed(seed)) * 2


def test_label_smoothed_ce_matches_the_formula() -> None:
    x, y = _logits(0), torch.tensor([0, 1, 2, 3, 4, 0])
    eps, k = 0.1, 5
    target = torch.full((6, k), eps / k)
    target[torch.arange(6), y] += 1 - eps
    manual = -(target * F.log_softmax(x, 1)).sum(1).mean()
    assert torch.allclose(label_smoothed_ce(x, y, eps), manual, atol=1e-6)


def test_soft_target_ce_does_not_reach_the_teacher() -> None:
    s = _logits(0).requires_grad_()
    t = _logits(1).requires_grad_()
    soft_target_ce(s, t).backward()
    assert t.grad is None and s.grad is not None
    assert set(DISTILL_LOSSES.list()) == {"alpha", "kd"}


def _analytic(s: torch.Tensor, p: torch.Tensor, alpha: float) -> torch.Tensor:
    q = F.softmax(s, 1)
    return ((q * ((p / q) ** alpha - 1)).sum(1) / (alpha * (alpha - 1))).sum()


@pytest.mark.parametrize("alpha", [-1.0, 0.5, 2.0])
def test_alpha_divergence_value_and_gradient_match_autograd(alpha: float) -> None:
    s = _logits(0).requires_grad_()
    p = F.softmax(_logits(1), 1)
    value, surrogate = alpha_divergence(s, p, alpha, iw_clip=1e9)
    ref = _analytic(s, p, alpha)
    assert torch.allclose(value.sum(), ref.detach(), rtol=1e-4)
    (g_ref,) = torch.autograd.grad(ref, s)
    (g_sur,) = torch.autograd.grad(surrogate.sum(), s)
    assert torch.allclose(g_sur, g_ref, rtol=1e-3, atol=1e-5)


def test_alpha_one_is_kl_of_teacher_to_student() -> None:
    s, p = _logits(0), F.softmax(_logits(1), 1)
    value, _ = alpha_divergence(s, p, 1.0, iw_clip=1e9)
    kl = F.kl_div(F.log_softmax(s, 1), p, reduction="none").sum(1)
    assert torch.allclose(value, kl, atol=1e-5)


def test_divergences_vanish_when_student_equals_teacher() -> None:
    s = _logits(3).requires_grad_()
    loss = adaptive_alpha_divergence(s, s.detach())
    assert abs(float(loss.detach())) < 1e-6
    loss.backward()
    assert s.grad.abs().max() < 1e-5


def test_adaptive_picks_the_larger_divergence_per_sample() -> None:
    s, t = _logits(4), _logits(5)
    p = F.softmax(t, 1)
    lo, _ = alpha_divergence(s, p, -1.0, 5.0)
    hi, _ = alpha_divergence(s, p, 1.0, 5.0)
    assert torch.allclose(adaptive_alpha_divergence(s, t), torch.maximum(lo, hi).mean())


def test_importance_weights_are_clipped() -> None:
    # the teacher is sure of a class the student almost rules out: w^-1 = q/p is huge
    s = torch.tensor([[8.0, -8.0, 0.0]], requires_grad=True)
    t = torch.tensor([[-8.0, 8.0, 0.0]])
    p = F.softmax(t, 1)
    _, clipped = alpha_divergence(s, p, -1.0, iw_clip=5.0)
    _, free = alpha_divergence(s, p, -1.0, iw_clip=1e9)
    (g_c,) = torch.autograd.grad(clipped.sum(), s)
    (g_f,) = torch.autograd.grad(free.sum(), s)
    assert g_c.abs().max() <= 5.0 + 1e-6 < g_f.abs().max()
