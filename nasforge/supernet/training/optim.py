"""Optimizers and learning-rate schedules of supernet training.

AdamW or SGD with two parameter groups — weight decay on conv/linear weights only, none on
normalisation parameters, biases and attention bias tables — and a cosine schedule with linear
warm-up, stepped once per optimizer step. The optimizers are the slice-aware ones of
:mod:`nasforge.supernet.training.sliced_optim`: given a supernet's slice-gradient store they update
only
the slices the step's subnets used; without, they are the stock torch optimizers.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nasforge.errors import InvalidInputError
from nasforge.supernet.training.sliced_optim import SlicedAdamW
from nasforge.supernet.training.sliced_optim import SlicedSGD
from nasforge.supernet.training.sliced_optim import SliceGrads

__all__ = ["OPTIMIZERS", "build_optimizer", "cosine_with_warmup", "param_groups"]

OPTIMIZERS = ("adamw", "sgd")
_NORMS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)


def _no_decay(module: nn.Module, name: str, p: nn.Parameter) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    return p.ndim <= 1 or "bias" in leaf or isinstance(module, _NORMS)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, object]]:
    """Split ``model``'s trainable parameters into decayed and non-decayed groups.

    Norm parameters, biases, 1-d tensors and tensors whose name contains ``bias`` (relative
    position / attention bias tables) get no weight decay. The order is the ``named_parameters``
    order, so it is identical across processes and resumes.

    Args:
        model: the supernet.
        weight_decay: decay of the decayed group.

    Returns:
        ``[{"params": decayed, "weight_decay": wd}, {"params": others, "weight_decay": 0.0}]``.
    """
    decay: list[nn.Parameter] = []
    other: list[nn.Parameter] = []
    for mod_name, module in model.named_modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            (other if _no_decay(module, f"{mod_name}.{name}", p) else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": other, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, name: str = "adamw", lr: float = 1e-3,
                    weight_decay: float = 0.05, momentum: float = 0.9,
                    slice_grads: SliceGrads | None = None) -> torch.optim.Optimizer:
    """AdamW or SGD (Nesterov momentum) over :func:`param_groups`.

    Args:
        model: the model to optimise.
        name: ``adamw`` or ``sgd``.
        lr: peak learning rate.
        weight_decay: decay of the decayed group.
        momentum: SGD momentum.
        slice_grads: a supernet's slice-gradient store
            (:meth:`~nasforge.supernet.base.Supernet.enable_slice_grads`): step only the slices
            its subnets used (:mod:`~nasforge.supernet.training.sliced_optim`); ``None``: whole
            tensors.

    Raises:
        InvalidInputError: unknown optimizer name or a non-positive learning rate.
    """
    if lr <= 0:
        raise InvalidInputError(f"learning rate must be > 0, got {lr}")
    groups = param_groups(model, weight_decay)
    if name == "adamw":
        return SlicedAdamW(groups, slice_grads, lr=lr, betas=(0.9, 0.999))
    if name == "sgd":
        return SlicedSGD(groups, slice_grads, lr=lr, momentum=momentum, nesterov=True)
    raise InvalidInputError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def cosine_with_warmup(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 0,
                       min_lr_ratio: float = 0.0) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up from ``lr / warmup_steps`` to ``lr``, then cosine decay to
    ``min_lr_ratio * lr`` at ``total_steps``.

    Its ``state_dict()`` is plain numbers (JSON-serialisable).
    """
    total = max(int(total_steps), 1)
    warm = max(int(warmup_steps), 0)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = min(1.0, (step - warm) / max(total - warm, 1))
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
