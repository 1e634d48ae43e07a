"""What a checkpoint holds of a training run (the shape of Lightning's checkpoint connector):
:func:`save` dumps it, :func:`resume` restores it in named steps.

:func:`save` writes ``last.ckpt`` (rank 0; :mod:`~nasforge.supernet.checkpoint`: weights, EMA,
optimizer, scheduler, sampler, RNGs, and as ``extra`` the data position, the unreadable-image
count and the fp16 loss scale) with :func:`checkpoint_config` as its ``config`` block, and keeps
the last ``keep_last`` numbered copies. :func:`resume` reads the checkpoint, refuses one of
another run (:func:`check_compatible`) or one stripped of its optimizer state unless
``reset_optimizer`` (:func:`check_optimizer_state`), then restores in this order, each step one job:
:func:`restore_model`, :func:`restore_optimizer` (optimizer and LR scheduler),
:func:`restore_ema`, :func:`restore_sampler`, :func:`restore_rng` (python, numpy, torch CPU and
CUDA generators), :func:`restore_loss_scaler`, :func:`restore_data_position`, and last
:func:`restore_log` (the CSV rows of later steps are dropped: the resumed run writes them
again). A resumed run on CPU continues bitwise identically to an uninterrupted one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.supernet import checkpoint as ckpt_io
from nasforge.supernet.training.callbacks import truncate_log

if TYPE_CHECKING:
    from nasforge.supernet.checkpoint import Checkpoint
    from nasforge.supernet.training.trainer import SupernetTrainer

__all__ = [
    "check_compatible",
    "check_optimizer_state",
    "checkpoint_config",
    "restore_data_position",
    "restore_ema",
    "restore_log",
    "restore_loss_scaler",
    "restore_model",
    "restore_optimizer",
    "restore_rng",
    "restore_sampler",
    "resume",
    "save",
]

log = logging.getLogger(__name__)

#: The JSON state a checkpoint needs to resume training (an export-only one lacks them).
_RESUME_KEYS = ("scheduler", "sampler", "rng")


def checkpoint_config(trainer: SupernetTrainer) -> dict[str, Any]:
    """The ``config`` block of the run's checkpoints (read back as
    :class:`~nasforge.supernet.checkpoint.RunConfig`)."""
    from nasforge import __version__

    return {
        **trainer.model.config(),
        "input_size": trainer.config.input_size,
        "resolution_scale": trainer.config.resolution_scale,
        "data": trainer.data.name,
        "sampler": trainer.sampler.name,
        "train": trainer.config.to_dict(),
        "nasforge_version": __version__,
        **trainer.run_info,
    }


def save(trainer: SupernetTrainer) -> Path | None:
    """Write ``out_dir/last.ckpt`` (rank 0 only) and the numbered copies; returns its path."""
    path = trainer.checkpoint_path
    if path is None or trainer.rank != 0:
        return path
    ckpt_io.write_checkpoint(
        path, model=trainer.model, config=checkpoint_config(trainer), step=trainer.step,
        optimizer=trainer.optimizer, scheduler=trainer.scheduler,
        sampler_state=trainer.sampler.state_dict(),
        ema_state=trainer.ema.state_dict() if trainer.ema is not None else None,
        extra={"data_position": list(trainer.position),
               "skipped_images": trainer.tracker.summary(),
               "loss_scaler": trainer.scaler.state_dict()},
    )
    if trainer.config.keep_last > 0:
        ckpt_io.keep_numbered(path, trainer.step, trainer.config.keep_last)
    return path


def resume(trainer: SupernetTrainer, path: Path | None = None, *,
           reset_optimizer: bool = False) -> int:
    """Restore ``trainer`` from a checkpoint (default ``out_dir/last.ckpt``); returns its step.

    Args:
        trainer: the trainer to restore.
        path: the checkpoint (default ``out_dir/last.ckpt``).
        reset_optimizer: accept a checkpoint without its optimizer state and continue with a
            fresh optimizer (a warning is logged; the run is no longer bit-identical to an
            uninterrupted one).

    Raises:
        InvalidInputError: the checkpoint is missing, corrupted or incomplete (without
            ``reset_optimizer``: its optimizer state is missing).
        IncompatibleComponentsError: it belongs to another space, class count, input size,
            resolution scale or sampler.
    """
    target = Path(path) if path is not None else trainer.checkpoint_path
    if target is None:
        raise InvalidInputError("resume needs a checkpoint path or an out_dir")
    ck = ckpt_io.read_checkpoint(target, expect_space=trainer.model.space.name)
    check_compatible(trainer, ck)
    fresh = check_optimizer_state(ck, reset_optimizer)
    try:
        restore_model(trainer, ck)
        restore_optimizer(trainer, ck, fresh=fresh)
        restore_ema(trainer, ck)
        restore_sampler(trainer, ck)
        restore_rng(trainer, ck)
        restore_loss_scaler(trainer, ck)
        restore_data_position(trainer, ck)
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as e:
        if isinstance(e, IncompatibleComponentsError | InvalidInputError):
            raise
        raise InvalidInputError(f"checkpoint {ck.path} is corrupted: {e!r}") from None
    trainer.step = ck.step
    trainer.seeded = True
    restore_log(trainer, ck)
    return trainer.step


def check_compatible(trainer: SupernetTrainer, ck: Checkpoint) -> None:
    """Refuse a checkpoint of another run, or one that cannot resume training.

    Raises:
        IncompatibleComponentsError: another class count, input size, resolution scale or
            sampler.
        InvalidInputError: optimizer, scheduler, sampler or RNG state missing.
    """
    cfg = ck.config
    for key, mine in (("num_classes", trainer.model.num_classes),
                      ("input_size", trainer.config.input_size),
                      ("resolution_scale", trainer.config.resolution_scale),
                      ("sampler", trainer.sampler.name)):
        if cfg.get(key) != mine:
            raise IncompatibleComponentsError(
                f"checkpoint {ck.path} was trained with {key} = {cfg.get(key)!r}, this run "
                f"uses {mine!r}; resume with the same settings or start a new --out"
            )
    for key in _RESUME_KEYS:
        if key not in ck.state:
            raise InvalidInputError(f"checkpoint {ck.path} lacks {key!r}; it cannot resume "
                                    "training (it may be an export-only checkpoint)")


def check_optimizer_state(ck: Checkpoint, reset_optimizer: bool = False) -> bool:
    """Whether the optimizer starts fresh: refuse a checkpoint stripped of its optimizer state
    (the ``optimizer`` JSON, or every ``optim.*`` tensor after step 0) unless ``reset_optimizer``.

    Returns:
        ``True`` when the state is missing and ``reset_optimizer`` accepts it (a warning is
        logged), ``False`` when the checkpoint's optimizer state is restored.

    Raises:
        InvalidInputError: the state is missing and ``reset_optimizer`` is off.
    """
    has_json = isinstance(ck.state.get("optimizer"), dict)
    plain = ck.state["optimizer"].get("plain") if has_json else None
    has_moments = bool(ck.group("optim")) or bool(plain)
    if has_json and (has_moments or ck.step == 0):
        return False
    what = "its optimizer state" if not has_json else "its optimizer moments (optim.* tensors)"
    if not reset_optimizer:
        raise InvalidInputError(
            f"checkpoint {ck.path} (step {ck.step}) lacks {what}: resuming would not continue "
            "the run bit for bit; pass --reset-optimizer to resume with a fresh optimizer")
    log.warning("checkpoint %s lacks %s: resuming at step %d with a fresh optimizer "
                "(--reset-optimizer); the run will differ from an uninterrupted one",
                ck.path, what, ck.step)
    return True


def restore_model(trainer: SupernetTrainer, ck: Checkpoint) -> None:
    """The supernet's weights and BatchNorm statistics."""
    ckpt_io.load_model_state(trainer.model, ck, "model")


