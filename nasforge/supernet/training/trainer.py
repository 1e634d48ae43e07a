"""The supernet training loop: sample subnets, accumulate their gradients, one optimizer step.

Papers: BigNAS (https://arxiv.org/abs/2003.11142) and AttentiveNAS
(https://arxiv.org/abs/2011.09011) for the sandwich step with in-place distillation; ElasticViT
(https://arxiv.org/abs/2303.09730) for complexity/performance-aware sampling, which plugs in as a
sampler.

One step (identical on every data-parallel rank):

1. ``sampler.sample()`` gives the step's subnets; the batch comes from the data source
   (:class:`~nasforge.data.base.BaseImageSource`), a pure function of
   ``(seed, epoch, index)``; it is normalised on the compute device (uint8 travels) and, with
   ``mixup``/``cutmix`` on, mixed there.
2. Each subnet runs forward and backward on the batch **at its own resolution** (elastic
   resolution, as AttentiveNAS / ElasticViT: the batch is resized per subnet inside the step
   to ``data.eval_size(arch.resolution)``, i.e. ``round(resolution * resolution_scale)`` px, or
   ``input_size`` when the source has no scale). The ``max`` subnet (or every subnet, when
   there is no teacher) learns from label-smoothed CE; the others distil from the max subnet's
   detached logits (or an external teacher's) with a loss from
   :data:`~nasforge.supernet.training.losses.DISTILL_LOSSES`. Each subnet's plain CE
   (rank-averaged) is fed back to the sampler.
3. Gradients are averaged over ranks (in buckets, :mod:`~nasforge.supernet.training.distributed`;
   BatchNorm running statistics stay per rank), unscaled and checked when ``precision`` is
   ``fp16`` (a non-finite step is skipped, :mod:`~nasforge.supernet.training.precision`), clipped,
   and one optimizer step and one scheduler step run; EMA (optional) folds the new weights in.
   Forward passes run under the ``precision``'s autocast; losses are computed in float32.
   With ``micro_batches`` = k each rank's batch is split into k strided parts whose gradients
   accumulate. The trainer enables the supernet's slice-gradient
   store, so gradients stay the size of the slices the step's subnets used and clipping and the
   optimizer step touch only those (:mod:`~nasforge.supernet.training.sliced_optim`); elsewhere the
   weights and their moments stay as they are.

The loop (Lightning's fit loop, not its size): :meth:`SupernetTrainer.fit` seeds the run and
turns ``_advance`` (fetch a batch, :meth:`train_step`, the step hooks) until ``config.steps``;
:meth:`train_step` is ``_prepare`` (normalise, mix, micro-batches, teacher targets),
``_forward_backward``, ``_feedback`` (sampler feedback, log records) and ``_optimizer_step``.
The rest are callbacks (:mod:`~nasforge.supernet.training.callbacks`: throughput, progress bar,
validation, TensorBoard, CSV log, checkpoint cadence by steps, minutes and epochs); what a
checkpoint holds, and resuming in named restore steps, is
:mod:`~nasforge.supernet.training.connector`: a killed run continues bitwise identically to an
uninterrupted one on CPU.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nasforge.data import BaseImageSource
from nasforge.data import Batch
from nasforge.data import CorruptImageTracker
from nasforge.data import mix_batch
from nasforge.data import normalize
from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.supernet.training import callbacks as cbs
from nasforge.supernet.training import connector
from nasforge.supernet.training.distributed import all_reduce_gradients
from nasforge.supernet.training.distributed import all_reduce_means
from nasforge.supernet.training.distributed import broadcast_state
from nasforge.supernet.training.distributed import rank_and_world
from nasforge.supernet.training.ema import ModelEMA
from nasforge.supernet.training.losses import DISTILL_LOSSES
from nasforge.supernet.training.losses import label_smoothed_ce
from nasforge.supernet.training.optim import build_optimizer
from nasforge.supernet.training.optim import cosine_with_warmup
from nasforge.supernet.training.precision import LossScaler
from nasforge.supernet.training.precision import autocast
from nasforge.supernet.training.precision import check_precision
from nasforge.supernet.training.recipe import TrainConfig
from nasforge.supernet.training.sliced_optim import clip_grad_norm_
from nasforge.supernet.training.sliced_optim import gradients
from nasforge.supernet.training.task import task_for

if TYPE_CHECKING:
    from nasforge.supernet.base import Supernet
    from nasforge.supernet.training.samplers.base import BaseSampler
    from nasforge.supernet.training.samplers.base import SampledArch

__all__ = ["CHECKPOINT_NAME", "SupernetTrainer", "TrainConfig", "TrainResult"]

CHECKPOINT_NAME = "last.ckpt"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """What a finished (or stopped) :meth:`SupernetTrainer.fit` reports.

    Attributes:
        step: optimizer steps done in total.
        seconds: wall time of this call.
        checkpoint: the last checkpoint written (``None`` without ``out_dir``).
        log: the CSV log (``None`` without ``out_dir``).
        losses: mean loss per role over the last 20 steps of this call.
        images_per_s: training images per second of this call (this rank).
        data_wait: share of step time spent waiting for the next batch.
        skipped_images: unreadable images skipped (``{"skipped", "seen", "first"}``).
        validation: top-1 of the min and max subnets at the last validation, by role.
    """

    step: int
    seconds: float
    checkpoint: Path | None
    log: Path | None
    losses: dict[str, float]
    images_per_s: float = 0.0
    data_wait: float = 0.0
    skipped_images: dict[str, Any] = dataclasses.field(default_factory=dict)
    validation: dict[str, float] = dataclasses.field(default_factory=dict)


class SupernetTrainer:
    """Trains a supernet with a sampler (see the module docstring).

    Args:
        supernet: the supernet (moved to ``device``).
        sampler: the sampling rule, seeded identically on every rank.
        data: the data source (in memory or streaming); its ``input_size`` must be the config's.
        config: hyper-parameters.
        out_dir: where ``last.ckpt``, ``train_log.csv`` and ``tb/`` go; ``None`` writes nothing.
        device: compute device.
        progress: show a progress bar (rank 0 only; see :class:`nasforge.progress.ProgressBar`).
        run_info: extra JSON recorded in the checkpoint config (data spec, sampler options, ...).
        teacher: an external teacher model; every subnet then distils from it.
        callbacks: more :class:`~nasforge.supernet.training.callbacks.Callback` s, run after the
            built-in ones (:attr:`callbacks` lists them all, in order).
    """

    def __init__(
        self,
        supernet: Supernet,
        sampler: BaseSampler,
        data: BaseImageSource,
        config: TrainConfig,
        out_dir: Path | None = None,
        *,
        device: torch.device | str = "cpu",
        progress: bool = False,
        run_info: dict[str, Any] | None = None,
        teacher: nn.Module | None = None,
        callbacks: list[cbs.Callback] | None = None,
    ) -> None:
        _check_components(supernet, sampler, data, config)
        self.device = torch.device(device)
        check_precision(config.precision, self.device)
        self.model = supernet.to(self.device)
        self._layout = torch.channels_last if config.channels_last else torch.contiguous_format
        #: how a subnet runs on a batch (images, language model, seq2seq: the data's ``task``)
        self.task = task_for(data, self._layout)
        if config.channels_last:
            # Module.to(memory_format=...) exists at runtime; torch's stubs lack the overload
            cast(Any, self.model).to(memory_format=torch.channels_last)
        self.sampler = sampler
        self.data = data
        self.config = config
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.progress = progress
        self.run_info = dict(run_info or {})
        self.teacher = teacher.to(self.device).eval() if teacher is not None else None
        self.rank, self.world_size = rank_and_world()
        if config.batch_size < self.world_size:
            raise InvalidInputError(f"batch size {config.batch_size} must be >= number of "
                                    f"processes {self.world_size}")
        if config.dropout is not None:
            for m in self.model.modules():
                if isinstance(m, nn.Dropout):
                    m.p = config.dropout
        broadcast_state(self.model)
        self.slice_grads = self.model.enable_slice_grads()
        self.optimizer = build_optimizer(self.model, config.optimizer, config.peak_lr,
                                         config.weight_decay, config.momentum,
                                         slice_grads=self.slice_grads)
        self.scheduler = cosine_with_warmup(self.optimizer, config.steps, config.warmup_steps,
                                            config.min_lr_ratio)
        self.ema = ModelEMA(self.model, config.ema_decay) if config.ema_decay else None
        self._distill = (DISTILL_LOSSES.get(config.distill) if config.distill != "none"
                         else None)
        self.scaler = LossScaler(enabled=config.precision == "fp16")
        self.allreduce_calls = 0
        self.step = 0
        self.position: tuple[int, int] = (0, 0)
        self.tracker = CorruptImageTracker(data.max_bad_share, data.num_train)
        self.validation: dict[str, float] = {}
        #: whether the global RNGs are set for this run (seeded by :meth:`fit`, or restored)
        self.seeded = False
        self._batches: Iterator[Batch] | None = None
        self.throughput = cbs.Throughput()
        self.callbacks: list[cbs.Callback] = [*self._default_callbacks(), *(callbacks or [])]

    def _default_callbacks(self) -> list[cbs.Callback]:
        """Throughput, progress bar, validation, TensorBoard, CSV log, checkpoint cadence."""
        cfg = self.config
        validation = cbs.Validation(cfg.val_every_epochs)
        return [self.throughput, cbs.ProgressBarCallback(self.throughput, self.progress),
                validation, cbs.TensorBoard(self.throughput, validation), cbs.CSVLog(),
                cbs.ModelCheckpoint(cfg.checkpoint_every, cfg.checkpoint_minutes,
                                    cfg.checkpoint_every_epochs)]

    @property
    def checkpoint_path(self) -> Path | None:
        return self.out_dir / CHECKPOINT_NAME if self.out_dir is not None else None

    @property
    def log_path(self) -> Path | None:
        return self.out_dir / cbs.LOG_NAME if self.out_dir is not None else None

    def checkpoint_config(self) -> dict[str, Any]:
        """The ``config`` block written into checkpoints (read back as
        :class:`~nasforge.supernet.checkpoint.RunConfig`)."""
        return connector.checkpoint_config(self)

    def resume(self, path: Path | None = None, *, reset_optimizer: bool = False) -> int:
        """Restore a checkpoint (default ``out_dir/last.ckpt``); returns the step it was at.

        The named restore steps are in :mod:`~nasforge.supernet.training.connector`.

        Raises:
            InvalidInputError: the checkpoint is missing, corrupted or incomplete.
            IncompatibleComponentsError: it belongs to another space, class count, input size,
                resolution scale or sampler.
        """
        return connector.resume(self, path, reset_optimizer=reset_optimizer)

    def save(self) -> Path | None:
        """Write ``out_dir/last.ckpt`` (rank 0) and the numbered copies; returns its path.

        Every callback's :meth:`~nasforge.supernet.training.callbacks.Callback.on_save_checkpoint`
        runs first (the CSV log writes its pending rows there).
        """
        for cb in self.callbacks:
            cb.on_save_checkpoint(self)
        return connector.save(self)

    def _next_batch(self) -> Batch:
        if self._batches is None:
            self._batches = self.data.train_batches(
                self.config.batch_size, seed=self.config.seed, start=self.position,
                rank=self.rank, world_size=self.world_size, augment=self.config.augment)
        while True:
            batch = next(self._batches)
            self.tracker.add(batch.bad, batch.seen)
            self.position = batch.position
            if len(batch.y):
                return batch

    def close(self) -> None:
        """Stop the data workers (a later :meth:`fit` restarts them where training stands)."""
        if self._batches is not None:
            close = getattr(self._batches, "close", None)
            if callable(close):
                close()
            self._batches = None

    def train_step(self, batch: Batch | None = None) -> list[dict[str, Any]]:
        """Run one step (on ``batch``, default the next one); returns one record per subnet."""
        if batch is None:
            batch = self._next_batch()
        self.sampler.set_progress(self.step, self.config.steps)
        plan = self.sampler.sample()
        chunks, lam = self._prepare(batch)
        lr = float(self.optimizer.param_groups[0]["lr"])
        stats, sizes = self._forward_backward(plan, chunks, lam)
        # one collective and one device-to-host sync for every subnet's losses
        means = all_reduce_means(torch.stack(stats)).tolist() if stats else []
        records = self._feedback(plan, sizes, means, lr)
        self._optimizer_step()
        self.step += 1
        return records

    def _prepare(self, batch: Batch) -> tuple[list[_Chunk], float]:
        """Normalise and mix the batch on the device, zero the gradients, and cut the batch
        into ``micro_batches`` strided chunks (with the teacher's targets, when there is one)."""
        cfg = self.config
        x = normalize(batch.x, self.device, self.data.mean or (), self.data.std or ())
        y = batch.y.to(self.device, non_blocking=True)
        mix_rng = np.random.default_rng((cfg.seed, 7, self.step))
        x, y_a, y_b, lam = mix_batch(x, y, cfg.mix, mix_rng)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)  # also drops the slice gradients
        k = min(cfg.micro_batches, len(y_a))
        chunks = [_Chunk(x[j::k], y_a[j::k], y_b[j::k]) for j in range(k)]
        if self.teacher is not None:
            with torch.no_grad(), autocast(cfg.precision, self.device):
                for c in chunks:
                    c.target = self.teacher(c.x).float()
        return chunks, lam

    def _forward_backward(self, plan: list[SampledArch], chunks: list[_Chunk], lam: float
                          ) -> tuple[list[torch.Tensor], list[int]]:
        """Forward and backward of every subnet on every chunk, each at its own resolution;
        returns per subnet ``[loss, ce]`` (summed over chunks) and the size it ran at."""
        cfg = self.config
        k = len(chunks)
        stats: list[torch.Tensor] = []
        sizes = []
        task = self.task
        for item in plan:
            self.model.set_active(item.arch)
            size = task.size(item.arch, self.data)
            sizes.append(size)
            acc = torch.zeros(2, device=self.device)
            for c in chunks:
                with autocast(cfg.precision, self.device):
                    raw = task.forward(self.model, c.x, size)
                logits, y_a = task.loss_view(raw.float(), c.y_a, size)
                if self._distill is None or c.target is None:
                    loss = label_smoothed_ce(logits, y_a, cfg.label_smoothing)
                    if lam < 1.0:
                        y_b = task.loss_view(raw.float(), c.y_b, size)[1]
                        loss = lam * loss + (1.0 - lam) * label_smoothed_ce(
                            logits, y_b, cfg.label_smoothing)
                    if item.role == "max" and self._distill is not None:
                        c.target = raw.detach().float()
                else:
                    loss = self._distill(logits, task.target_view(c.target, c.y_a, size))
                self.scaler.scale(loss / k).backward()
                acc += torch.stack([loss.detach(), F.cross_entropy(logits.detach(), y_a)]) / k
            stats.append(acc)
        return stats, sizes

    def _feedback(self, plan: list[SampledArch], sizes: list[int],
                  means: list[list[float]], lr: float) -> list[dict[str, Any]]:
        """Feed each subnet's rank-averaged CE back to the sampler; the step's log records.

        Raises:
            FloatingPointError: a non-finite loss.
        """
        records = []
        levels = getattr(self.sampler, "levels", None)
        for item, size, (loss_value, ce_value) in zip(plan, sizes, means, strict=True):
            if not math.isfinite(ce_value):
                raise FloatingPointError(
                    f"non-finite loss at step {self.step} for subnet {item.arch.arch_id}; lower "
                    f"the learning rate (lr={self.config.lr}) or enable gradient clipping"
                )
            self.sampler.feedback(item.arch, ce_value)
            level = item.level
            records.append({
                "step": self.step, "level": "" if level is None else level,
                "level_mflops": "" if level is None or levels is None else levels[level],
                "role": item.role, "arch_id": item.arch.arch_id,
                "mflops": round(self.model.space.flops(item.arch) / 1e6, 3),
                "resolution": size,
                "loss": round(loss_value, 6), "ce": round(ce_value, 6),
                "lr": lr,
            })
        return records

    def _optimizer_step(self) -> None:
        """Average gradients over ranks, unscale (fp16), clip, step the optimizer, the
        scheduler and the EMA; a non-finite fp16 step is skipped."""
        cfg = self.config
        params = list(self.model.parameters())
        grads = [g for _, _, g in gradients(params, self.slice_grads)]
        self.allreduce_calls += all_reduce_gradients(grads)
        finite = self.scaler.unscale_(grads)
        if finite:
            if cfg.grad_clip is not None:
                clip_grad_norm_(params, cfg.grad_clip, self.slice_grads)
            self.optimizer.step()
        else:
            logger.warning("step %d: non-finite fp16 gradients, step skipped (loss scale %g "
                           "-> %g)", self.step, self.scaler.scale_value,
                           self.scaler.scale_value * self.scaler.backoff_factor)
        self.scaler.update(finite)
        with warnings.catch_warnings():
            # a skipped fp16 step still advances the schedule (as timm does); torch warns
            # about "scheduler before optimizer" when the very first step is skipped
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step",
                                    category=UserWarning)
            self.scheduler.step()
        if self.ema is not None and finite:
            self.ema.update(self.model)

    def validate(self) -> dict[str, float]:
        """Top-1 of the min and max subnets (BN recalibrated), by role; BN statistics restored.
        Text tasks report the validation loss instead (``max_loss``, ``min_loss``, nats per
        token)."""
        out = self.task.validate(self.model, self.data,
                                 batch_size=min(128, self.config.batch_size * 2),
                                 seed=self.config.seed, device=self.device)
        self.validation = out
        return out

    def fit(self, stop_at: int | None = None) -> TrainResult:
        """Train until ``config.steps``: loop over :meth:`train_step`, calling the callbacks'
        hooks (:mod:`~nasforge.supernet.training.callbacks`).

        Args:
            stop_at: stop early after this step without a final checkpoint, as a killed run
                would (tests use it to check resuming).

        Returns:
            A :class:`TrainResult`.
        """
        if not self.seeded:
            torch.manual_seed(self.config.seed)  # dropout; restored from checkpoints on resume
            self.seeded = True
        end = min(self.config.steps, stop_at) if stop_at is not None else self.config.steps
        start_time = time.perf_counter()
        recent: list[dict[str, Any]] = []
        for cb in self.callbacks:
            cb.on_fit_start(self)
        try:
            while self.step < end:
                records = self._advance()
                recent = (recent + records)[-20 * max(len(records), 1):]
        finally:
            for cb in self.callbacks:
                cb.teardown(self)
            self.close()
        for cb in self.callbacks:
            cb.on_fit_end(self)
        return self._result(time.perf_counter() - start_time, recent)

    def _advance(self) -> list[dict[str, Any]]:
        """One turn of the loop: fetch a batch, :meth:`train_step`, the step hooks."""
        for cb in self.callbacks:
            cb.on_train_batch_start(self)
        epoch_before = self.position[0]
        batch = self._next_batch()
        for cb in self.callbacks:
            cb.on_train_step_start(self, batch)
        records = self.train_step(batch)
        ep = self.position[0]
        out = cbs.StepOutput(records, len(batch.y),
                         ep if ep > epoch_before and self.position[1] == 0 else None)
        for cb in self.callbacks:
            cb.on_train_step_end(self, out)
        return records

    def _result(self, seconds: float, recent: list[dict[str, Any]]) -> TrainResult:
        if self.tracker.count:
            logger.warning("skipped %d unreadable image(s) of %d read, e.g. %s",
                           self.tracker.count, self.tracker.seen, ", ".join(self.tracker.bad))
        losses: dict[str, list[float]] = {}
        for r in recent:
            losses.setdefault(r["role"], []).append(r["ce"])
        return TrainResult(self.step, seconds, self.checkpoint_path,
                           self.log_path if self.rank == 0 else None,
                           {k: float(np.mean(v)) for k, v in losses.items()},
                           self.throughput.images_per_s, self.throughput.data_wait,
                           self.tracker.summary(), dict(self.validation))


