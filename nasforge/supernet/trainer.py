"""The supernet training loop: sample subnets, accumulate their gradients, one optimizer step.

Papers: BigNAS (https://arxiv.org/abs/2003.11142) and AttentiveNAS
(https://arxiv.org/abs/2011.09011) for the sandwich step with in-place distillation; ElasticViT
(https://arxiv.org/abs/2303.09730) for complexity/performance-aware sampling, which plugs in as a
sampler.

One step (identical on every data-parallel rank):

1. ``sampler.sample()`` gives the step's subnets; the batch of the step is a pure function of
   ``(seed, step)`` (:class:`~nasforge.supernet.data.BatchStream`).
2. Each subnet runs forward and backward on the batch. The ``max`` subnet (or every subnet, when
   there is no teacher) learns from label-smoothed CE; the others distil from the max subnet's
   detached logits (or an external teacher's) with a loss from
   :data:`~nasforge.supernet.losses.DISTILL_LOSSES`. Each subnet's plain CE (rank-averaged) is fed
   back to the sampler.
3. Gradients are averaged over ranks, clipped, and one optimizer step and one scheduler step run;
   EMA (optional) folds the new weights in. The trainer enables the supernet's slice-gradient
   store, so gradients stay the size of the slices the step's subnets used and clipping and the
   optimizer step touch only those (:mod:`~nasforge.supernet.sliced_optim`); elsewhere the
   weights and their moments stay as they are.

Every ``checkpoint_every`` steps and at the end, rank 0 writes ``out_dir/last.ckpt``
(:mod:`~nasforge.supernet.checkpoint`) and appends per-subnet losses (step, level, role, FLOPs,
loss) to ``out_dir/train_log.csv``. :meth:`SupernetTrainer.resume` restores everything, so a killed
run continues bitwise identically to an uninterrupted one on CPU.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.supernet import checkpoint as ckpt_io
from nasforge.supernet.data import BatchStream
from nasforge.supernet.data import ImageData
from nasforge.supernet.distributed import all_reduce_gradients
from nasforge.supernet.distributed import all_reduce_mean
from nasforge.supernet.distributed import broadcast_buffers
from nasforge.supernet.distributed import rank_and_world
from nasforge.supernet.ema import ModelEMA
from nasforge.supernet.losses import DISTILL_LOSSES
from nasforge.supernet.losses import label_smoothed_ce
from nasforge.supernet.optim import build_optimizer
from nasforge.supernet.optim import cosine_with_warmup
from nasforge.supernet.sliced_optim import clip_grad_norm_
from nasforge.supernet.sliced_optim import gradients

if TYPE_CHECKING:
    from nasforge.supernet.base import Supernet
    from nasforge.supernet.samplers.base import BaseSampler

__all__ = ["CHECKPOINT_NAME", "LOG_NAME", "SupernetTrainer", "TrainConfig", "TrainResult"]

CHECKPOINT_NAME = "last.ckpt"
LOG_NAME = "train_log.csv"
_LOG_FIELDS = ("step", "level", "level_mflops", "role", "arch_id", "mflops", "loss", "ce", "lr")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a supernet training run.

    Attributes:
        steps: optimizer steps.
        batch_size: global batch size (all ranks together).
        lr: peak learning rate.
        min_lr_ratio: final learning rate as a share of ``lr`` (cosine schedule).
        warmup_steps: linear warm-up steps.
        weight_decay: decay of conv/linear weights (none on norms, biases, attention biases).
        optimizer: ``adamw`` or ``sgd``.
        momentum: SGD momentum.
        grad_clip: max global gradient norm; ``None`` disables clipping.
        label_smoothing: label smoothing of the CE on labels.
        distill: distillation loss of non-teacher subnets: ``alpha`` (AlphaNet), ``kd``, ``none``.
        ema_decay: EMA of the weights; ``None`` disables it.
        seed: seed of the batches, the sampler (set by the caller) and torch's generator.
        checkpoint_every: steps between checkpoints (and log flushes).
        augment: random shifts of up to 2 px.
        input_size: training (proxy) input size in pixels.
    """

    steps: int = 160
    batch_size: int = 32
    lr: float = 1e-3
    min_lr_ratio: float = 0.02
    warmup_steps: int = 10
    weight_decay: float = 0.05
    optimizer: str = "adamw"
    momentum: float = 0.9
    grad_clip: float | None = 1.0
    label_smoothing: float = 0.1
    distill: str = "alpha"
    ema_decay: float | None = None
    seed: int = 0
    checkpoint_every: int = 50
    augment: bool = True
    input_size: int = 32

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.checkpoint_every < 1:
            raise InvalidInputError(
                f"steps, batch size and checkpoint interval must be >= 1, but got "
                f"steps={self.steps}, batch_size={self.batch_size}, "
                f"checkpoint_every={self.checkpoint_every}"
            )
        if self.distill != "none" and self.distill not in DISTILL_LOSSES:
            raise InvalidInputError(DISTILL_LOSSES.unknown_message(self.distill) + ", none")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (stored in checkpoints)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`InvalidInputError`."""
        names = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(data) - names)
        if extra:
            raise InvalidInputError(f"unknown training option(s) {extra}; known: {sorted(names)}")
        return cls(**data)


@dataclass(frozen=True)
class TrainResult:
    """What a finished (or stopped) :meth:`SupernetTrainer.fit` reports.

    Attributes:
        step: optimizer steps done in total.
        seconds: wall time of this call.
        checkpoint: the last checkpoint written (``None`` without ``out_dir``).
        log: the CSV log (``None`` without ``out_dir``).
        losses: mean loss per role over the last 20 steps of this call.
    """

    step: int
    seconds: float
    checkpoint: Path | None
    log: Path | None
    losses: dict[str, float]


class SupernetTrainer:
    """Trains a supernet with a sampler (see the module docstring).

    Args:
        supernet: the supernet (moved to ``device``).
        sampler: the sampling rule, seeded identically on every rank.
        data: training data (``train_x``/``train_y``; validation is not used here).
        config: hyper-parameters.
        out_dir: where ``last.ckpt`` and ``train_log.csv`` go; ``None`` writes nothing.
        device: compute device.
        progress: show a rich progress bar (rank 0 only).
        run_info: extra JSON recorded in the checkpoint config (data spec, sampler options, ...).
        teacher: an external teacher model; every subnet then distils from it.
    """

    def __init__(
        self,
        supernet: Supernet,
        sampler: BaseSampler,
        data: ImageData,
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
        self.device = torch.device(device)
        self.model = supernet.to(self.device)
        self.sampler = sampler
        self.data = data
        self.config = config
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.progress = progress
        self.run_info = dict(run_info or {})
        self.teacher = teacher.to(self.device).eval() if teacher is not None else None
        self.rank, self.world_size = rank_and_world()
        self.stream = BatchStream(data.train_x, data.train_y, config.batch_size, config.seed,
                                  augment=config.augment, rank=self.rank,
                                  world_size=self.world_size)
        self.slice_grads = self.model.enable_slice_grads()
        self.optimizer = build_optimizer(self.model, config.optimizer, config.lr,
                                         config.weight_decay, config.momentum,
                                         slice_grads=self.slice_grads)
        self.scheduler = cosine_with_warmup(self.optimizer, config.steps, config.warmup_steps,
                                            config.min_lr_ratio)
        self.ema = ModelEMA(self.model, config.ema_decay) if config.ema_decay else None
        self._distill = (DISTILL_LOSSES.get(config.distill) if config.distill != "none"
                         else None)
        self.step = 0
        self._seeded = False

    # ---- paths and config --------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return self.out_dir / CHECKPOINT_NAME if self.out_dir is not None else None

    @property
    def log_path(self) -> Path | None:
        return self.out_dir / LOG_NAME if self.out_dir is not None else None

    def checkpoint_config(self) -> dict[str, Any]:
        """The ``config`` block written into checkpoints."""
        from nasforge import __version__

        return {
            **self.model.config(),
            "input_size": self.config.input_size,
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
            IncompatibleComponentsError: it belongs to another space, class count, input size
                or sampler.
        """
        target = Path(path) if path is not None else self.checkpoint_path
        if target is None:
            raise InvalidInputError("resume needs a checkpoint path or an out_dir")
        ck = ckpt_io.read_checkpoint(target, expect_space=self.model.space.name)
        cfg = ck.config
        for key, mine in (("num_classes", self.model.num_classes),
                          ("input_size", self.config.input_size),
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
            ckpt_io.restore_global_rngs(ck.state["rng"], ck.tensors.get("rng.torch"))
        except (KeyError, ValueError, TypeError, RuntimeError) as e:
            if isinstance(e, IncompatibleComponentsError | InvalidInputError):
                raise
            raise InvalidInputError(f"checkpoint {ck.path} is corrupted: {e!r}") from None
        self.step = ck.step
        self._seeded = True
        self._truncate_log(self.step)
        return self.step

    def _truncate_log(self, step: int) -> None:
        log = self.log_path
        if log is None or self.rank != 0 or not log.exists():
            return
        with log.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) < step]
        with log.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=_LOG_FIELDS)
            w.writeheader()
            w.writerows(rows)

    # ---- training ----------------------------------------------------------------------------
    def save(self) -> Path | None:
        """Write ``out_dir/last.ckpt`` (rank 0); returns its path."""
        path = self.checkpoint_path
        if path is None or self.rank != 0:
            return path
        return ckpt_io.write_checkpoint(
            path, model=self.model, config=self.checkpoint_config(), step=self.step,
            optimizer=self.optimizer, scheduler=self.scheduler,
            sampler_state=self.sampler.state_dict(),
            ema_state=self.ema.state_dict() if self.ema is not None else None,
        )

    def train_step(self) -> list[dict[str, Any]]:
        """Run one step; returns one log record per trained subnet."""
        cfg = self.config
        self.sampler.set_progress(self.step, cfg.steps)
        plan = self.sampler.sample()
        x, y = self.stream.batch(self.step)
        x, y = x.to(self.device), y.to(self.device)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)  # also drops the slice gradients
        target: torch.Tensor | None = None
        if self.teacher is not None:
            with torch.no_grad():
                target = self.teacher(x)
        lr = float(self.optimizer.param_groups[0]["lr"])
        records = []
        for item in plan:
            self.model.set_active(item.arch)
            logits = self.model(x)
            ce = F.cross_entropy(logits.detach(), y)
            if self._distill is None or target is None:
                loss = label_smoothed_ce(logits, y, cfg.label_smoothing)
                if item.role == "max" and self._distill is not None:
                    target = logits.detach()
            else:
                loss = self._distill(logits, target)
            loss.backward()
            ce_value = all_reduce_mean(float(ce))
            if not math.isfinite(ce_value):
                raise FloatingPointError(
                    f"non-finite loss at step {self.step} for subnet {item.arch.arch_id}; lower "
                    f"the learning rate (lr={cfg.lr}) or enable gradient clipping"
                )
            self.sampler.feedback(item.arch, ce_value)
            level = item.level
            levels = getattr(self.sampler, "levels", None)
            records.append({
                "step": self.step, "level": "" if level is None else level,
                "level_mflops": "" if level is None or levels is None else levels[level],
                "role": item.role, "arch_id": item.arch.arch_id,
                "mflops": round(self.model.space.flops(item.arch) / 1e6, 3),
                "loss": round(float(loss.detach()), 6), "ce": round(ce_value, 6),
                "lr": lr,
            })
        params = list(self.model.parameters())
        all_reduce_gradients([g for _, _, g in gradients(params, self.slice_grads)])
        if cfg.grad_clip is not None:
            clip_grad_norm_(params, cfg.grad_clip, self.slice_grads)
        self.optimizer.step()
        self.scheduler.step()
        broadcast_buffers(self.model)
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1
        return records

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
            if not log.exists():
                with log.open("w", newline="") as f:
                    csv.DictWriter(f, fieldnames=_LOG_FIELDS).writeheader()
        bar = _progress(self.progress and self.rank == 0)
        with bar:
            task = bar.add_task("supernet", total=cfg.steps, completed=self.step, info="")
            while self.step < end:
                records = self.train_step()
                pending += records
                recent = (recent + records)[-20 * max(len(records), 1):]
                bar.update(task, completed=self.step, info=_describe(records))
                if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                    self._flush(log, pending)
                    pending = []
                    self.save()
        if pending:
            self._flush(log, pending)
        losses: dict[str, list[float]] = {}
        for r in recent:
            losses.setdefault(r["role"], []).append(r["ce"])
        return TrainResult(self.step, time.perf_counter() - start_time, self.checkpoint_path,
                           log, {k: float(np.mean(v)) for k, v in losses.items()})

    @staticmethod
    def _flush(log: Path | None, rows: list[dict[str, Any]]) -> None:
        if log is None or not rows:
            return
        with log.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=_LOG_FIELDS).writerows(rows)


def _describe(records: list[dict[str, Any]]) -> str:
    if not records:
        return ""
    parts = [f"{r['role']} {r['ce']:.3f}" for r in records[:4]]
    lvl = records[-1]["level_mflops"]
    return (f"level {lvl:g}M | " if lvl != "" else "") + " ".join(parts)


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None


def _progress(enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from rich.progress import BarColumn
    from rich.progress import MofNCompleteColumn
    from rich.progress import Progress
    from rich.progress import TextColumn
    from rich.progress import TimeElapsedColumn
    from rich.progress import TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"))
