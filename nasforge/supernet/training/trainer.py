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
   (rank-averaged) is fed
   back to the sampler.
3. Gradients are averaged over ranks (in buckets, :mod:`~nasforge.supernet.training.distributed`;
   BatchNorm running statistics stay per rank), unscaled and checked when ``precision`` is
   ``fp16`` (a non-finite step is skipped, :mod:`~nasforge.supernet.training.precision`), clipped,
   and
   one optimizer step and one scheduler step run; EMA (optional) folds the new weights in.
   Forward passes run under the ``precision``'s autocast; losses are computed in float32.
   With ``micro_batches`` = k each rank's batch is split into k strided parts whose gradients
   accumulate. The trainer enables the supernet's slice-gradient
   store, so gradients stay the size of the slices the step's subnets used and clipping and the
   optimizer step touch only those (:mod:`~nasforge.supernet.training.sliced_optim`); elsewhere the
   weights and their moments stay as they are.

Every ``checkpoint_every`` steps (or ``checkpoint_minutes`` minutes, or
``checkpoint_every_epochs`` epochs) and at the end, rank 0
writes ``out_dir/last.ckpt`` atomically (:mod:`~nasforge.supernet.checkpoint`), keeps the last
``keep_last`` numbered copies ``step-NNNNNNN.ckpt``, and appends per-subnet losses (step, level,
role, FLOPs, resolution, loss) to ``out_dir/train_log.csv``; with ``tensorboard`` installed, the
same scalars (and images/s, data-wait share, lr, min/max validation top-1) go to TensorBoard
event files in ``out_dir/tb``. :meth:`SupernetTrainer.resume` restores everything (weights,
optimizer, scheduler, sampler, data position, python/numpy/torch CPU and CUDA RNGs), so a killed
run continues bitwise identically to an uninterrupted one on CPU.

Progress goes through :class:`nasforge.progress.ProgressBar` (images/s, data-wait share,
per-subnet losses, lr, ETA).
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
import os
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

from nasforge.data.base import BaseImageSource
from nasforge.data.base import Batch
from nasforge.data.base import CorruptImageTracker
from nasforge.data.transforms import mix_batch
from nasforge.data.transforms import normalize
from nasforge.data.transforms import resize_batch
from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.progress import ProgressBar
from nasforge.supernet import checkpoint as ckpt_io
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
from nasforge.supernet.training.telemetry import Telemetry

if TYPE_CHECKING:
    from nasforge.supernet.base import Supernet
    from nasforge.supernet.training.samplers.base import BaseSampler

__all__ = ["CHECKPOINT_NAME", "LOG_NAME", "SupernetTrainer", "TrainConfig", "TrainResult"]