def restore_optimizer(trainer: SupernetTrainer, ck: Checkpoint, *, fresh: bool = False) -> None:
    """The optimizer (moments, step counters, param groups) and the LR scheduler; ``fresh``
    (see :func:`check_optimizer_state`): the optimizer keeps its new state."""
    if not fresh:
        trainer.optimizer.load_state_dict(ckpt_io.optimizer_state(ck))
    trainer.scheduler.load_state_dict(ck.state["scheduler"])


def restore_ema(trainer: SupernetTrainer, ck: Checkpoint) -> None:
    """The EMA weights (the model's, when the checkpoint has none)."""
    if trainer.ema is not None:
        ema = ck.group("ema")
        trainer.ema.load_state_dict(ema if ema else trainer.model.state_dict())


def restore_sampler(trainer: SupernetTrainer, ck: Checkpoint) -> None:
    """The sampler's state (levels, pools, banks, its RNG)."""
    trainer.sampler.load_state_dict(ck.state["sampler"])


def restore_rng(trainer: SupernetTrainer, ck: Checkpoint) -> None:
    """The python, numpy, torch CPU and CUDA generators (:func:`resume` then marks the trainer
    seeded, so that :meth:`~SupernetTrainer.fit` does not reseed them)."""
    ckpt_io.restore_global_rngs(ck.state["rng"], ck.tensors.get("rng.torch"),
                                ck.group("rng.cuda"))


def restore_loss_scaler(trainer: SupernetTrainer, ck: Checkpoint) -> None:
    """The fp16 loss scale (when the checkpoint has one)."""
    scaler = ck.state.get("extra", {}).get("loss_scaler")
    if scaler:
        trainer.scaler.load_state_dict(scaler)


def restore_data_position(trainer: SupernetTrainer, ck: Checkpoint) -> None:
    """The data position ``(epoch, batch)`` (older checkpoints: ``(0, step)``); the batch
    stream restarts there."""
    pos = ck.state.get("extra", {}).get("data_position")
    trainer.position = (int(pos[0]), int(pos[1])) if pos else (0, ck.step)
    trainer.close()


def restore_log(trainer: SupernetTrainer, ck: Checkpoint) -> None:
    """Drop the CSV log rows of steps from the checkpoint's on (rank 0)."""
    log = trainer.log_path
    if log is not None and trainer.rank == 0:
        truncate_log(log, ck.step)
