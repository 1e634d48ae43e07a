"""The training task seam: how one subnet runs on a batch and what its loss compares.

The trainer (:mod:`~nasforge.supernet.training.trainer`) is the same for images and text; a
:class:`TrainTask` supplies the three places where they differ:

- :meth:`TrainTask.size`: the size a subnet trains at: its image size in px
  (``data.eval_size(arch.resolution)``, elastic resolution), its own ``context_length`` in
  tokens for a language model (the window is cropped, as an image is resized), the pair length
  for sequence-to-sequence;
- :meth:`TrainTask.forward`: the model call on the batch at that size (raw output: (B, K)
  logits for images, (B, T, V) for text);
- :meth:`TrainTask.loss_view`: logits (N, K) and targets (N,) the losses compare: per token for
  text, padding (:data:`~nasforge.data.IGNORE`) dropped; :meth:`TrainTask.target_view` aligns a
  teacher's raw output (the max subnet's, at its larger size) with them: a causal LM's first
  ``c`` positions see the same prefix at any context, so the teacher's first ``c`` positions
  are the soft targets of a subnet of context ``c`` (in-place distillation per token).

:data:`TASKS` names them; a data source says which it needs by its ``task`` attribute
(``image``, ``lm``, ``seq2seq``); :func:`task_for` picks it.

Example:
    >>> import torch
    >>> task = LMTask()
    >>> logits, y = task.loss_view(torch.zeros(2, 8, 5), torch.ones(2, 16, dtype=torch.long), 8)
    >>> tuple(logits.shape), tuple(y.shape)
    ((16, 5), (16,))
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.data import IGNORE
from nasforge.data import resize_batch
from nasforge.data import split_pair_batch
from nasforge.registry import Registry

if TYPE_CHECKING:
    from nasforge.data import BaseImageSource

__all__ = ["TASKS", "ImageTask", "LMTask", "Seq2SeqTask", "TrainTask", "lm_loss", "task_for"]


class TrainTask:
    """Images (the base behaviour): resize to the subnet's size, one logit row per image.

    Args:
        layout: the memory format images are fed in (``channels_last`` or contiguous).
    """

    def __init__(self, layout: torch.memory_format = torch.contiguous_format) -> None:
        self.layout = layout

    def size(self, arch: Any, data: BaseImageSource) -> int:
        """The size ``arch`` trains and is scored at (px)."""
        return data.eval_size(getattr(arch, "resolution", None))

    def forward(self, model: nn.Module, x: torch.Tensor, size: int) -> torch.Tensor:
        """The model's raw output on ``x`` (B, 3, S, S) resized to ``size``."""
        return model(resize_batch(x, size).contiguous(memory_format=self.layout))

    def loss_view(self, logits: torch.Tensor, y: torch.Tensor, size: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits (N, K), targets (N,))`` the losses compare."""
        return logits, y

    def target_view(self, target: torch.Tensor, y: torch.Tensor, size: int) -> torch.Tensor:
        """A teacher's raw output aligned with :meth:`loss_view` (N, K)."""
        return target

    def validate(self, model: Any, data: BaseImageSource, *, batch_size: int, seed: int,
                 device: torch.device) -> dict[str, float]:
        """The training loop's validation: top-1 of the max and min subnets, by role."""
        from nasforge.supernet.evaluate import validate_min_max

        return validate_min_max(model, data, batch_size=batch_size, seed=seed, device=device)


ImageTask = TrainTask

#: name (a data source's ``task``) -> task class.
TASKS: Registry[type[TrainTask]] = Registry("training task")
TASKS.add("image", ImageTask)


