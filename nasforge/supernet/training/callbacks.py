"""The concerns of the training loop beside the step itself, as callbacks (Lightning's seam).

:meth:`SupernetTrainer.fit <nasforge.supernet.training.trainer.SupernetTrainer.fit>` calls, in
the order of its callback list:

1. :meth:`Callback.on_fit_start` once, before the first step;
2. per step, :meth:`Callback.on_train_batch_start` (before the batch is fetched),
   :meth:`Callback.on_train_step_start` (batch in hand) and :meth:`Callback.on_train_step_end`
   (with a :class:`StepOutput`: the step's records and, at an epoch's last step, the epoch);
3. :meth:`Callback.teardown` on any exit (an exception too), then :meth:`Callback.on_fit_end`
   when the loop ran to its end.

:meth:`SupernetTrainer.save` calls :meth:`Callback.on_save_checkpoint` before it writes.

The built-in callbacks, in the order the trainer runs them: :class:`Throughput` (images/s and
the share of step time spent waiting for data), :class:`ProgressBarCallback`,
:class:`Validation` (min/max top-1 every ``val_every_epochs``), :class:`TensorBoard` (the
scalars of :class:`~nasforge.supernet.training.telemetry.Telemetry`), :class:`CSVLog`
(``train_log.csv``: rows are written just before each checkpoint and at the end, so the log
never runs ahead of the checkpoint) and :class:`ModelCheckpoint` (cadence by steps, minutes and
epochs, and always at the last step).

Example:
    >>> class CountSteps(Callback):
    ...     def __init__(self) -> None:
    ...         self.steps = 0
    ...     def on_train_step_end(self, trainer: Any, out: StepOutput) -> None:
    ...         self.steps += 1
    >>> CountSteps().steps
    0
"""

from __future__ import annotations

import csv
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from nasforge.progress import ProgressBar
from nasforge.supernet.training.telemetry import Telemetry

if TYPE_CHECKING:
    from nasforge.data import Batch
    from nasforge.supernet.training.trainer import SupernetTrainer

__all__ = [
    "LOG_FIELDS",
    "LOG_NAME",
    "CSVLog",
    "Callback",
    "ModelCheckpoint",
    "ProgressBarCallback",
    "StepOutput",
    "TensorBoard",
    "Throughput",
    "Validation",
    "truncate_log",
]

LOG_NAME = "train_log.csv"
#: The columns of ``train_log.csv``, one row per subnet and step.
LOG_FIELDS = ("step", "level", "level_mflops", "role", "arch_id", "mflops", "resolution",
              "loss", "ce", "lr")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepOutput:
    """What one training step hands to :meth:`Callback.on_train_step_end`.

    Attributes:
        records: one log record per subnet (the CSV columns of :data:`LOG_FIELDS`).
        images: images in the step's batch (this rank).
        epoch_end: the epoch count reached when this step finished an epoch, else ``None``.
    """

    records: list[dict[str, Any]]
    images: int
    epoch_end: int | None


class Callback:
    """A hook set called by the training loop (see the module docstring for the order).

    Every hook does nothing by default; a subclass overrides the ones it needs.
    """

    def on_fit_start(self, trainer: SupernetTrainer) -> None:
        """Before the first step of :meth:`~SupernetTrainer.fit`."""

    def on_train_batch_start(self, trainer: SupernetTrainer) -> None:
        """Before the step's batch is fetched."""

    def on_train_step_start(self, trainer: SupernetTrainer, batch: Batch) -> None:
        """After the batch is fetched, before the step runs."""

    def on_train_step_end(self, trainer: SupernetTrainer, out: StepOutput) -> None:
        """After the optimizer step (``trainer.step`` counts it already)."""

    def on_save_checkpoint(self, trainer: SupernetTrainer) -> None:
        """Just before :meth:`~SupernetTrainer.save` writes a checkpoint."""

    def teardown(self, trainer: SupernetTrainer) -> None:
        """On every exit of the loop, an exception included."""

    def on_fit_end(self, trainer: SupernetTrainer) -> None:
        """After the loop ran to its end (not after an exception)."""


