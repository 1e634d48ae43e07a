"""A supernet training run on any launcher: the job, the one rank body and the entry point.

Steps (each one job), as :func:`launch_training` runs them:

1. :func:`check_job`: the space, sampler, device, precision and run folder, before any work.
2. :func:`choose_launcher`: in-process, ``torchrun`` (from its environment), spawn(N) or Ray
   Train, with the rules that tie ranks to this machine and to the batch.
3. holding the run folder's lock (:mod:`nasforge._lock`; torchrun's rank 0 holds it for the
   group), the launcher runs :func:`run_rank` (or :func:`_ray_rank` on Ray Train workers) on
   every rank; both call :func:`train_rank`, the one rank body: join the group, train
   (:func:`~nasforge.supernet.training.train.train_supernet`).
4. rank 0 returns a :class:`TrainOutcome`; a failed rank becomes one error naming how to
   continue the run.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from nasforge.supernet.training.recipe import apply_overrides, load_recipe
    >>> recipe = apply_overrides(load_recipe("quick"), {
    ...     "data": "synthetic:16", "sampler": "uniform", "sampler_options": {},
    ...     "train.steps": 1, "train.batch_size": 4, "train.input_size": 16,
    ...     "loader.workers": 0})
    >>> with tempfile.TemporaryDirectory() as d:
    ...     job = TrainJob("elasticvit", recipe.to_dict(), Path(d) / "run", accelerator="cpu")
    ...     outcome = launch_training(job, InProcessLauncher())
    >>> outcome.step, outcome.world_size
    (1, 1)
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from nasforge._lock import LOCK
from nasforge._lock import check_run_folder_free
from nasforge._lock import is_leader_process
from nasforge._lock import lock_run_folder
from nasforge._paths import check_outside_data
from nasforge.errors import InvalidInputError
from nasforge.errors import NasforgeError
from nasforge.supernet.training.callbacks import LOG_NAME
from nasforge.supernet.training.launch._local import InProcessLauncher
from nasforge.supernet.training.launch._local import SpawnLauncher
from nasforge.supernet.training.launch._local import TorchrunLauncher
from nasforge.supernet.training.launch._local import under_torchrun
from nasforge.supernet.training.launch._ray import RayTrainLauncher
from nasforge.supernet.training.launch.base import Launcher
from nasforge.supernet.training.launch.base import LaunchFailure
from nasforge.supernet.training.trainer import CHECKPOINT_NAME

if TYPE_CHECKING:
    import torch

    from nasforge.supernet.evaluate import SubnetAccuracy
    from nasforge.supernet.training.distributed import DistContext
    from nasforge.supernet.training.trainer import SupernetTrainer
    from nasforge.supernet.training.trainer import TrainResult

__all__ = [
    "RaySettings",
    "SubnetScore",
    "TrainJob",
    "TrainOutcome",
    "check_job",
    "check_run_folder",
    "choose_launcher",
    "launch_training",
    "run_rank",
    "train_rank",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainJob:
    """What every rank of a run needs (picklable: spawned ranks and Ray workers receive it).

    Attributes:
        space: search space name.
        recipe: the recipe as plain data
            (:meth:`~nasforge.supernet.training.recipe.Recipe.to_dict`).
        out: the run folder (``last.ckpt``, ``train_log.csv``).
        resume: continue from ``out/last.ckpt``.
        accelerator: ``cpu``, ``cuda`` or ``auto``.
        progress: show a progress bar (rank 0).
        evaluate: rank 0 scores the max and min subnets after training.
        threads: torch intra-op threads per rank (``None``: torch's default).
        reset_optimizer: with ``resume``, accept a checkpoint without optimizer state and
            continue with a fresh optimizer (``nas train --reset-optimizer``).
    """

    space: str
    recipe: dict[str, Any]
    out: Path
    resume: bool = False
    accelerator: str = "auto"
    progress: bool = False
    evaluate: bool = False
    threads: int | None = None
    reset_optimizer: bool = False


@dataclass(frozen=True)
class RaySettings:
    """Where and how wide a Ray Train run is (``nas train --ray-address``).

    Attributes:
        address: the Ray head (``HOST:PORT``, ``ray://HOST:PORT`` or ``auto``).
        workers: Ray Train workers (ranks).
        gpus_per_worker: GPUs per worker (0: CPU workers).
    """

    address: str
    workers: int = 2
    gpus_per_worker: float = 0.0


@dataclass(frozen=True)
class SubnetScore:
    """Top-1 of one subnet scored by rank 0 after training (``name``: ``max`` or ``min``);
    a text run scores validation loss instead (``accuracy`` is then ``None``, ``loss`` the
    nats per token and ``resolution`` the context length it read)."""

    name: str
    accuracy: SubnetAccuracy | None
    resolution: Any
    loss: float | None = None


@dataclass(frozen=True)
class TrainOutcome:
    """What a finished run reports (rank 0's view).

    Attributes:
        step: the step of the final checkpoint.
        steps: the steps the run was set to train.
        world_size: ranks (Ray Train workers on Ray).
        backend: ``nccl``, ``gloo``, ``""`` (one process) or ``ray``.
        checkpoint: ``OUT/last.ckpt``.
        log: ``OUT/train_log.csv``.
        result: rank 0's figures (time, images/s, data wait); ``None`` on Ray Train.
        subnets: the max and min subnets' accuracy, when the job asked for it.
    """

    step: int
    steps: int
    world_size: int
    backend: str
    checkpoint: Path
    log: Path
    result: TrainResult | None = None
    subnets: tuple[SubnetScore, ...] = ()


def check_job(job: TrainJob) -> None:
    """Refuse what cannot train, before any work: an unknown space or sampler, a device or
    precision this machine lacks, a run folder that cannot hold the run.

    Raises:
        UnknownNameError: unknown space or sampler.
        InvalidInputError: unavailable device or precision, a bad run folder, or
            ``reset_optimizer`` without ``resume``.
    """
    from nasforge.search_spaces import get_space
    from nasforge.supernet.training.precision import check_precision
    from nasforge.supernet.training.recipe import recipe_from_dict
    from nasforge.supernet.training.samplers import SAMPLERS
    from nasforge.supernet.training.train import resolve_device

    recipe = recipe_from_dict(job.recipe)
    get_space(job.space)
    SAMPLERS.get(recipe.sampler)
    check_precision(recipe.train.precision, resolve_device(job.accelerator))
    check_run_folder(job.out, job.resume)
    check_outside_data(job.out, recipe.data)
    if job.reset_optimizer and not job.resume:
        raise InvalidInputError("--reset-optimizer applies to --resume only (a new run starts "
                                "with a fresh optimizer anyway); add --resume or drop it")


def check_run_folder(out: Path, resume: bool) -> None:
    """Refuse an output path that cannot hold a run (``resume``: one that holds none).

    Raises:
        InvalidInputError: ``out`` is a file, holds a run (or none to resume), or is not
            writable.
    """
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"--out {out} is a file; give a folder for the run")
    if is_leader_process():  # torchrun's rank 0 holds the folder for the group
        check_run_folder_free(out, "training")
    ck = out / CHECKPOINT_NAME
    if resume and not ck.is_file():
        raise InvalidInputError(f"--resume: there is no checkpoint {ck} to continue; run "
                                "without --resume to start training")
    if not resume and ck.exists():
        raise InvalidInputError(f"--out {out} already holds a run ({ck}); continue it with "
                                "--resume or choose another --out")
    probe = out if out.exists() else next((p for p in out.parents if p.exists()), Path("."))
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InvalidInputError(f"--out {out}: {probe} is not writable; choose another --out")


def choose_launcher(job: TrainJob, nproc: int | None = None, ray: RaySettings | None = None
                    ) -> tuple[Launcher, TrainJob]:
    """The launcher for ``nproc`` local ranks or a Ray Train run, and the job as it runs there.

    One process without either (or the ranks ``torchrun`` started, when its environment is
    set); ``nproc`` ranks split this machine's CPU cores (or use one GPU each).

    Raises:
        InvalidInputError: ``nproc`` with Ray, more ranks than CPU cores / GPUs, ``nproc``
            under ``torchrun``, or fewer images per global batch than ranks.
    """
    from nasforge.supernet.training.distributed import available_slots
    from nasforge.supernet.training.train import resolve_device

    batch = int(job.recipe["train"]["batch_size"])
    if ray is not None:
        return _ray_launcher(job, nproc, ray, batch), job
    if nproc is None or nproc == 1:
        return (TorchrunLauncher() if under_torchrun() else InProcessLauncher()), job
    device = resolve_device(job.accelerator)
    slots = available_slots(device.type)
    what = "CUDA devices" if device.type == "cuda" else "CPU cores"
    if nproc < 1 or nproc > slots:
        raise InvalidInputError(f"--nproc {nproc} is out of range: this machine has {slots} "
                                f"{what}; give 1..{slots}")
    if under_torchrun():
        raise InvalidInputError("--nproc under torchrun: torchrun already starts the ranks; "
                                "leave --nproc out")
    if batch < nproc:
        raise InvalidInputError(f"--nproc {nproc} needs a global batch size >= {nproc}, got "
                                f"{batch}")
    threads = max(1, slots // nproc) if device.type == "cpu" else None
    return SpawnLauncher(nproc), dataclasses.replace(job, threads=threads)


def _ray_launcher(job: TrainJob, nproc: int | None, ray: RaySettings, batch: int
                  ) -> RayTrainLauncher:
    if nproc not in (None, 1):
        raise InvalidInputError("--nproc and --ray-address exclude each other: Ray Train "
                                "starts the ranks (--ray-workers)")
    if ray.workers < 1 or not (0.0 <= ray.gpus_per_worker <= 64.0):
        raise InvalidInputError(f"--ray-workers {ray.workers} must be >= 1 and "
                                f"--gpus-per-worker {ray.gpus_per_worker} in [0, 64]")
    if batch < ray.workers:
        raise InvalidInputError(f"--ray-workers {ray.workers} needs a global batch size "
                                f">= {ray.workers}, got {batch}")
    return RayTrainLauncher(ray.address, ray.workers, job.out.resolve() / "ray",
                            gpus_per_worker=ray.gpus_per_worker)


def launch_training(job: TrainJob, launcher: Launcher) -> TrainOutcome | None:
    """Train ``job`` on the ranks ``launcher`` starts: the library entry of ``nas train``.

    Args:
        job: the run (checked by :func:`check_job` first, when it comes from a user).
        launcher: from :func:`choose_launcher`, or any :class:`Launcher`.

    Returns:
        Rank 0's :class:`TrainOutcome`; ``None`` on the other ``torchrun`` ranks.

    Raises:
        NasforgeError: a rank stopped on a user error (bad data, checkpoint, sampler options).
        InvalidInputError: a rank died or failed (the message says how to continue the run),
            or another process writes ``job.out``.

    A new run into an empty or new ``--out`` that fails before its first checkpoint leaves
    nothing there (no log or TensorBoard file of a run that cannot be resumed).
    """
    leader = is_leader_process()
    fresh = leader and not job.resume and (not job.out.exists() or (
        job.out.is_dir() and not any(job.out.iterdir())))
    with lock_run_folder(job.out, "training") if leader else nullcontext():
        try:
            return _launch(job, launcher)
        except BaseException:
            if fresh and not (job.out / CHECKPOINT_NAME).exists():
                _clear_unfinished_run(job.out)
            raise


def _clear_unfinished_run(out: Path) -> None:
    """Remove what a failed new run wrote into ``out`` (its lock stays with the lock holder)."""
    for entry in out.iterdir():
        if entry.name == LOCK:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()


def _launch(job: TrainJob, launcher: Launcher) -> TrainOutcome | None:
    try:
        if isinstance(launcher, RayTrainLauncher):  # workers run elsewhere: absolute paths
            launcher.launch(_ray_rank, dataclasses.replace(job, out=job.out.resolve()))
            return _ray_outcome(job, launcher)
        outcome: TrainOutcome | None = launcher.launch(run_rank, job)
        return outcome
    except LaunchFailure as e:
        ck = job.out / CHECKPOINT_NAME
        hint = (f"continue it from {ck.resolve()} with --resume" if e.kind == "ray"
                else _resume_hint(ck))
        raise InvalidInputError(f"{e}; {hint}") from None


def train_rank(job: TrainJob, device: torch.device, *, tf32: bool = True
               ) -> tuple[DistContext, SupernetTrainer, TrainResult]:
    """The rank body every launcher runs: join the group the environment describes, train.

    Args:
        job: the run.
        device: the compute device (a CUDA one becomes ``cuda:LOCAL_RANK`` under a launcher).
        tf32: allow TF32 matmuls on a CUDA device that has them.

    Returns:
        ``(context, trainer, result)`` of this rank.
    """
    from nasforge.search_spaces import get_space
    from nasforge.supernet.training.distributed import init_from_env
    from nasforge.supernet.training.precision import enable_tf32
    from nasforge.supernet.training.recipe import recipe_from_dict
    from nasforge.supernet.training.train import train_supernet

    recipe = recipe_from_dict(job.recipe)
    space = get_space(job.space)
    ctx = init_from_env(device)
    if tf32:
        enable_tf32(ctx.device)
    trainer, result = train_supernet(space, recipe, job.out, resume=job.resume,
                                     progress=job.progress, device=ctx.device,
                                     reset_optimizer=job.reset_optimizer)
    return ctx, trainer, result


def run_rank(job: TrainJob) -> TrainOutcome | None:
    """A rank on this machine (alone, ``torchrun``'s or spawned): train, leave the group, and
    on rank 0 score the max and min subnets when asked.

    Returns:
        The :class:`TrainOutcome` on rank 0, ``None`` on the others.
    """
    import torch

    from nasforge.supernet.training.distributed import shutdown
    from nasforge.supernet.training.train import resolve_device

    if job.threads:
        torch.set_num_threads(job.threads)
    try:
        ctx, trainer, result = train_rank(job, resolve_device(job.accelerator))
    finally:
        shutdown()
    if ctx.rank != 0:
        return None
    scores = _score_subnets(trainer, ctx.device) if job.evaluate else ()
    return TrainOutcome(result.step, trainer.config.steps, ctx.world_size, ctx.backend,
                        job.out / CHECKPOINT_NAME, job.out / LOG_NAME, result, scores)


def _score_subnets(trainer: SupernetTrainer, device: torch.device) -> tuple[SubnetScore, ...]:
    from nasforge.supernet.evaluate import evaluate_subnet

    space = trainer.model.space
    if trainer.data.task != "image":  # text: validation loss at each subnet's own context
        losses = trainer.validate()
        return tuple(SubnetScore(name, None, trainer.task.size(arch, trainer.data),
                                 losses[f"{name}_loss"])
                     for name, arch in (("max", space.max_arch()), ("min", space.min_arch())))
    return tuple(
        SubnetScore(name, evaluate_subnet(trainer.model, arch, trainer.data, device=device),
                    getattr(arch, "resolution", "?"))
        for name, arch in (("max", space.max_arch()), ("min", space.min_arch())))


def _ray_rank(job: TrainJob) -> None:
    """A Ray Train worker: its device, and a resume when an earlier attempt left a checkpoint
    (Ray restarted the worker group)."""
    import ray.train.torch

    from nasforge.supernet.training.distributed import rank_and_world

    ck = job.out / CHECKPOINT_NAME
    device = ray.train.torch.get_device()
    if not job.resume and ck.is_file():
        logger.info("rank %d: resuming from %s (an earlier attempt's checkpoint)",
                    rank_and_world()[0], ck)
        job = dataclasses.replace(job, resume=True)
    train_rank(dataclasses.replace(job, progress=False), device, tf32=False)


def _ray_outcome(job: TrainJob, launcher: RayTrainLauncher) -> TrainOutcome:
    from nasforge.supernet.checkpoint import read_checkpoint

    step = read_checkpoint(job.out / CHECKPOINT_NAME).step
    return TrainOutcome(step, int(job.recipe["train"]["steps"]), int(launcher.world_size or 1),
                        "ray", job.out / CHECKPOINT_NAME, job.out / LOG_NAME)


def _resume_hint(ck: Path) -> str:
    from nasforge.supernet.checkpoint import read_checkpoint

    try:
        step = read_checkpoint(ck).step
    except NasforgeError:
        return "no checkpoint was written yet: start it again without --resume"
    return f"continue it from its last checkpoint (step {step}) with --resume"
