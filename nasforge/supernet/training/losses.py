"""Losses of supernet training: label-smoothed CE, in-place distillation, adaptive alpha-divergence.

Papers:
    AlphaNet: Improved Training of Supernets with Alpha-Divergence,
    https://arxiv.org/abs/2102.07954 (the adaptive alpha-divergence, importance weights clipped);
    BigNAS, https://arxiv.org/abs/2003.11142 (in-place distillation from the largest subnet).

The largest subnet (or a teacher model) learns from the labels; the other subnets of a step learn
from its detached logits. :data:`DISTILL_LOSSES` names the distillation losses (``kd``: soft-target
cross-entropy, ``alpha``: AlphaNet's adaptive alpha-divergence).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from nasforge.registry import Registry

__all__ = [
    "DISTILL_LOSSES",
    "adaptive_alpha_divergence",
    "alpha_divergence",
    "label_smoothed_ce",
    "soft_target_ce",
]

DistillLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: name -> ``loss(student_logits, teacher_logits) -> scalar``.
DISTILL_LOSSES: Registry[DistillLoss] = Registry("distillation loss")


def label_smoothed_ce(logits: torch.Tensor, target: torch.Tensor,
                      smoothing: float = 0.1) -> torch.Tensor:
    """Cross-entropy with label smoothing, averaged over the batch.

    Args:
        logits: (B, K) raw scores.
        target: (B,) class indices.
        smoothing: probability mass spread uniformly over the K classes.

    Returns:
        () the mean loss.
    """
    return F.cross_entropy(logits, target, label_smoothing=smoothing)


@DISTILL_LOSSES.register("kd")
def soft_target_ce(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Soft-target cross-entropy ``-sum softmax(t) * log_softmax(s)``, averaged over the batch.

    Args:
        student_logits: (B, K).
        teacher_logits: (B, K); detached here (no gradient reaches the teacher).

    Returns:
        () the mean loss.
    """
    p = F.softmax(teacher_logits.detach(), dim=1)
    return -(p * F.log_softmax(student_logits, dim=1)).sum(dim=1).mean()


def alpha_divergence(student_logits: torch.Tensor, teacher_prob: torch.Tensor, alpha: float,
                     iw_clip: float = 5.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample alpha-divergence ``D_alpha(p || q)`` and a surrogate carrying its gradient.

    With p the teacher's and q the student's distribution and w = p / q,
    ``D_alpha = sum_k q_k ((w_k)^alpha - 1) / (alpha (alpha - 1))``, whose gradient in the
    student's logits is ``-(1/alpha) sum_k q_k w_k^alpha grad log q_k``. ``w^alpha`` is clipped to
    ``[0, iw_clip]`` (AlphaNet) in both. ``alpha = 1`` is KL(p || q) (limit of the formula).

    Args:
        student_logits: (B, K).
        teacher_prob: (B, K) teacher probabilities (no gradient).
        alpha: the divergence order, non-zero.
        iw_clip: upper clip of the importance weights ``w^alpha``.

    Returns:
        ``(value, surrogate)``, each (B,): the divergence (no gradient) and a term whose gradient
        is the divergence's (clipped) gradient.
    """
    if abs(alpha) < 1e-6:
        raise ValueError(f"`alpha != 0` must hold, but got {alpha=}")
    log_q = F.log_softmax(student_logits, dim=1)
    q = log_q.exp().detach()
    p = teacher_prob.detach()
    w = (p / q.clamp_min(1e-12)).clamp_min(1e-12)
    iw = w.pow(alpha).clamp(0.0, iw_clip)
    if abs(alpha - 1.0) < 1e-6:
        value = (q * iw * w.log()).sum(dim=1)
    else:
        value = (q * (iw - 1.0)).sum(dim=1) / (alpha * (alpha - 1.0))
    surrogate = -(q * iw * log_q).sum(dim=1) / alpha
    return value.detach(), surrogate


@DISTILL_LOSSES.register("alpha")
def adaptive_alpha_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                              alpha_min: float = -1.0, alpha_max: float = 1.0,
                              iw_clip: float = 5.0) -> torch.Tensor:
    """AlphaNet's adaptive alpha-divergence, averaged over the batch.

    Per sample, the larger of ``D_alpha_min`` and ``D_alpha_max`` is optimised, so the student
    is penalised both for over- and for under-estimating the teacher's uncertainty.

    Args:
        student_logits: (B, K).
        teacher_logits: (B, K); detached here.
        alpha_min: the negative order (AlphaNet: -1).
        alpha_max: the positive order (AlphaNet: +1).
        iw_clip: clip of the importance weights (AlphaNet: 5).

    Returns:
        () a loss whose value is the mean selected divergence and whose gradient is its
        (clipped) gradient.
    """
    p = F.softmax(teacher_logits.detach(), dim=1)
    v_lo, s_lo = alpha_divergence(student_logits, p, alpha_min, iw_clip)
    v_hi, s_hi = alpha_divergence(student_logits, p, alpha_max, iw_clip)
    pick_lo = v_lo > v_hi
    value = torch.where(pick_lo, v_lo, v_hi)
    surrogate = torch.where(pick_lo, s_lo, s_hi)
    return (value + surrogate - surrogate.detach()).mean()