class _TextTask(TrainTask):
    """What the text tasks share: validation by loss (no BatchNorm to recalibrate)."""

    #: validation batches the training loop's validation reads per subnet
    val_batches = 8

    def validate(self, model: Any, data: BaseImageSource, *, batch_size: int, seed: int,
                 device: torch.device) -> dict[str, float]:
        """Validation loss (nats per token) of the max and min subnets: ``max_loss``,
        ``min_loss``; training mode restored."""
        out = {}
        try:
            for role, arch in (("max", model.space.max_arch()), ("min", model.space.min_arch())):
                model.set_active(arch)
                out[f"{role}_loss"] = lm_loss(model, data, batch_size=batch_size,
                                              max_batches=self.val_batches, device=device,
                                              size=self.size(arch, data))[0]
        finally:
            model.train()
        return out


@TASKS.register("lm")
class LMTask(_TextTask):
    """Next-token prediction: ``x``, ``y`` (B, T) token windows; a subnet of context ``c``
    reads and predicts the first ``c`` positions."""

    def size(self, arch: Any, data: BaseImageSource) -> int:
        return min(int(getattr(arch, "context_length", data.input_size)), data.input_size)

    def forward(self, model: nn.Module, x: torch.Tensor, size: int) -> torch.Tensor:
        return model(x[:, :size])

    def loss_view(self, logits: torch.Tensor, y: torch.Tensor, size: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        return logits.reshape(-1, logits.shape[-1]), y[:, :size].reshape(-1)

    def target_view(self, target: torch.Tensor, y: torch.Tensor, size: int) -> torch.Tensor:
        return target[:, :size].reshape(-1, target.shape[-1])


@TASKS.register("seq2seq")
class Seq2SeqTask(_TextTask):
    """Teacher-forced translation: ``x`` (B, 2L) packs source and decoder input
    (:func:`~nasforge.data.split_pair_batch`), ``y`` (B, L) the targets with padding
    :data:`~nasforge.data.IGNORE`, which the losses skip."""

    def size(self, arch: Any, data: BaseImageSource) -> int:
        return data.input_size

    def forward(self, model: nn.Module, x: torch.Tensor, size: int) -> torch.Tensor:
        src, tgt_in = split_pair_batch(x)
        return model(src, tgt_in)

    def loss_view(self, logits: torch.Tensor, y: torch.Tensor, size: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        keep = y != IGNORE
        return logits[keep], y[keep]

    def target_view(self, target: torch.Tensor, y: torch.Tensor, size: int) -> torch.Tensor:
        return target[y != IGNORE]


def task_for(data: BaseImageSource, layout: torch.memory_format = torch.contiguous_format
             ) -> TrainTask:
    """The task a data source needs (its ``task`` attribute; images by default).

    Raises:
        UnknownNameError: a source naming an unregistered task.
    """
    return TASKS.get(getattr(data, "task", "image"))(layout)


@torch.no_grad()
def lm_loss(model: nn.Module, data: BaseImageSource, *, batch_size: int, max_batches: int | None,
            device: torch.device | str = "cpu", size: int | None = None) -> tuple[float, int]:
    """Mean per-token cross-entropy (nats) of the active subnet on the validation split.

    Works for both text tasks (the data source's ``task``); the model is put in eval mode.

    Args:
        model: the supernet with a subnet active, or a static subnet.
        data: a text source (``lm`` or ``seq2seq``).
        batch_size: validation batch size.
        max_batches: stop after this many batches (``None``: the whole split).
        device: compute device.
        size: the context a language model reads (default the source's window).

    Returns:
        ``(loss, tokens)``: the token-weighted mean loss and how many tokens it averaged.
    """
    task = task_for(data)
    size = data.input_size if size is None else size
    model.eval()
    total, count = 0.0, 0
    for j, (x, y) in enumerate(data.val_batches(batch_size)):
        if max_batches is not None and j >= max_batches:
            break
        logits, t = task.loss_view(task.forward(model, x.to(device), size).float(),
                                   y.to(device), size)
        total += float(F.cross_entropy(logits, t, reduction="sum"))
        count += int(t.numel())
    return (total / count if count else math.nan), count