class Throughput(Callback):
    """Images per second and the share of step time spent waiting for the next batch."""

    def __init__(self) -> None:
        self.images, self.wait_s, self.busy_s = 0, 0.0, 0.0
        self._t0 = self._t1 = 0.0

    @property
    def images_per_s(self) -> float:
        return self.images / max(self.busy_s, 1e-9)

    @property
    def data_wait(self) -> float:
        return self.wait_s / max(self.busy_s, 1e-9)

    def on_fit_start(self, trainer: SupernetTrainer) -> None:
        self.images, self.wait_s, self.busy_s = 0, 0.0, 0.0

    def on_train_batch_start(self, trainer: SupernetTrainer) -> None:
        self._t0 = time.perf_counter()

    def on_train_step_start(self, trainer: SupernetTrainer, batch: Batch) -> None:
        self._t1 = time.perf_counter()

    def on_train_step_end(self, trainer: SupernetTrainer, out: StepOutput) -> None:
        t2 = time.perf_counter()
        self.wait_s += self._t1 - self._t0
        self.busy_s += t2 - self._t0
        self.images += out.images


class ProgressBarCallback(Callback):
    """The :class:`~nasforge.progress.ProgressBar` of a run (rank 0 only, when asked).

    Args:
        throughput: where images/s and the data-wait share come from.
        enabled: show the bar.
    """

    def __init__(self, throughput: Throughput, enabled: bool) -> None:
        self.throughput = throughput
        self.enabled = enabled
        self._bar: ProgressBar | None = None

    def on_fit_start(self, trainer: SupernetTrainer) -> None:
        self._bar = ProgressBar(f"train {trainer.model.space.name}", total=trainer.config.steps,
                                completed=trainer.step,
                                enabled=self.enabled and trainer.rank == 0).__enter__()

    def on_train_step_end(self, trainer: SupernetTrainer, out: StepOutput) -> None:
        if self._bar is not None:
            self._bar.update(trainer.step, **_fields(out.records, self.throughput.images_per_s,
                                                     self.throughput.data_wait))

    def teardown(self, trainer: SupernetTrainer) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


class Validation(Callback):
    """Top-1 of the min and max subnets every ``every_epochs`` epochs
    (:meth:`SupernetTrainer.validate`).

    Args:
        every_epochs: the cadence (``None``: never).
    """

    def __init__(self, every_epochs: int | None) -> None:
        self.every_epochs = every_epochs
        #: the step of the latest validation (``None`` before the first)
        self.ran_at: int | None = None

    def on_train_step_end(self, trainer: SupernetTrainer, out: StepOutput) -> None:
        ep = out.epoch_end
        if ep is not None and self.every_epochs and ep % self.every_epochs == 0:
            val = trainer.validate()
            self.ran_at = trainer.step
            what = "loss" if any(k.endswith("_loss") for k in val) else "top-1"  # text: loss
            logger.info("epoch %d: validation %s %s", ep, what, ", ".join(
                f"{k} {v:.4f}" for k, v in val.items()))


class TensorBoard(Callback):
    """TensorBoard scalars (rank 0, with an ``out_dir``): per-step losses, lr, throughput, and
    the validation top-1 when :class:`Validation` ran at the step.

    Args:
        throughput: where images/s and the data-wait share come from.
        validation: the validation callback whose results are written.
    """

    def __init__(self, throughput: Throughput, validation: Validation) -> None:
        self.throughput = throughput
        self.validation = validation
        self._tele: Telemetry | None = None

    def on_fit_start(self, trainer: SupernetTrainer) -> None:
        out = trainer.out_dir
        self._tele = Telemetry(out / "tb" if out is not None and trainer.rank == 0 else None)

    def on_train_step_end(self, trainer: SupernetTrainer, out: StepOutput) -> None:
        if self._tele is None:
            return
        self._tele.step(trainer.step, out.records, self.throughput.images_per_s,
                        self.throughput.data_wait)
        if self.validation.ran_at == trainer.step:
            self._tele.scalars(trainer.step, {f"val/top1_{k}": v
                                              for k, v in trainer.validation.items()})

    def teardown(self, trainer: SupernetTrainer) -> None:
        if self._tele is not None:
            self._tele.close()
            self._tele = None