CHECKPOINT_NAME = "last.ckpt"
LOG_NAME = "train_log.csv"
_LOG_FIELDS = ("step", "level", "level_mflops", "role", "arch_id", "mflops", "resolution",
               "loss", "ce", "lr")

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
    ) -> None:
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
        self.device = torch.device(device)
        check_precision(config.precision, self.device)
        self.model = supernet.to(self.device)
        self._layout = torch.channels_last if config.channels_last else torch.contiguous_format
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
        self._seeded = False
        self._batches: Iterator[Batch] | None = None

    # ---- paths and config --------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return self.out_dir / CHECKPOINT_NAME if self.out_dir is not None else None

    @property
    def log_path(self) -> Path | None:
        return self.out_dir / LOG_NAME if self.out_dir is not None else None

    def checkpoint_config(self) -> dict[str, Any]:
        """The ``config`` block written into checkpoints (read back as
        :class:`~nasforge.supernet.checkpoint.RunConfig`)."""
        from nasforge import __version__

        return {
            **self.model.config(),
            "input_size": self.config.input_size,
            "resolution_scale": self.config.resolution_scale,
            "data": self.data.name,
            "sampler": self.sampler.name,
            "train": self.config.to_dict(),
            "nasforge_version": __version__,
            **self.run_info,
        }

    # ---- resume ------------------------------------------------------------------------------
    def resume(self, path: Path | None = None) -> int:
        """Restore a checkpoint (default ``out_dir/last.ckpt``); returns the step it was at.

        Raises:
            InvalidInputError: the checkpoint is missing, corrupted or incomplete.
            IncompatibleComponentsError: it belongs to another space, class count, input size,
                resolution scale or sampler.
        """
        target = Path(path) if path is not None else self.checkpoint_path
        if target is None:
            raise InvalidInputError("resume needs a checkpoint path or an out_dir")
        ck = ckpt_io.read_checkpoint(target, expect_space=self.model.space.name)
        cfg = ck.config
        for key, mine in (("num_classes", self.model.num_classes),
                          ("input_size", self.config.input_size),
                          ("resolution_scale", self.config.resolution_scale),
                          ("sampler", self.sampler.name)):
            if cfg.get(key) != mine:
                raise IncompatibleComponentsError(
                    f"checkpoint {ck.path} was trained with {key} = {cfg.get(key)!r}, this run "
                    f"uses {mine!r}; resume with the same settings or start a new --out"
                )
        for key in ("optimizer", "scheduler", "sampler", "rng"):
            if key not in ck.state:
                raise InvalidInputError(f"checkpoint {ck.path} lacks {key!r}; it cannot resume "
                                        "training (it may be an export-only checkpoint)")
        try:
            ckpt_io.load_model_state(self.model, ck, "model")
            self.optimizer.load_state_dict(ckpt_io.optimizer_state(ck))
            self.scheduler.load_state_dict(ck.state["scheduler"])
            if self.ema is not None:
                ema = ck.group("ema")
                self.ema.load_state_dict(ema if ema else self.model.state_dict())
            self.sampler.load_state_dict(ck.state["sampler"])
            ckpt_io.restore_global_rngs(ck.state["rng"], ck.tensors.get("rng.torch"),
                                        ck.group("rng.cuda"))
            scaler = ck.state.get("extra", {}).get("loss_scaler")
            if scaler:
                self.scaler.load_state_dict(scaler)
            pos = ck.state.get("extra", {}).get("data_position")
            self.position = (int(pos[0]), int(pos[1])) if pos else (0, ck.step)
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as e:
            if isinstance(e, IncompatibleComponentsError | InvalidInputError):
                raise
            raise InvalidInputError(f"checkpoint {ck.path} is corrupted: {e!r}") from None
        self.step = ck.step
        self._seeded = True
        self._batches = None
        self._truncate_log(self.step)
        return self.step

    def _truncate_log(self, step: int) -> None:
        """Keep the log rows of steps before ``step`` (the checkpoint's): the resumed run
        writes the later ones again. Rows cut short by a kill are dropped too; the rewrite is
        atomic."""
        log = self.log_path
        if log is None or self.rank != 0 or not log.exists():
            return
        with log.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if _complete(r) and int(r["step"]) < step]
        tmp = log.with_name(log.name + ".tmp")
        with tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=_LOG_FIELDS, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, log)

    # ---- training ----------------------------------------------------------------------------
    def save(self) -> Path | None:
        """Write ``out_dir/last.ckpt`` (rank 0) and the numbered copies; returns its path."""
        path = self.checkpoint_path
        if path is None or self.rank != 0:
            return path
        ckpt_io.write_checkpoint(
            path, model=self.model, config=self.checkpoint_config(), step=self.step,
            optimizer=self.optimizer, scheduler=self.scheduler,
            sampler_state=self.sampler.state_dict(),
            ema_state=self.ema.state_dict() if self.ema is not None else None,
            extra={"data_position": list(self.position),
                   "skipped_images": self.tracker.summary(),
                   "loss_scaler": self.scaler.state_dict()},
        )
        if self.config.keep_last > 0:
            ckpt_io.keep_numbered(path, self.step, self.config.keep_last)
        return path

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
        cfg = self.config
        if batch is None:
            batch = self._next_batch()
        self.sampler.set_progress(self.step, cfg.steps)
        plan = self.sampler.sample()
        x = normalize(batch.x, self.device, self.data.mean or (), self.data.std or ())
        y = batch.y.to(self.device, non_blocking=True)
        mix_rng = np.random.default_rng((cfg.seed, 7, self.step))
        x, y_a, y_b, lam = mix_batch(x, y, cfg.mix, mix_rng)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)  # also drops the slice gradients
        k = min(cfg.micro_batches, len(y_a))
        chunks = [(x[j::k], y_a[j::k], y_b[j::k]) for j in range(k)]
        targets: list[torch.Tensor | None] = [None] * k
        if self.teacher is not None:
            with torch.no_grad(), autocast(cfg.precision, self.device):
                targets = [self.teacher(xc).float() for xc, _, _ in chunks]
        lr = float(self.optimizer.param_groups[0]["lr"])
        stats: list[torch.Tensor] = []  # per subnet: [loss, ce] summed over micro-batches
        sizes = []
        for item in plan:
            self.model.set_active(item.arch)
            size = self.data.eval_size(getattr(item.arch, "resolution", None))
            sizes.append(size)
            acc = torch.zeros(2, device=self.device)
            for j, (xc, ya, yb) in enumerate(chunks):
                with autocast(cfg.precision, self.device):
                    logits = self.model(resize_batch(xc, size).contiguous(
                        memory_format=self._layout))
                logits = logits.float()
                target = targets[j]
                if self._distill is None or target is None:
                    loss = label_smoothed_ce(logits, ya, cfg.label_smoothing)
                    if lam < 1.0:
                        loss = lam * loss + (1.0 - lam) * label_smoothed_ce(
                            logits, yb, cfg.label_smoothing)
                    if item.role == "max" and self._distill is not None:
                        targets[j] = logits.detach()
                else:
                    loss = self._distill(logits, target)
                self.scaler.scale(loss / k).backward()
                acc += torch.stack([loss.detach(), F.cross_entropy(logits.detach(), ya)]) / k
            stats.append(acc)
        # one collective and one device-to-host sync for every subnet's losses
        means = all_reduce_means(torch.stack(stats)).tolist() if stats else []
        records = []
        levels = getattr(self.sampler, "levels", None)
        for item, size, (loss_value, ce_value) in zip(plan, sizes, means, strict=True):
            if not math.isfinite(ce_value):
                raise FloatingPointError(
                    f"non-finite loss at step {self.step} for subnet {item.arch.arch_id}; lower "
                    f"the learning rate (lr={cfg.lr}) or enable gradient clipping"
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
        self.step += 1
        return records

    def validate(self) -> dict[str, float]:
        """Top-1 of the min and max subnets (BN recalibrated), by role; BN statistics restored."""
        from nasforge.supernet.evaluate import evaluate_subnet

        space = self.model.space
        saved = {k: v.clone() for k, v in self.model.state_dict().items()
                 if "running" in k or "num_batches" in k}
        rng_state = torch.get_rng_state()
        out = {}
        try:
            for role, arch in (("max", space.max_arch()), ("min", space.min_arch())):
                acc = evaluate_subnet(self.model, arch, self.data, recal_batches=2,
                                      batch_size=min(128, self.config.batch_size * 2),
                                      seed=self.config.seed, device=self.device)
                out[role] = acc.top1
        finally:
            self.model.load_state_dict(saved, strict=False)
            torch.set_rng_state(rng_state)
            self.model.train()
        self.validation = out
        return out

    def fit(self, stop_at: int | None = None) -> TrainResult:
        """Train until ``config.steps``.

        Args:
            stop_at: stop early after this step without a final checkpoint, as a killed run
                would (tests use it to check resuming).

        Returns:
            A :class:`TrainResult`.
        """
        cfg = self.config
        if not self._seeded:
            torch.manual_seed(cfg.seed)  # dropout; restored from checkpoints on resume
            self._seeded = True
        end = min(cfg.steps, stop_at) if stop_at is not None else cfg.steps
        start_time = time.perf_counter()
        recent: list[dict[str, Any]] = []
        pending: list[dict[str, Any]] = []
        log = self.log_path if self.rank == 0 else None
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            if not log.exists() or self.step == 0:
                # a run from step 0 starts its log afresh (rows of a run killed before its
                # first checkpoint would otherwise stay and repeat)
                with log.open("w", newline="") as f:
                    csv.DictWriter(f, fieldnames=_LOG_FIELDS).writeheader()
        tele = Telemetry(self.out_dir / "tb" if self.out_dir is not None and self.rank == 0
                         else None)
        images, wait_s, busy_s = 0, 0.0, 0.0
        last_save = time.monotonic()
        desc = f"train {self.model.space.name}"
        try:
            with ProgressBar(desc, total=cfg.steps, completed=self.step,
                             enabled=self.progress and self.rank == 0) as bar:
                while self.step < end:
                    t0 = time.perf_counter()
                    epoch_before = self.position[0]
                    batch = self._next_batch()
                    t1 = time.perf_counter()
                    records = self.train_step(batch)
                    t2 = time.perf_counter()
                    wait_s, busy_s, images = wait_s + t1 - t0, busy_s + t2 - t0, images + len(
                        batch.y)
                    pending += records
                    recent = (recent + records)[-20 * max(len(records), 1):]
                    rate = images / max(busy_s, 1e-9)
                    share = wait_s / max(busy_s, 1e-9)
                    bar.update(self.step, **_fields(records, rate, share))
                    tele.step(self.step, records, rate, share)
                    epoch_done = (self.position[0] > epoch_before and self.position[1] == 0)
                    ep = self.position[0]
                    if epoch_done and cfg.val_every_epochs and ep % cfg.val_every_epochs == 0:
                        val = self.validate()
                        tele.scalars(self.step, {f"val/top1_{k}": v for k, v in val.items()})
                        logger.info("epoch %d: validation top-1 %s", ep, ", ".join(
                            f"{k} {v:.4f}" for k, v in val.items()))
                    due_time = (cfg.checkpoint_minutes is not None and time.monotonic()
                                - last_save >= 60.0 * cfg.checkpoint_minutes)
                    if ((cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0)
                            or self.step == cfg.steps
                            or due_time or (epoch_done and cfg.checkpoint_every_epochs
                                            and ep % cfg.checkpoint_every_epochs == 0)):
                        self._flush(log, pending)
                        pending = []
                        self.save()
                        last_save = time.monotonic()
        finally:
            self.close()
            tele.close()
        if pending:
            self._flush(log, pending)
        if self.tracker.count:
            logger.warning("skipped %d unreadable image(s) of %d read, e.g. %s",
                           self.tracker.count, self.tracker.seen, ", ".join(self.tracker.bad))
        losses: dict[str, list[float]] = {}
        for r in recent:
            losses.setdefault(r["role"], []).append(r["ce"])
        return TrainResult(self.step, time.perf_counter() - start_time, self.checkpoint_path,
                           log, {k: float(np.mean(v)) for k, v in losses.items()},
                           images / max(busy_s, 1e-9), wait_s / max(busy_s, 1e-9),
                           self.tracker.summary(), dict(self.validation))

    @staticmethod
    def _flush(log: Path | None, rows: list[dict[str, Any]]) -> None:
        if log is None or not rows:
            return
        with log.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=_LOG_FIELDS).writerows(rows)
            f.flush()
            os.fsync(f.fileno())


def _complete(row: dict[str, Any]) -> bool:
    """Whether a CSV log row has every field (a kill mid-write leaves a short last line)."""
    if None in row or any(row.get(k) in (None, "") for k in ("step", "role", "loss", "lr")):
        return False
    try:
        int(row["step"])
        float(row["loss"])
        float(row["lr"])
    except ValueError:
        return False
    return True


def _fields(records: list[dict[str, Any]], rate: float, share: float) -> dict[str, str]:
    """Progress-bar fields: images/s, data-wait share, lr, per-subnet losses."""
    out = {"img/s": f"{rate:.0f}", "wait": f"{100 * share:.0f}%"}
    if records:
        out["lr"] = f"{records[-1]['lr']:.2e}"
        lvl = records[-1]["level_mflops"]
        if lvl != "":
            out["level"] = f"{lvl:g}M"
        for r in records[:4]:
            out[f"{r['role']}@{r['resolution']}"] = f"{r['ce']:.3f}"
    return out