def _check_components(supernet: Supernet, sampler: BaseSampler, data: BaseImageSource,
                      config: TrainConfig) -> None:
    """Refuse a sampler, data source or config that does not fit the supernet.

    Raises:
        IncompatibleComponentsError: another space, class count, input size or resolution
            scale.
    """
    if supernet.space.name != sampler.space.name:
        raise IncompatibleComponentsError(
            f"sampler of space {sampler.space.name!r} given to a supernet of space "
            f"{supernet.space.name!r}"
        )
    if data.num_classes != supernet.num_classes:
        raise IncompatibleComponentsError(
            f"data {data.name!r} has {data.num_classes} classes, the supernet "
            f"{supernet.num_classes}; build the supernet with num_classes="
            f"{data.num_classes}"
        )
    if data.input_size != config.input_size:
        raise IncompatibleComponentsError(
            f"data was loaded at {data.input_size} px but the config trains at "
            f"{config.input_size} px"
        )
    if data.resolution_scale != config.resolution_scale:
        raise IncompatibleComponentsError(
            f"data was opened with resolution_scale={data.resolution_scale} but the config "
            f"trains with {config.resolution_scale}; open it with the config's scale"
        )


@dataclass
class _Chunk:
    """One micro-batch: images, the two label sets of a mixed batch, the distillation target."""

    x: torch.Tensor
    y_a: torch.Tensor
    y_b: torch.Tensor
    target: torch.Tensor | None = None