class CSVLog(Callback):
    """``out_dir/train_log.csv`` (rank 0): one row per subnet and step, appended just before each
    checkpoint and at the end, so that the rows never run ahead of the last checkpoint."""

    def __init__(self) -> None:
        self._pending: list[dict[str, Any]] = []

    def on_fit_start(self, trainer: SupernetTrainer) -> None:
        self._pending = []
        log = trainer.log_path if trainer.rank == 0 else None
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            if not log.exists() or trainer.step == 0:
                # a run from step 0 starts its log afresh (rows of a run killed before its
                # first checkpoint would otherwise stay and repeat)
                with log.open("w", newline="") as f:
                    csv.DictWriter(f, fieldnames=LOG_FIELDS).writeheader()

    def on_train_step_end(self, trainer: SupernetTrainer, out: StepOutput) -> None:
        self._pending += out.records

    def on_save_checkpoint(self, trainer: SupernetTrainer) -> None:
        self._flush(trainer)

    def on_fit_end(self, trainer: SupernetTrainer) -> None:
        self._flush(trainer)

    def _flush(self, trainer: SupernetTrainer) -> None:
        rows, self._pending = self._pending, []
        log = trainer.log_path if trainer.rank == 0 else None
        if log is None or not rows:
            return
        with log.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=LOG_FIELDS).writerows(rows)
            f.flush()
            os.fsync(f.fileno())


class ModelCheckpoint(Callback):
    """Checkpoint cadence: every ``every_n_steps`` steps, every ``every_n_minutes`` minutes,
    every ``every_n_epochs`` epochs, and always at the run's last step (``config.steps``).

    Args:
        every_n_steps: step cadence (``None``: off).
        every_n_minutes: wall-clock cadence (``None``: off).
        every_n_epochs: epoch cadence (``None``: off).
    """

    def __init__(self, every_n_steps: int | None, every_n_minutes: float | None,
                 every_n_epochs: int | None) -> None:
        self.every_n_steps = every_n_steps
        self.every_n_minutes = every_n_minutes
        self.every_n_epochs = every_n_epochs
        self._last_save = time.monotonic()

    def on_fit_start(self, trainer: SupernetTrainer) -> None:
        self._last_save = time.monotonic()

    def due(self, trainer: SupernetTrainer, out: StepOutput) -> bool:
        """Whether a checkpoint is due after the step that produced ``out``."""
        step, ep = trainer.step, out.epoch_end
        due_time = (self.every_n_minutes is not None
                    and time.monotonic() - self._last_save >= 60.0 * self.every_n_minutes)
        return bool((self.every_n_steps and step % self.every_n_steps == 0)
                    or step == trainer.config.steps or due_time
                    or (ep is not None and self.every_n_epochs and ep % self.every_n_epochs == 0))

    def on_train_step_end(self, trainer: SupernetTrainer, out: StepOutput) -> None:
        if self.due(trainer, out):
            trainer.save()
            self._last_save = time.monotonic()


def truncate_log(log: Path, step: int) -> None:
    """Keep the rows of ``log`` of steps before ``step`` (a resumed run writes the later ones
    again). Rows cut short by a kill are dropped too; the rewrite is atomic."""
    if not log.exists():
        return
    with log.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if _complete(r) and int(r["step"]) < step]
    tmp = log.with_name(log.name + ".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=LOG_FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, log)


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
